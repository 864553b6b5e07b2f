/**
 * One `pulumi up`: create a VM, then run a Python (uvicorn) API on it as a
 * hardened systemd service with amarktai-infra. The host's address and key
 * are Outputs of the VM; the service waits for them.
 */
import * as pulumi from "@pulumi/pulumi";
import { SystemdService, serviceConfig } from "amarktai-infra";
import { Vm } from "./vm";

const config = new pulumi.Config();
const vm = new Vm("web-1", { size: "small" });

const api = new SystemdService("api", {
    // Service settings in code, validated like stack config (defaults: the Amarktai API's notes).
    config: serviceConfig({
        serviceName: "orders-api",
        description: "Orders API",
        app: { module: "orders.main:app", port: 8080, requirements: ["uvicorn==0.38.0", "fastapi==0.115.0"] },
        overrides: {
            workers: { order: 10, workers: 2 },
            memory: { order: 20, memoryMax: "1G" },
        },
        env: { LOG_FORMAT: "json" },
    }),
    // The host, from the VM: `name` keeps resource names stable (never made from an Output's value).
    hosts: [{ name: "web-1", address: vm.address, hostKey: vm.hostKey, user: "ubuntu" }],
    sshPrivateKey: config.requireSecret("sshPrivateKey"),
    secretEnv: { DATABASE_URL: config.requireSecret("databaseUrl") },
    appFiles: [{ relativePath: "orders/main.py", content: "async def app(scope, receive, send):\n    ...\n" }],
});

export const address = vm.address;
export const unit = api.unitText;
export const activatedAt = api.hosts[0]!.activatedAt;
