/**
 * The library as its users get it: `npm pack` the package, install the
 * tarball into a scratch copy of `examples/vm-and-service`, type-check that
 * program against the packed types, and run it under `pulumi.runtime.setMocks`.
 * No network: dependencies come from this checkout's node_modules.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { ExampleCopy, compileExample, exampleCopy, run } from "../support/example";

let copy: ExampleCopy;
let app: string;

/** What the mocked run registered, printed by the runner below. */
interface MockRun {
    resources: { type: string; name: string; inputs: Record<string, any> }[];
    outputs: Record<string, unknown>;
}

const RUNNER = `
const pulumi = require("@pulumi/pulumi");
const resources = [];
pulumi.runtime.setMocks({
    newResource(args) {
        resources.push({ type: args.type, name: args.name, inputs: args.inputs });
        if (args.type === "example:compute:Vm") return { id: "vm-1", state: { ...args.inputs, address: "198.51.100.20", sshPort: 22, hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJrLw0/yHgIQgd1mOq03l/DYoJq/TmjmAsaEpj7CY3VG" } };
        return { id: args.name + "-id", state: args.type.endsWith(":RandomSecret") ? { ...args.inputs, value: "mock" } : args.inputs };
    },
    call: (args) => args.inputs,
}, "vm-and-service", "dev", false);
pulumi.runtime.setAllConfig({
    "vm-and-service:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\\nAAAA\\n-----END OPENSSH PRIVATE KEY-----\\n",
    "vm-and-service:databaseUrl": "postgres://mock",
    "vm-and-service:sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJrLw0/yHgIQgd1mOq03l/DYoJq/TmjmAsaEpj7CY3VG test",
}, ["vm-and-service:sshPrivateKey", "vm-and-service:databaseUrl"]);
const program = require("./bin/index.js");
pulumi.all({ address: program.address, unit: program.unit, activatedAt: program.activatedAt }).apply((outputs) => {
    process.stdout.write(JSON.stringify({ resources, outputs }));
});
`;

before(() => {
    copy = exampleCopy();
    app = copy.app;
});

after(() => copy.cleanup());

test("the packed package ships compiled code and types, and nothing from tests or scripts", () => {
    const pkg = path.join(app, "node_modules", "amarktai-infra");
    const manifest = JSON.parse(fs.readFileSync(path.join(pkg, "package.json"), "utf8"));
    assert.equal(manifest.private, undefined);
    assert.ok(fs.existsSync(path.join(pkg, "dist", "components", "index.js")));
    assert.ok(fs.existsSync(path.join(pkg, "dist", "components", "index.d.ts")));
    assert.ok(fs.existsSync(path.join(pkg, "dist", "components", "pulumi", "providers", "index.js")), "the providers the dynamic resources load by package name");
    assert.ok(!fs.existsSync(path.join(pkg, "dist", "test")) && !fs.existsSync(path.join(pkg, "dist", "scripts")) && !fs.existsSync(path.join(pkg, "components")));
    assert.deepEqual(Object.keys(manifest.peerDependencies), ["@pulumi/pulumi"], "one @pulumi/pulumi shared with the user's program");
});

test("the example type-checks against the packed types and runs under mocks: VM outputs flow into the service", { timeout: 5 * 60_000 }, () => {
    compileExample(app);
    fs.writeFileSync(path.join(app, "mock-run.js"), RUNNER);
    const out = JSON.parse(run(process.execPath, ["mock-run.js"], app)) as MockRun;
    const types = out.resources.map((r) => r.type);
    assert.ok(types.includes("amarktai:index:SystemdService"));
    const prepare = out.resources.find((r) => r.type.endsWith(":HostPrepare"))!;
    assert.equal(prepare.name, "api-web-1-prepare", "named by the host's name, not by an Output value");
    const connection = prepare.inputs.connection.value ?? prepare.inputs.connection;
    assert.equal(connection.host, "198.51.100.20", "the VM's address reached the service's SSH connection");
    const dropIns = out.resources.filter((r) => r.type.endsWith(":HostFile")).map((r) => r.inputs.file?.path ?? r.inputs.file);
    assert.ok(dropIns.includes("/etc/systemd/system/orders-api.service.d/10-workers.conf"), dropIns.join("\n"));
    assert.ok(dropIns.includes("/etc/systemd/system/orders-api.service.d/20-memory.conf"));
    assert.equal(out.outputs.address, "198.51.100.20");
    assert.match(String(out.outputs.unit), /^ExecStart=\/var\/amarktai\/venv\/bin\/python -m uvicorn orders\.main:app --fd 3 --log-level info$/m);
    assert.match(String(out.outputs.unit), /^After=network.target orders-api.socket$/m);
});

test("the example's appFiles are the release it deploys, without app.sourceDir: the app's code and a working directory linked into the release", { timeout: 5 * 60_000 }, () => {
    compileExample(app);
    fs.writeFileSync(path.join(app, "mock-run.js"), RUNNER);
    const out = JSON.parse(run(process.execPath, ["mock-run.js"], app)) as MockRun;
    const release = out.resources.find((r) => r.type.endsWith(":AppRelease"))!;
    assert.deepEqual(Object.keys(release.inputs.files).sort(), ["orders/__init__.py", "orders/main.py"]);
    assert.match(release.inputs.files["orders/main.py"], /async def app\(scope, receive, send\):/);
    assert.match(release.inputs.files["orders/main.py"], /"\/health"/);
    assert.equal(release.inputs.release.appLink, "/var/amarktai/app/backend", "the working directory links into the release's app/");
    assert.equal(release.inputs.sourceDir, undefined);
});
