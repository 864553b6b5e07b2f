/**
 * `SystemdService` with hosts as Inputs: one program creates a VM and deploys
 * onto it in one `up`. Resource names never depend on an Output's value.
 */
import { test, before } from "node:test";
import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, serviceConfig } from "../../components/config";
import { SystemdService } from "../../components/pulumi/service";

interface Registered {
    type: string;
    name: string;
    inputs: Record<string, any>;
}
const registered: Registered[] = [];
const VM_ADDRESS = "203.0.113.7";
const VM_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJrLw0/yHgIQgd1mOq03l/DYoJq/TmjmAsaEpj7CY3VG";
const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

before(() => {
    pulumi.runtime.setMocks(
        {
            newResource(args: pulumi.runtime.MockResourceArgs) {
                registered.push({ type: args.type, name: args.name, inputs: args.inputs });
                if (args.type === "test:compute:Vm") return { id: "vm-1", state: { address: VM_ADDRESS, hostKey: VM_HOST_KEY } };
                const state = args.type.endsWith(":RandomSecret") ? { ...args.inputs, value: "generated-by-mock" } : args.inputs;
                return { id: `${args.name}-id`, state };
            },
            call: (args: pulumi.runtime.MockCallArgs) => args.inputs,
        },
        "inputs-test",
        "dev",
        false,
    );
});

/** Stands in for a cloud provider's VM resource: its address and host key are known only after it exists. */
class Vm extends pulumi.CustomResource {
    declare readonly address: pulumi.Output<string>;
    declare readonly hostKey: pulumi.Output<string>;
    constructor(name: string) {
        super("test:compute:Vm", name, { address: undefined, hostKey: undefined });
    }
}

const value = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => o.apply(resolve));
const plain = (v: any) => (v && typeof v === "object" && "value" in v && Object.values(v).includes("1b47061264138c4ac30d75fd1eb44270") ? v.value : v);

test("hosts from another resource's Outputs: named by the stable name, connected to the resolved values", async () => {
    const vm = new Vm("web-1");
    const service = new SystemdService("api", {
        config: serviceConfig({ app: { port: 8080 } }),
        hosts: [{ name: "web-1", address: vm.address, hostKey: vm.hostKey, user: "root" }],
        sshPrivateKey: pulumi.secret(KEY),
        secretEnv: {},
    });
    await value(service.hosts[0]!.activatedAt);
    assert.equal(await value(service.hosts[0]!.address), VM_ADDRESS);
    const prepare = registered.find((r) => r.type.endsWith(":HostPrepare"))!;
    assert.equal(prepare.name, "api-web-1-prepare", "the name, not a value only known after the VM exists");
    const connection = plain(prepare.inputs.connection);
    assert.equal(plain(connection.host), VM_ADDRESS);
    assert.equal(plain(connection.hostKey), VM_HOST_KEY);
    assert.equal(plain(connection.user), "root");
    assert.equal(plain(connection.port), 22);
    const activation = registered.find((r) => r.type.endsWith(":ServiceActivation"))!;
    assert.equal(plain(activation.inputs.health).url, "http://127.0.0.1:8080/health");
});

test("a host whose key is an Output needs a name; service settings are validated naming the key", () => {
    const vm = new Vm("web-2");
    assert.throws(
        () => new SystemdService("api2", { config: serviceConfig(), hosts: [{ address: vm.address, hostKey: vm.hostKey }], sshPrivateKey: KEY, secretEnv: {} }),
        (e: unknown) => e instanceof ConfigError && /hosts: a host whose hostKey comes from another resource needs a stable 'name'/.test(e.message),
    );
    assert.throws(() => serviceConfig({ app: { port: 0 } }), /amarktai-infra:app\.port/);
    assert.throws(() => serviceConfig({ hosts: [] }), /unknown key\(s\) 'hosts'/);
});

test("plain host values are checked at once, naming the key", () => {
    assert.throws(
        () => new SystemdService("api3", { config: serviceConfig(), hosts: [{ name: "x", address: "1.2.3.4;rm", hostKey: VM_HOST_KEY }], sshPrivateKey: KEY, secretEnv: {} }),
        /amarktai-infra:hosts\[0\]\.address: must be an IP address or DNS name/,
    );
});

/** A well-formed ed25519 host key line for 32 bytes of `fill`: another key of "the same machine". */
function ed25519Key(fill: number): string {
    const field = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
    return `ssh-ed25519 ${Buffer.concat([field(Buffer.from("ssh-ed25519")), field(Buffer.alloc(32, fill))]).toString("base64")}`;
}

test("hosts in code are held to the stack's identity rules: two entries for one address and port are refused at once, whatever keys they pin", () => {
    assert.throws(
        () =>
            new SystemdService("api4", {
                config: serviceConfig(),
                hosts: [
                    { name: "a", address: "198.51.100.4", hostKey: VM_HOST_KEY },
                    { name: "b", address: "198.51.100.4", port: 22, hostKey: ed25519Key(7) },
                ],
                sshPrivateKey: KEY,
                secretEnv: {},
            }),
        (e: unknown) => e instanceof ConfigError && /amarktai-infra:hosts\[1\].*hosts\[1\] \('b'\) and hosts\[0\] \('a'\)/.test(e.message),
    );
    assert.equal(registered.filter((r) => r.name.startsWith("api4")).length, 0, "no resource was registered");
});

test("secretEnv in code is held to the interpreter rule: PYTHONPATH is refused at once, naming secretEnv.PYTHONPATH, even with a secret value", () => {
    assert.throws(
        () => new SystemdService("api5", { config: serviceConfig(), hosts: [{ name: "c", address: "198.51.100.5", hostKey: VM_HOST_KEY }], sshPrivateKey: KEY, secretEnv: { PYTHONPATH: pulumi.secret("/var/amarktai/logs") } }),
        (e: unknown) => e instanceof ConfigError && /amarktai-infra:secretEnv\.PYTHONPATH: PYTHONPATH may not be set/.test(e.message) && !e.message.includes("/var/amarktai/logs"),
    );
    // Allowed explicitly, the same value is accepted.
    assert.doesNotThrow(() => new SystemdService("api6", { config: serviceConfig({ allowInterpreterEnv: ["PYTHONPATH"] }), hosts: [{ name: "d", address: "198.51.100.6", hostKey: VM_HOST_KEY }], sshPrivateKey: KEY, secretEnv: { PYTHONPATH: pulumi.secret("/opt/lib") } }));
});
