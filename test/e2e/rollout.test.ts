/**
 * Several hosts: created in parallel, changed in batches. A batch that fails
 * its health check stops the rollout; later hosts keep running the previous
 * version untouched.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { TestStack } from "../../tools/stack";
import { REPO, VmInfo, hostCounters, startVm, stopVm, vmPrivateKey, vmRun, vmSsh } from "../../tools/vm";

const MINUTE = 60_000;
let vms: VmInfo[] = [];
let stack: TestStack;

const health = (vm: VmInfo) => vmSsh(vm, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/health").stdout.trim();

before(async () => {
    vms = [startVm(`e2e-roll1-${process.pid}`), startVm(`e2e-roll2-${process.pid}`)];
    stack = await TestStack.create("roll");
    await stack.setConfig({
        hosts: vms.map((vm, i) => ({ name: `vm${i + 1}`, address: vm.host, port: vm.port, user: vm.user, hostKey: vm.hostKey })),
        app: { sourceDir: "demo-app" },
        rollout: { maxUnavailable: 1 },
    });
    await stack.setSecret("sshPrivateKey", vmPrivateKey(vms[0]!));
});

/** A copy of the demo app inside the project whose release cannot start. */
const brokenApp = path.join(REPO, ".test-apps", `rollout-broken-${process.pid}`);

after(() => {
    for (const vm of vms) stopVm(vm.name);
    stack?.cleanup();
    fs.rmSync(brokenApp, { recursive: true, force: true });
});

test("two hosts are brought up in one pulumi up, both healthy", { timeout: 20 * MINUTE }, async () => {
    const r = await stack.up();
    assert.equal(r.code, 0, `up failed:\n${r.stdout}\n${r.stderr}`);
    console.error(`    fresh up of 2 hosts took ${r.seconds.toFixed(1)}s`);
    for (const vm of vms) assert.equal(health(vm), "200");
});

test("a failing batch stops the rollout: the second host is untouched and keeps serving", { timeout: 10 * MINUTE }, async () => {
    const second = vms[1]!;
    const invocation = vmRun(second, "systemctl show -p InvocationID --value amarktai-api").trim();
    const before = hostCounters(second);
    await stack.setConfig({ overrides: { broken: { environment: { DEMO_FAIL_ON_STARTUP: "1" } } } });
    const r = await stack.up();
    assert.notEqual(r.code, 0, "the rollout should fail on the first host");
    assert.match(r.stdout + r.stderr, /did not become healthy; the previous files were restored/);
    // First host: rolled back and serving. Second host: never activated.
    assert.equal(health(vms[0]!), "200");
    assert.equal(vmSsh(vms[0]!, "test -e /etc/systemd/system/amarktai-api.service.d/10-broken.conf").code, 1);
    assert.equal(vmRun(second, "systemctl show -p InvocationID --value amarktai-api").trim(), invocation, "the second host's service was restarted");
    assert.equal(vmSsh(second, "test -e /etc/systemd/system/amarktai-api.service.d/10-broken.conf").code, 1, "the failing drop-in went live on the second host");
    assert.equal(hostCounters(second).reloads, before.reloads, "systemd was reloaded on the second host");
    assert.equal(health(second), "200");
});

test("a release that fails health is switched back on the first host; the second host keeps its release untouched", { timeout: 10 * MINUTE }, async () => {
    const currentRelease = (vm: VmInfo) => vmRun(vm, "readlink /var/amarktai/releases/current").trim();
    const [first, second] = [vms[0]!, vms[1]!];
    const releases = [currentRelease(first), currentRelease(second)];
    const invocation = vmRun(second, "systemctl show -p InvocationID --value amarktai-api").trim();
    fs.mkdirSync(brokenApp, { recursive: true });
    fs.writeFileSync(path.join(brokenApp, "server.py"), 'raise RuntimeError("this release cannot start")\n');
    await stack.removeConfig("overrides");
    await stack.setConfig({ app: { sourceDir: path.relative(REPO, brokenApp) } });
    const r = await stack.up();
    assert.notEqual(r.code, 0, "the rollout should fail on the first host");
    assert.match(r.stdout + r.stderr, /did not become healthy/);
    assert.equal(currentRelease(first), releases[0], "the first host was not switched back");
    assert.equal(health(first), "200");
    assert.equal(currentRelease(second), releases[1], "the second host was switched");
    assert.equal(vmRun(second, "systemctl show -p InvocationID --value amarktai-api").trim(), invocation, "the second host's service was restarted");
    assert.equal(health(second), "200");
    await stack.setConfig({ app: { sourceDir: "demo-app" } });
});

test("fixing the config rolls the change out to every host", { timeout: 10 * MINUTE }, async () => {
    await stack.setConfig({ overrides: { workers: { workers: 2 } } });
    const r = await stack.up();
    assert.equal(r.code, 0, `up failed:\n${r.stdout}\n${r.stderr}`);
    for (const vm of vms) {
        assert.equal(health(vm), "200");
        assert.match(vmRun(vm, "systemctl show -p ExecStart --value amarktai-api"), /--workers 2/);
        assert.equal(vmSsh(vm, "test -e /etc/systemd/system/amarktai-api.service.d/10-broken.conf").code, 1);
    }
});
