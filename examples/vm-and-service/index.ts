/**
 * One `pulumi up`: create a VM, then run a Python (uvicorn) API on it as a
 * hardened systemd service with amarktai-infra. The host's address, SSH port
 * and host key are Outputs of the VM; the service waits for them, and then
 * for the VM itself (sshd coming up, cloud-init, apt's locks) before it
 * changes anything there.
 */
import * as pulumi from "@pulumi/pulumi";
import { SystemdService, serviceConfig } from "amarktai-infra";
import { Vm } from "./vm";

const config = new pulumi.Config();
const vm = new Vm("web-1", { size: "small", sshPublicKey: config.require("sshPublicKey") });

/** The app's code, deployed as part of each release (read from a directory instead with `app.sourceDir`). */
const ordersMain = `"""Orders API: a plain ASGI app (FastAPI or Starlette work the same way)."""
import json
import os


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["path"] == "/health":
        status, body = 200, {"status": "ok", "service": "orders-api"}
    elif scope["path"] == "/orders":
        status, body = 200, {"orders": [], "database": bool(os.environ.get("DATABASE_URL"))}
    else:
        status, body = 404, {"error": "not found"}
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
`;

const api = new SystemdService("api", {
    // Service settings in code, validated like stack config (defaults: the Amarktai API's notes).
    config: serviceConfig({
        serviceName: "orders-api",
        description: "Orders API",
        app: { module: "orders.main:app", port: 8080, requirements: ["uvicorn==0.38.0"] },
        dependencies: { after: ["network.target"] },
        overrides: {
            workers: { order: 10, workers: 2 },
            memory: { order: 20, memoryMax: "1G" },
        },
        env: { LOG_FORMAT: "json" },
    }),
    // The host, from the VM: `name` keeps resource names stable (never made from an Output's value).
    hosts: [{ name: "web-1", address: vm.address, port: vm.sshPort, hostKey: vm.hostKey, user: "ubuntu" }],
    sshPrivateKey: config.requireSecret("sshPrivateKey"),
    secretEnv: { DATABASE_URL: config.requireSecret("databaseUrl") },
    appFiles: [
        { relativePath: "orders/__init__.py", content: "" },
        { relativePath: "orders/main.py", content: ordersMain },
    ],
});

export const address = vm.address;
export const sshPort = vm.sshPort;
export const unit = api.unitText;
export const healthUrl = api.hosts[0]!.healthUrl;
export const activatedAt = api.hosts[0]!.activatedAt;
