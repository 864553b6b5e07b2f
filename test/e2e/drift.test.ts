/**
 * Identity, renames and drift on one real VM, steps in order, each leaving
 * the VM healthy: renaming a host, adding a name and moving to another SSH
 * port update in place without a restart; two entries reaching one machine
 * are refused; each kind of hand-made drift is shown by `preview --refresh`
 * and repaired by `up --refresh`.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import { createHash } from "crypto";
import { TestStack } from "../../tools/stack";
import { VmInfo, forwardPort, hostCounters, startVm, stopVm, vmPrivateKey, vmRun, vmSsh } from "../../tools/vm";

const MINUTE = 60_000;
const OPENAI_API_KEY = `sk-drift-${Date.now()}`;
const UNIT = "/etc/systemd/system/amarktai-api.service";
/** The real .env (root-owned, outside what the service can write) and the notes' path, a root-owned link to it. */
const ENV = "/etc/amarktai-infra/amarktai-api/env";
const ENV_LINK = "/var/amarktai/app/backend/.env";
const OVERRIDE = "/etc/systemd/system/amarktai-api.service.d/override.conf";

let vm: VmInfo;
let stack: TestStack;
let host: Record<string, unknown>;

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");
const root = (command: string) => vmRun(vm, command, { root: true });
const show = (property: string) => vmRun(vm, `systemctl show -p ${property} --value amarktai-api`).trim();
const healthStatus = () => vmSsh(vm, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/health").stdout.trim();

/** The service is active, enabled and healthy, and got the configured secret. */
function assertHealthy(): void {
    assert.equal(vmRun(vm, "systemctl is-active amarktai-api").trim(), "active");
    assert.equal(vmRun(vm, "systemctl is-enabled amarktai-api").trim(), "enabled");
    assert.equal(healthStatus(), "200");
    const digest = JSON.parse(vmRun(vm, "curl -fsS 'http://127.0.0.1:8000/debug/env-digest?name=OPENAI_API_KEY'")) as { sha256: string };
    assert.equal(digest.sha256, sha256(OPENAI_API_KEY));
}

/** `preview --refresh --diff`: must succeed; returns its output. */
async function previewRefresh(): Promise<string> {
    const r = await stack.run(["preview", "--refresh", "--diff"]);
    assert.equal(r.code, 0, `preview --refresh failed:\n${r.stdout}\n${r.stderr}`);
    console.error(`    preview --refresh took ${r.seconds.toFixed(1)}s`);
    return r.stdout;
}

/** `up --refresh`: must succeed, leaving the service healthy. */
async function upRefresh(): Promise<void> {
    const r = await stack.up(["--refresh"]);
    assert.equal(r.code, 0, `up --refresh failed:\n${r.stdout}\n${r.stderr}`);
    console.error(`    up --refresh took ${r.seconds.toFixed(1)}s`);
    assertHealthy();
}

/** Since when the unit has been active (changes on every stop or restart). */
const activeSince = () => show("ActiveEnterTimestampMonotonic");

before(async () => {
    vm = startVm(`e2e-drift-${process.pid}`);
    stack = await TestStack.create("drift");
    host = { address: vm.host, port: vm.port, user: vm.user, hostKey: vm.hostKey };
    await stack.setConfig({ hosts: [host], app: { sourceDir: "demo-app" }, journald: { systemMaxUse: "1G" } });
    await stack.setSecret("sshPrivateKey", vmPrivateKey(vm));
    await stack.setSecret("secretEnv.OPENAI_API_KEY", OPENAI_API_KEY);
    const r = await stack.up();
    assert.equal(r.code, 0, `the first up failed:\n${r.stdout}\n${r.stderr}`);
    console.error(`    fresh up took ${r.seconds.toFixed(1)}s`);
});

after(() => {
    if (vm) stopVm(vm.name);
    stack?.cleanup();
});

test("adding a name, renaming the host and changing its SSH port update in place: 0 restarts, active throughout, then no changes", { timeout: 15 * MINUTE }, async () => {
    assertHealthy();
    const since = activeSince();
    const secondPort = forwardPort(vm);
    for (const [what, next] of [
        ["adding a name", { ...host, name: "vm" }],
        ["renaming the host", { ...host, name: "vm-renamed" }],
        ["changing the SSH port", { ...host, name: "vm-renamed", port: secondPort }],
    ] as const) {
        const before = hostCounters(vm);
        host = next;
        await stack.setConfig({ hosts: [next] });
        const r = await stack.up();
        assert.equal(r.code, 0, `${what}: up failed:\n${r.stdout}\n${r.stderr}`);
        assert.doesNotMatch(r.stdout, /\bdelete|\bcreate|replace/, `${what}: nothing is deleted, created or replaced:\n${r.stdout}`);
        const noop = await stack.run(["up", "--yes", "--skip-preview", "--expect-no-changes"]);
        assert.equal(noop.code, 0, `${what}: a following up --expect-no-changes failed:\n${noop.stdout}\n${noop.stderr}`);
        const afterwards = hostCounters(vm);
        assert.equal(afterwards.starts - before.starts, 0, `${what}: 0 restarts`);
        assert.equal(afterwards.reloads - before.reloads, 0, `${what}: no daemon-reload`);
        // The up and the no-op up reached nothing on the host: the only session is the counter read.
        assert.equal(afterwards.sessions - before.sessions, 1, `${what}: no SSH session`);
        assert.equal(activeSince(), since, `${what}: the service stayed active, never restarted`);
    }
    assertHealthy();
});

test("two entries reaching one machine are refused before any change", { timeout: 5 * MINUTE }, async () => {
    const before = hostCounters(vm);
    await stack.setConfig({ hosts: [host, { ...host, name: "vm-again", port: vm.port }] });
    try {
        const r = await stack.run(["preview"]);
        assert.notEqual(r.code, 0);
        assert.match(r.stdout + r.stderr, /hosts\[1\]\.hostKey: hosts\[1\] \('vm-again'\) and hosts\[0\] \('[^']+'\) have the same host key/);
        const u = await stack.up();
        assert.notEqual(u.code, 0);
        assert.equal(hostCounters(vm).sessions - before.sessions, 1, "no SSH session");
    } finally {
        await stack.setConfig({ hosts: [host] });
    }
    assertHealthy();
});

test("a hand-edited unit is shown by preview --refresh (the lines that differ) and put back by up --refresh", { timeout: 10 * MINUTE }, async () => {
    root(`sed -i 's/^RestartSec=5$/RestartSec=30/' ${UNIT} && systemctl daemon-reload`);
    assert.equal(show("RestartUSec"), "30s");
    const out = await previewRefresh();
    assert.match(out, /-\s+RestartSec=30/);
    assert.match(out, /\+\s+RestartSec=5/);
    await upRefresh();
    assert.equal(show("RestartUSec"), "5s");
});

test("a drop-in made by systemctl edit is shown by name, hash and directive names, never its secret values; up refuses it by default and removes it with foreignDropIns: remove", { timeout: 10 * MINUTE }, async () => {
    const token = `drop-in-token-${Date.now()}`;
    root(`mkdir -p ${OVERRIDE.replace(/\/[^/]+$/, "")} && printf '[Service]\\nEnvironment=API_TOKEN=%s\\nMemoryMax=50M\\n' ${token} > ${OVERRIDE} && systemctl daemon-reload`);
    const out = await previewRefresh();
    assert.match(out, /override\.conf/);
    assert.match(out, /\[Service\] Environment, MemoryMax=50M/);
    assert.match(out, /sha256\s*:\s*"[0-9a-f]{64}"/);
    assert.ok(!out.includes(token), "the drop-in's Environment= value reached the preview");
    assert.match(out, /foreignDropIns: refuse/);
    const since = activeSince();
    const refused = await stack.up(["--refresh"]);
    assert.notEqual(refused.code, 0, "up refuses to activate over a foreign drop-in");
    assert.match(refused.stdout + refused.stderr, /unmanaged drop-in\(s\) \S*override\.conf/);
    assert.match(refused.stdout + refused.stderr, /override\.conf \(sha256 [0-9a-f]{64}\): \[Service\] Environment, MemoryMax=50M/);
    assert.ok(!(refused.stdout + refused.stderr).includes(token), "the drop-in's Environment= value reached the refusal");
    assert.equal(activeSince(), since, "nothing was changed");
    assert.equal(vmSsh(vm, `test -f ${OVERRIDE}`, { root: true }).code, 0);
    await stack.setConfig({ foreignDropIns: "remove" });
    await upRefresh();
    assert.equal(vmSsh(vm, `test -e ${OVERRIDE}`, { root: true }).code, 1, "override.conf removed");
    assert.equal(show("MemoryMax"), "infinity");
});

test("a deleted .env is shown by preview --refresh and restored by up --refresh", { timeout: 10 * MINUTE }, async () => {
    root(`rm -f ${ENV_LINK} ${ENV}`);
    const out = await previewRefresh();
    assert.match(out, /absent on the host/);
    assert.ok(!out.includes(OPENAI_API_KEY), "no secret value in the preview");
    await upRefresh();
    assert.equal(root(`stat -c '%a %U %G' ${ENV}`).trim(), "640 root amarktai");
    assert.equal(root(`readlink ${ENV_LINK}`).trim(), ENV);
});

test("a .env made world-readable (chmod 0644) is shown by preview --refresh and put back to 0640 by up --refresh", { timeout: 10 * MINUTE }, async () => {
    root(`chmod 0644 ${ENV}`);
    const out = await previewRefresh();
    assert.match(out, /0644/);
    await upRefresh();
    assert.equal(root(`stat -c '%a %U %G' ${ENV}`).trim(), "640 root amarktai");
});

test("a disabled unit is shown by preview --refresh and enabled again by up --refresh", { timeout: 10 * MINUTE }, async () => {
    root("systemctl disable --quiet amarktai-api");
    const out = await previewRefresh();
    assert.match(out, /disabled, active/);
    await upRefresh();
});

test("a log directory re-owned and opened up, and a package slipped into the release's venv, are shown by preview --refresh and put back by up --refresh", { timeout: 15 * MINUTE }, async () => {
    root("chown root:root /var/amarktai/logs && chmod 0777 /var/amarktai/logs");
    root("mkdir \"$(echo /var/amarktai/venv/lib/python3*/site-packages)/evil-1.0.dist-info\"");
    const out = await previewRefresh();
    assert.match(out, /\/var\/amarktai\/logs\s*: "owner root:root \(wants amarktai:amarktai\), mode 0777 \(wants 0750\)"/);
    assert.match(out, /packages changed since it was built \(\+evil-1\.0\.dist-info\): the next up builds it again/);
    await upRefresh();
    assert.equal(root("stat -c '%a %U %G' /var/amarktai/logs").trim(), "750 amarktai amarktai");
    assert.equal(root("ls -d /var/amarktai/venv/lib/python3*/site-packages/evil-* 2>/dev/null | wc -l").trim(), "0", "the tampered venv was built again");
    // The rebuilt release is the one the notes' paths lead to, and it runs.
    root("/var/amarktai/venv/bin/python -c 'import uvicorn'");
});

test("a stopped service is shown by preview --refresh and started by up --refresh; then a refresh finds nothing, over one SSH session", { timeout: 10 * MINUTE }, async () => {
    root("systemctl stop amarktai-api");
    const out = await previewRefresh();
    assert.match(out, /enabled, inactive/);
    await upRefresh();
    const before = hostCounters(vm);
    const r = await stack.run(["preview", "--refresh", "--expect-no-changes"]);
    assert.equal(r.code, 0, `after the repairs a refresh still finds changes:\n${r.stdout}\n${r.stderr}`);
    assert.equal(hostCounters(vm).sessions - before.sessions, 2, "one SSH session for the refresh (plus the counter read)");
});
