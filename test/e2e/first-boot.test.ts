/**
 * The stack program against a fresh cloud-image-like VM in its first minute:
 * booted cold, `up` starts at once, while sshd is not up yet, cloud-init is
 * creating the login user and installing the host key, and then a first-boot
 * stand-in for unattended-upgrades holds apt's and dpkg's locks. A log path
 * under Ubuntu's group-writable /var/log is refused with the reason before
 * anything changes; with the pip installer (apt installs python3-venv) the
 * next `up` waits for the locks and ends healthy.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import { TestStack } from "../../tools/stack";
import { VmInfo, startCloudVm, stopVm, vmPrivateKey, vmRun, vmSsh } from "../../tools/vm";

const MINUTE = 60_000;
/** Long enough that the locks are still held when the second `up` reaches apt, on a loaded machine. */
const APT_LOCK_SEC = 120;
let vm: VmInfo;
let stack: TestStack;
let vmStarted = 0;

before(async () => {
    stack = await TestStack.create("boot");
    vmStarted = Date.now();
    vm = startCloudVm(`e2e-boot-${process.pid}`, { aptLockSec: APT_LOCK_SEC });
    await stack.setConfig({
        hosts: [{ name: "fresh", address: vm.host, port: vm.port, user: vm.user, hostKey: vm.hostKey }],
        app: { sourceDir: "demo-app" },
        releases: { installer: "pip" },
        paths: { logs: "/var/log/amarktai-api" },
    });
    await stack.setSecret("sshPrivateKey", vmPrivateKey(vm));
});

after(() => {
    if (vm) stopVm(vm.name);
    stack?.cleanup();
});

test("up against a VM still booting waits for SSH, boot and cloud-init, then refuses a log directory under the group-writable /var/log naming why, before changing anything", { timeout: 30 * MINUTE }, async () => {
    const r = await stack.up();
    const output = r.stdout + r.stderr;
    assert.notEqual(r.code, 0, `up should have refused paths.logs:\n${output}`);
    assert.match(output, /paths\.logs: \/var\/log\/amarktai-api: .*\/var\/log is writable by group syslog/);
    process.stderr.write(`    first-boot: VM start → refusal after waiting for the host: ${((Date.now() - vmStarted) / 1000).toFixed(1)} s\n`);
    // It waited for the host: cloud-init had finished before the refusal, and nothing was created.
    assert.match(vmSsh(vm, "cloud-init status").stdout, /status: done/);
    assert.equal(vmRun(vm, "getent passwd amarktai || echo none").trim(), "none");
    assert.equal(vmRun(vm, "test -e /var/log/amarktai-api && echo exists || echo absent").trim(), "absent");
    assert.equal(vmRun(vm, "stat -c '%U:%G %a' /var/log").trim(), "root:syslog 775");
});

test("the next up waits for apt's and dpkg's locks held by the first-boot upgrades, installs python3-venv for pip, and ends healthy", { timeout: 30 * MINUTE }, async () => {
    await stack.removeConfig("paths");
    const r = await stack.up();
    assert.equal(r.code, 0, `up failed:\n${r.stdout}\n${r.stderr}`);
    process.stderr.write(`    first-boot: VM start → healthy (with the refused up and the lock wait): ${((Date.now() - vmStarted) / 1000).toFixed(1)} s\n`);
    assert.equal(vmRun(vm, "systemctl is-active amarktai-api").trim(), "active");
    assert.equal(vmRun(vm, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/health").trim(), "200");
    // apt really ran under the held locks: it finished only after the lock holder let go.
    const released = Number(vmRun(vm, "journalctl -q --no-pager -o cat -t first-boot-upgrades | sed -n 's/^locks released at \\([0-9.]*\\) .*/\\1/p' | head -n1", { root: true }).trim());
    // dpkg writes a package's file list when it installs it (both times are the guest's clock).
    const venvInstalled = Number(vmRun(vm, "stat -c %Y /var/lib/dpkg/info/python3*-venv.list | sort -n | tail -n1", { root: true }).trim());
    assert.ok(released > 0, "the lock holder logged when it released the locks");
    assert.ok(venvInstalled >= Math.floor(released), `python3-venv was installed (${venvInstalled}) only after the locks were released (${released})`);
    assert.match(r.stdout + r.stderr, /waiting for (apt|dpkg)/i, "the wait was shown");
    // Nothing left to do.
    const again = await stack.up(["--expect-no-changes"]);
    assert.equal(again.code, 0, `second up changed something:\n${again.stdout}\n${again.stderr}`);
});
