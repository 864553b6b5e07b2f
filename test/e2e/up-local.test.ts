/**
 * `scripts/up-local.sh`, the quick start, run twice in a fresh clone against
 * one VM: the local stack's settings belong to the user. An override added to
 * them between the runs is applied by the second run and the file is left
 * byte for byte as the user wrote it.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { freshClone } from "../support/clone";
import { VmInfo, startVm, stopVm, vmRun } from "../../tools/vm";

const MINUTE = 60_000;
let vm: VmInfo;
let clone: string;

/** Runs up-local.sh in the clone against the test's VM, with no backend settings of the caller's. */
function upLocal(): Promise<{ code: number; output: string }> {
    const env: NodeJS.ProcessEnv = { ...process.env, AMARKTAI_LOCAL_VM: vm.name };
    for (const k of ["PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_ACCESS_TOKEN"]) delete env[k];
    return new Promise((resolve, reject) => {
        const child = spawn("bash", ["scripts/up-local.sh"], { cwd: clone, env, stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (d: Buffer) => (output += d.toString()));
        child.stderr.on("data", (d: Buffer) => (output += d.toString()));
        child.on("error", reject);
        child.on("close", (code) => resolve({ code: code ?? 1, output }));
    });
}

before(() => {
    vm = startVm(`e2e-uplocal-${process.pid}`);
    clone = freshClone();
    // Its own build, as on a real fresh clone (setup.sh builds it), not the checkout's.
    fs.unlinkSync(path.join(clone, "dist"));
});

after(() => {
    if (vm) stopVm(vm.name);
    if (clone) fs.rmSync(clone, { recursive: true, force: true });
});

test("an override the user adds to the local stack's settings survives the next up-local.sh, which applies it", { timeout: 25 * MINUTE }, async () => {
    const first = await upLocal();
    assert.equal(first.code, 0, first.output);
    const settings = path.join(clone, ".pulumi-state", "Pulumi.local.yaml");
    assert.match(first.output, /your settings are in \.pulumi-state\/Pulumi\.local\.yaml/);
    assert.match(fs.readFileSync(settings, "utf8"), /^ {6}hostKey: ssh-ed25519 /m, "the VM's host key was filled in");

    // The user adds an override, with a comment, where the README says.
    // (One process: several uvicorn workers fail their own health checks on a loaded, emulated VM.)
    const edited = fs.readFileSync(settings, "utf8").replace(/^config:\n/m, "config:\n  # more logging, added by hand\n  amarktai-infra:overrides:\n    logging:\n      logLevel: debug\n");
    fs.writeFileSync(settings, edited);

    const second = await upLocal();
    assert.equal(second.code, 0, second.output);
    assert.equal(fs.readFileSync(settings, "utf8"), edited, "up-local.sh rewrote the user's settings");
    assert.match(second.output, /hosts in \.pulumi-state\/Pulumi\.local\.yaml already match this VM/);
    assert.match(vmRun(vm, "systemctl show -p ExecStart --value amarktai-api"), /--log-level debug /, "the override was not applied");
    assert.match(second.output, /\/health answers 200/);
});
