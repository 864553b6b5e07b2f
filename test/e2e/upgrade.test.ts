/**
 * Upgrading the library under a deployed stack: the service is deployed with
 * release 0.1.0 (commit 5fdb2c7, checked out and built beside this one), then
 * the current code runs against the same state: `up` converges without a
 * restart (renamed resources are adopted through aliases, older state is
 * migrated), `refresh` reads the host, and `destroy` removes what it should.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { TestStack } from "../../tools/stack";
import { REPO, VmInfo, hostCounters, startVm, stopVm, vmPrivateKey, vmRun, vmSsh } from "../../tools/vm";

const MINUTE = 60_000;
/** Release 0.1.0. */
const RELEASE_0_1_0 = "5fdb2c7";
const UNIT = "/etc/systemd/system/amarktai-api.service";
const ENV = "/var/amarktai/app/backend/.env";

let vm: VmInfo;
let stack: TestStack;
let oldCheckout = "";

const healthStatus = () => vmSsh(vm, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/health").stdout.trim();
const show = (property: string) => vmRun(vm, `systemctl show -p ${property} --value amarktai-api`).trim();

before(async () => {
    vm = startVm(`e2e-upgrade-${process.pid}`);
    // Release 0.1.0 beside this checkout, built with the same toolchain (same lock file: the same node_modules).
    oldCheckout = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-0.1.0-"));
    execFileSync("bash", ["-c", 'git -C "$1" archive "$2" | tar -x -C "$3"', "extract", REPO, RELEASE_0_1_0, oldCheckout], { stdio: ["ignore", "ignore", "inherit"] });
    // A hard-linked copy, never a symlink: 0.1.0's setup may run `npm ci`, which empties node_modules first.
    execFileSync("cp", ["-al", path.join(REPO, "node_modules"), path.join(oldCheckout, "node_modules")]);
    execFileSync("bash", [path.join(oldCheckout, "scripts", "setup.sh")], { stdio: ["ignore", "ignore", "inherit"] });
    stack = await TestStack.create("upgrade");
    await stack.setConfig({
        hosts: [{ name: "vm", address: vm.host, port: vm.port, user: vm.user, hostKey: vm.hostKey }],
        app: { sourceDir: "demo-app" },
        // One drop-in (the demo app is single-process: several uvicorn workers are not what this checks).
        overrides: { memory: { memoryMax: "1G" } },
        journald: { systemMaxUse: "1G" },
    });
    await stack.setSecret("sshPrivateKey", vmPrivateKey(vm));
    await stack.setSecret("secretEnv.OPENAI_API_KEY", `sk-upgrade-${Date.now()}`);
});

after(() => {
    if (vm) stopVm(vm.name);
    stack?.cleanup();
    if (oldCheckout) fs.rmSync(oldCheckout, { recursive: true, force: true });
});

test("release 0.1.0 deploys the service", { timeout: 20 * MINUTE }, async () => {
    const r = await stack.up([], oldCheckout);
    assert.equal(r.code, 0, `0.1.0 up failed:\n${r.stdout}\n${r.stderr}`);
    console.error(`    0.1.0 fresh up took ${r.seconds.toFixed(1)}s`);
    assert.equal(healthStatus(), "200");
});

test("the current code converges on 0.1.0's state: no replace; it creates only the release, its resolved requirements and the socket unit, and deletes only 0.1.0's per-file app resources; one restart; then no changes", { timeout: 15 * MINUTE }, async () => {
    const before = hostCounters(vm);
    const preview = await stack.run(["preview", "--diff"]);
    assert.equal(preview.code, 0, preview.stdout + preview.stderr);
    assert.doesNotMatch(preview.stdout, /\+-|-\+|\bto replace\b/, `the upgrade must not replace anything:\n${preview.stdout}`);
    // Releases (after 0.1.0) carry the app's files and the venv: one new AppRelease, built from the requirements resolved
    // once (one new ResolvedRequirements), and 0.1.0's one-resource-per-app-file go. Socket activation adds one file: the
    // socket unit.
    const created = [...preview.stdout.matchAll(/^\s+\+ pulumi-nodejs:dynamic\/amarktai:(\w+): \(create\)/gm)].map((m) => m[1]).sort();
    assert.deepEqual(created, ["AppRelease", "HostFile", "ResolvedRequirements"], `only the release, its resolved requirements and the socket unit are created:\n${preview.stdout}`);
    assert.match(preview.stdout, /\+ pulumi-nodejs:dynamic\/amarktai:HostFile: \(create\)\n(?:.*\n)*?.*::amarktai-api-[^\]]*-socket\]/, "the created file is the socket unit");
    const deleted = [...preview.stdout.matchAll(/^\s+- pulumi-nodejs:dynamic\/amarktai:HostFile: \(delete\)\n(?:.*\n)*?.*\[urn=[^\]]*::([^\]]+)\]/gm)].map((m) => m[1]);
    assert.ok(deleted.every((name) => /-app-/.test(name!)), `only 0.1.0's app-file resources are deleted: ${deleted.join(", ")}`);
    assert.equal(hostCounters(vm).sessions - before.sessions, 1, "a preview opens no SSH session");
    const r = await stack.up();
    assert.equal(r.code, 0, `up with the current code failed:\n${r.stdout}\n${r.stderr}`);
    console.error(`    upgrade up took ${r.seconds.toFixed(1)}s`);
    assert.doesNotMatch(r.stdout, /\breplaced\b/);
    // The unit changes (EnvironmentFile= names the root-owned .env) and the app moves into a release: one restart.
    assert.ok(hostCounters(vm).starts - before.starts <= 1, "at most one restart");
    assert.equal(healthStatus(), "200");
    assert.equal(vmRun(vm, "systemctl is-active amarktai-api.socket").trim(), "active", "the upgraded service runs behind the socket");
    assert.match(vmRun(vm, "sudo cat /var/lib/amarktai-infra/amarktai-api/owner"), /^amarktai-infra\/upgrade-[0-9a-f]+\/amarktai-api-[0-9a-f]{12} \d+$/m, "the service's owner is recorded");
    const noop = await stack.run(["up", "--yes", "--skip-preview", "--expect-no-changes"]);
    assert.equal(noop.code, 0, noop.stdout + noop.stderr);
});

test("refresh reads the upgraded stack's host: a hand edit is seen and repaired", { timeout: 10 * MINUTE }, async () => {
    vmRun(vm, `sed -i 's/^RestartSec=5$/RestartSec=30/' ${UNIT} && systemctl daemon-reload`, { root: true });
    const preview = await stack.run(["preview", "--refresh", "--diff"]);
    assert.equal(preview.code, 0, preview.stdout + preview.stderr);
    assert.match(preview.stdout, /RestartSec=30/);
    const r = await stack.up(["--refresh"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(show("RestartUSec"), "5s");
    const refresh = await stack.run(["refresh", "--yes", "--expect-no-changes"]);
    assert.equal(refresh.code, 0, refresh.stdout + refresh.stderr);
});

test("destroy removes the unit, its drop-ins, the journald drop-in and the library's state but its record of what it created, and keeps the data", { timeout: 10 * MINUTE }, async () => {
    const r = await stack.run(["destroy", "--yes", "--skip-preview"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // 0.1.0's shared journald drop-in moved to the service's own on the upgrade; neither is left.
    for (const gone of [UNIT, `${UNIT}.d`, "/etc/systemd/journald.conf.d/60-amarktai-infra.conf", "/etc/systemd/journald.conf.d/60-amarktai-infra-amarktai-api.conf"]) {
        assert.equal(vmSsh(vm, `test -e ${gone}`, { root: true }).code, 1, `${gone} is removed`);
    }
    // Staged copies, owner record and backups go; the record of what the library created stays, so a later
    // up (or purge) still knows what is its own (0.1.0 kept no such record: what it made was adopted, not recorded).
    assert.equal(vmRun(vm, "ls -A /var/lib/amarktai-infra/amarktai-api", { root: true }).trim(), "created");
    assert.equal(vmSsh(vm, "systemctl is-active amarktai-api").stdout.trim(), "inactive");
    assert.equal(vmSsh(vm, `test -f ${ENV}`, { root: true }).code, 0, "the .env (data) is kept");
});
