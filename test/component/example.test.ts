/**
 * The library as its users get it: `npm pack` the package, install the
 * tarball into a scratch copy of `examples/vm-and-service`, type-check that
 * program against the packed types, and run it under `pulumi.runtime.setMocks`.
 * No network: dependencies come from this checkout's node_modules.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const REPO = path.resolve(__dirname, "..", "..", "..");
const EXAMPLE = path.join(REPO, "examples", "vm-and-service");
let dir: string;
let app: string;

function run(cmd: string, args: string[], cwd: string): string {
    const r = spawnSync(cmd, args, { cwd, encoding: "utf8" });
    assert.equal(r.status, 0, `${cmd} ${args.join(" ")}:\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
}

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
        if (args.type === "example:compute:Vm") return { id: "vm-1", state: { ...args.inputs, address: "198.51.100.20", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJrLw0/yHgIQgd1mOq03l/DYoJq/TmjmAsaEpj7CY3VG" } };
        return { id: args.name + "-id", state: args.type.endsWith(":RandomSecret") ? { ...args.inputs, value: "mock" } : args.inputs };
    },
    call: (args) => args.inputs,
}, "vm-and-service", "dev", false);
pulumi.runtime.setAllConfig({
    "vm-and-service:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\\nAAAA\\n-----END OPENSSH PRIVATE KEY-----\\n",
    "vm-and-service:databaseUrl": "postgres://mock",
}, ["vm-and-service:sshPrivateKey", "vm-and-service:databaseUrl"]);
const program = require("./bin/index.js");
pulumi.all({ address: program.address, unit: program.unit, activatedAt: program.activatedAt }).apply((outputs) => {
    process.stdout.write(JSON.stringify({ resources, outputs }));
});
`;

before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-example-"));
    app = path.join(dir, "app");
    fs.cpSync(EXAMPLE, app, { recursive: true, filter: (src) => !/[\\/](node_modules|bin)$/.test(src) });
    // The package as `npm publish` would ship it (already built by the test command's build).
    const tarball = run("npm", ["pack", "--ignore-scripts", "--silent", "--pack-destination", dir], REPO).trim().split("\n").pop()!;
    const modules = path.join(app, "node_modules");
    fs.mkdirSync(modules);
    run("tar", ["xzf", path.join(dir, tarball), "-C", modules], dir);
    fs.renameSync(path.join(modules, "package"), path.join(modules, "amarktai-infra"));
    // Its dependencies and the program's, from this checkout (same versions as the lock file; no network).
    for (const dep of ["@pulumi", "@types", "zod", "ssh2"]) fs.symlinkSync(path.join(REPO, "node_modules", dep), path.join(modules, dep));
});

after(() => fs.rmSync(dir, { recursive: true, force: true }));

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
    run(process.execPath, [path.join(REPO, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], app);
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
    assert.match(String(out.outputs.unit), /^ExecStart=\/var\/amarktai\/venv\/bin\/python -m uvicorn orders\.main:app --host 127\.0\.0\.1 --port 8080/m);
});
