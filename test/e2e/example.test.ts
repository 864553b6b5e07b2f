/**
 * The library's own example, for real: `examples/vm-and-service`, packed and
 * installed as a user installs it, run with the real CLI. Its VM is the
 * test-only cloud-image-like VM (tools/cloud-vm), booted cold by the same
 * `pulumi up` that deploys onto it while it is still booting (sshd not up,
 * cloud-init writing the login user's key and the host key). The one `up`
 * ends healthy with the example's app code on the host; `destroy` removes the
 * service and the VM.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { ExampleCopy, REPO, compileExample, exampleCopy } from "../support/example";
import { VmInfo, cachedTestKeyPath, vmRun, vmSsh } from "../../tools/vm";

const MINUTE = 60_000;
let copy: ExampleCopy;
let env: NodeJS.ProcessEnv;

/** Runs `scripts/pulumi --cwd <example> ARGS` (the real CLI, the example's own program); echoes progress. */
function pulumi(args: string[], stdin = "", quiet = false): Promise<{ code: number; out: string; seconds: number }> {
    const started = Date.now();
    return new Promise((resolve, reject) => {
        const child = spawn(path.join(REPO, "scripts", "pulumi"), ["--cwd", copy.app, ...args, "--non-interactive"], { cwd: copy.dir, env, stdio: ["pipe", "pipe", "pipe"] });
        let out = "";
        const take = (d: Buffer) => {
            out += d.toString();
            if (!quiet && !process.env.AMARKTAI_TEST_QUIET) process.stderr.write(d.toString().replace(/^/gm, "    | "));
        };
        child.stdout.on("data", take);
        child.stderr.on("data", take);
        child.on("error", reject);
        child.on("close", (code) => resolve({ code: code ?? 1, out, seconds: (Date.now() - started) / 1000 }));
        child.stdin.end(stdin);
    });
}

async function mustPulumi(args: string[], stdin = "", quiet = false) {
    const r = await pulumi(args, stdin, quiet);
    assert.equal(r.code, 0, `pulumi ${args.join(" ")} exited ${r.code}:\n${r.out}`);
    return r;
}

/** The test VM the stack created, from the stack's state. */
async function stackVm(): Promise<VmInfo | undefined> {
    const state = JSON.parse((await mustPulumi(["stack", "export"], "", true)).out.replace(/^[^{]*/, ""));
    const vm = (state.deployment.resources ?? []).find((r: { outputs?: Record<string, unknown> }) => r.outputs && "sshPort" in r.outputs && "hostKey" in r.outputs);
    if (!vm) return undefined;
    return { name: vm.id, host: vm.outputs.address, port: vm.outputs.sshPort, user: "ubuntu", privateKeyPath: cachedTestKeyPath(), hostKey: vm.outputs.hostKey };
}

/** The shim that makes the example's `Vm` the test cloud VM (the example's stand-in for a cloud's VM resource). */
const VM_SHIM = `import * as pulumi from "@pulumi/pulumi";

/** Test only: the project's cold-booting, cloud-image-like VM stands in for a cloud's VM resource. */
type VmClass = new (
    name: string,
    args: { size: string; sshPublicKey: pulumi.Input<string> },
    opts?: pulumi.CustomResourceOptions,
) => pulumi.CustomResource & { readonly address: pulumi.Output<string>; readonly sshPort: pulumi.Output<number>; readonly hostKey: pulumi.Output<string> };

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const Vm: VmClass = require(${JSON.stringify(path.join(REPO, "dist", "tools", "cloud-vm", "resource.js"))}).cloudVmClass(pulumi);
`;

before(async () => {
    copy = exampleCopy();
    fs.writeFileSync(path.join(copy.app, "vm.ts"), VM_SHIM);
    compileExample(copy.app);
    fs.mkdirSync(path.join(copy.dir, "state"));
    env = { ...process.env, PULUMI_BACKEND_URL: `file://${path.join(copy.dir, "state")}`, PULUMI_CONFIG_PASSPHRASE: crypto.randomBytes(16).toString("hex"), PULUMI_CONFIG_PASSPHRASE_FILE: "" };
    await mustPulumi(["stack", "init", "dev"]);
    const key = cachedTestKeyPath();
    await mustPulumi(["config", "set", "sshPublicKey", fs.readFileSync(`${key}.pub`, "utf8").trim()]);
    await mustPulumi(["config", "set", "--secret", "sshPrivateKey"], fs.readFileSync(key, "utf8"));
    await mustPulumi(["config", "set", "--secret", "databaseUrl"], "postgres://orders:example@db.internal/orders");
});

after(async () => {
    // A failed test may leave the VM running: destroy whatever the stack still has.
    if (copy && (await stackVm().catch(() => undefined))) await pulumi(["destroy", "--yes", "--skip-preview"]);
    copy?.cleanup();
});

test("one pulumi up creates a cold cloud VM and deploys the example onto it while it boots: healthy, with the example's app code on the host", { timeout: 40 * MINUTE }, async () => {
    const up = await mustPulumi(["up", "--yes", "--skip-preview"]);
    process.stderr.write(`    example: VM created → service healthy in one up: ${up.seconds.toFixed(1)} s\n`);
    const vm = (await stackVm())!;
    assert.ok(vm, "the stack holds the VM");
    // The host really is a first boot driven by cloud-init: it made the login user and installed the pinned host key.
    // (`cloud-init status` exits 2 for "done, with recoverable errors": the state is what matters here.)
    assert.match(vmSsh(vm, "cloud-init status").stdout, /status: done/);
    const pinnedFingerprint = `SHA256:${crypto.createHash("sha256").update(Buffer.from(vm.hostKey.split(/\s+/)[1]!, "base64")).digest("base64").replace(/=+$/, "")}`;
    assert.equal(vmRun(vm, "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | awk '{print $2}'").trim(), pinnedFingerprint, "the host key is the one the VM resource generated and cloud-init installed");
    // The service: active, healthy, serving the example's code from the release, with its secret env.
    assert.equal(vmRun(vm, "systemctl is-active orders-api").trim(), "active");
    assert.match(vmRun(vm, "curl -sf http://127.0.0.1:8080/health"), /"service": "orders-api"/);
    assert.match(vmRun(vm, "curl -sf http://127.0.0.1:8080/orders"), /"database": true/);
    const source = fs.readFileSync(path.join(copy.app, "index.ts"), "utf8");
    const deployed = vmRun(vm, "cat /var/amarktai/app/backend/orders/main.py", { root: true });
    assert.ok(source.includes(deployed.trimEnd().split("\n").slice(0, 3).join("\n")), "the host's orders/main.py is the example's appFiles content");
    assert.match(deployed, /elif scope\["path"\] == "\/orders":/);
    assert.match(vmRun(vm, "readlink -f /var/amarktai/app/backend", { root: true }).trim(), /^\/var\/amarktai\/releases\/[0-9a-f]{16}\/app$/);
    // Its drop-ins from the example's overrides.
    assert.equal(vmRun(vm, "systemctl show -p MemoryMax --value orders-api").trim(), String(1024 ** 3));
    // Running it again changes nothing and touches no host.
    await mustPulumi(["up", "--yes", "--skip-preview", "--expect-no-changes"]);
});

test("pulumi destroy removes the service and the VM", { timeout: 15 * MINUTE }, async () => {
    const vm = (await stackVm())!;
    assert.ok(vm, "the stack holds the VM");
    await mustPulumi(["destroy", "--yes", "--skip-preview"]);
    assert.equal(await stackVm(), undefined, "no VM left in the stack");
    const list = spawnSync("bash", [path.join(REPO, "tools", "vm", "vm.sh"), "list"], { encoding: "utf8" }).stdout;
    assert.ok(!list.split("\n").some((l) => l.split(/\s+/)[0] === vm.name), `the VM ${vm.name} is gone:\n${list}`);
    assert.notEqual(vmSsh(vm, "true").code, 0, "nothing answers on its port");
});
