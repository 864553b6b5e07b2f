/**
 * Reliability and security on a real VM with the real CLI: no secret in any
 * output, state, process list, journal or file but the .env; hostile values
 * reach the service byte for byte; the strict profile's score; a pinned host
 * key; root and sudo logins; and faults survived (SSH cut mid-activation,
 * kill -9, reboot, ten restarts, destroy and up again).
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import { createHash } from "crypto";
import * as net from "net";
import { TestStack } from "../../tools/stack";
import { VmInfo, hostCounters, startVm, stopVm, vmPrivateKey, vmRun, vmSsh, waitForSsh } from "../../tools/vm";

const MINUTE = 60_000;
const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

/** Legitimate secret values full of characters that break naive quoting. */
const HOSTILE: Record<string, string> = {
    OPENAI_API_KEY: `sk-${Date.now()}-$(touch /tmp/pwned)`,
    MONGO_URL: "mongodb://amarktai:p@ss'w\"rd$HOME@127.0.0.1:27017/db?x=%h%%",
    H_SPACES: "  two leading, two trailing  ",
    H_HASH: "value # not a comment",
    H_BACKSLASH: "C:\\path\\to\\n",
    H_BACKTICK: "`id` and ${PATH}",
    H_EQUALS: "==a=b==",
    H_UNICODE: "pässwörd-✓",
};

let vm: VmInfo;
let stack: TestStack;
/** Lines of the SSH private key that carry key material (the first line is a header common to every ed25519 key). */
let privateKeyLines: string[];

function health(): string {
    return vmSsh(vm, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/health").stdout.trim();
}

function envDigest(name: string): string | null {
    return (JSON.parse(vmRun(vm, `curl -fsS 'http://127.0.0.1:8000/debug/env-digest?name=${name}'`)) as { sha256: string | null }).sha256;
}

/** Every secret value the deployment handles, by name, including the generated JWT secret (read from the host's .env). */
function namedSecrets(): [string, string][] {
    const jwt = /^JWT_SECRET=(.*)$/m.exec(vmRun(vm, "cat /var/amarktai/app/backend/.env", { root: true }))?.[1];
    assert.ok(jwt && jwt.length >= 40, "no generated JWT_SECRET in the .env");
    return [
        ...Object.entries(HOSTILE).filter(([, v]) => v.trim().length >= 8),
        ["JWT_SECRET", jwt],
        ...privateKeyLines.map((l, i): [string, string] => [`sshPrivateKey line ${i + 2}`, l]),
    ];
}

function allSecrets(): string[] {
    return namedSecrets().map(([, v]) => v);
}

/** Fails naming the secret (never showing it) and where it appeared, with the secret masked in the context. */
function assertNoSecret(text: string, where: string): void {
    for (const [name, secret] of namedSecrets()) {
        const at = text.indexOf(secret);
        if (at >= 0) {
            const context = text.slice(Math.max(0, at - 200), at + secret.length + 200).split(secret).join("<SECRET>");
            assert.fail(`${name} appeared in ${where}:\n${context}`);
        }
    }
}

before(async () => {
    vm = startVm(`e2e-sec-${process.pid}`);
    const keyLines = vmPrivateKey(vm).trim().split("\n").slice(1, -1);
    privateKeyLines = keyLines.slice(1).filter((l) => l.length >= 20);
    assert.ok(privateKeyLines.length > 0);
    stack = await TestStack.create("sec");
    await stack.setConfig({
        hosts: [{ name: "vm", address: vm.host, port: vm.port, user: vm.user, hostKey: vm.hostKey }],
        app: { sourceDir: "demo-app" },
        hardening: "strict",
        env: { ENABLE_TRADING: "false" },
    });
    await stack.setSecret("sshPrivateKey", vmPrivateKey(vm));
    for (const [k, v] of Object.entries(HOSTILE)) {
        await stack.setSecret(`secretEnv.${k}`, v);
    }
    // Record the host's process list throughout the deployments.
    vmRun(vm, "systemd-run --unit=amarktai-test-pswatch --collect /bin/bash -c 'while :; do ps -eo args >> /root/ps.log; sleep 0.2; done'", { root: true });
});

after(() => {
    if (vm) stopVm(vm.name);
    stack?.cleanup();
});

test("up with --diff and verbose logging shows no secret, and hostile values reach the service byte for byte", { timeout: 20 * MINUTE }, async () => {
    // Verbose engine logs (-v=2) on stderr too. From -v=3 up, Pulumi's engine itself logs RegisterResource
    // payloads, decrypted secret outputs included (upstream behaviour, seen here): never run CI at -v>=3.
    const r = await stack.run(["up", "--yes", "--skip-preview", "--diff", "--logtostderr", "-v=2"]);
    assert.equal(r.code, 0, `up failed:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
    assert.equal(health(), "200");
    assertNoSecret(r.stdout + r.stderr, "the CLI's output");
    for (const [name, value] of Object.entries(HOSTILE)) {
        assert.equal(envDigest(name), sha256(value), `${name} did not reach the service unchanged`);
    }
    assert.equal(vmSsh(vm, "test -e /tmp/pwned").code, 1, "a value was executed by a shell");
});

test("the stack state (export without --show-secrets) holds no secret in plain text", { timeout: 2 * MINUTE }, async () => {
    const exported = await stack.mustRun(["stack", "export"]);
    assertNoSecret(exported.stdout, "pulumi stack export");
    assert.match(exported.stdout, /"ciphertext"/, "secrets should be stored encrypted");
});

test("a deployment that fails on purpose prints the journal but no secret", { timeout: 10 * MINUTE }, async () => {
    await stack.setConfig({ overrides: { broken: { environment: { DEMO_FAIL_ON_STARTUP: "1" } } } });
    const r = await stack.up();
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /did not become healthy/);
    assertNoSecret(r.stdout + r.stderr, "the output of a failed deployment");
    await stack.removeConfig("overrides");
    assert.equal((await stack.up()).code, 0);
    assert.equal(health(), "200");
});

test("no secret in the host's process list, journal or any file but the .env; the .env is never readable by others", { timeout: 5 * MINUTE }, () => {
    vmRun(vm, "systemctl stop amarktai-test-pswatch", { root: true });
    const patterns = allSecrets().join("\n") + "\n";
    // grep reads the secrets on stdin, so they are never on a command line in the VM.
    const ps = vmSsh(vm, "grep -c -F -f /dev/stdin /root/ps.log", { root: true, input: patterns });
    assert.equal(ps.stdout.trim(), "0", "a secret appeared in the host's process list during a deployment");
    assert.ok(Number(vmRun(vm, "wc -l < /root/ps.log", { root: true }).trim()) > 100, "the process list was not sampled");
    const journal = vmSsh(vm, "journalctl -q --no-pager -o cat | grep -c -F -f /dev/stdin", { root: true, input: patterns });
    assert.equal(journal.stdout.trim(), "0", "a secret appeared in the journal");
    const files = vmSsh(vm, "grep -rlF -f /dev/stdin /etc /var /root /home /tmp /run /opt /srv /usr/local 2>/dev/null | grep -v '^/etc/amarktai-infra/amarktai-api/env$' || true", { root: true, input: patterns });
    assert.equal(files.stdout.trim(), "", `secrets found in files other than the .env:\n${files.stdout}`);
    assert.equal(vmRun(vm, "stat -c '%a %U %G' /etc/amarktai-infra/amarktai-api/env /var/lib/amarktai-infra/amarktai-api/staged", { root: true }).trim(), "640 root amarktai\n700 root root");
});

test("the strict profile scores 2.0 or less while the service is healthy, logs, and connects out", { timeout: 5 * MINUTE }, async () => {
    const score = vmRun(vm, "systemd-analyze security --no-pager amarktai-api | tail -n 1", { root: true });
    const value = Number(/exposure level for amarktai-api\.service: ([\d.]+)/.exec(score)?.[1]);
    console.error(`    systemd-analyze security (strict): ${score.trim()}`);
    assert.ok(value <= 2.0, `exposure ${value} > 2.0`);
    assert.equal(health(), "200");
    const lines = () => Number(vmRun(vm, "grep -c startup /var/amarktai/logs/demo-app.log", { root: true }).trim());
    const before = lines();
    vmRun(vm, "systemctl restart amarktai-api && for i in $(seq 60); do curl -fs http://127.0.0.1:8000/health >/dev/null && break; sleep 1; done", { root: true });
    assert.equal(lines(), before + 1, "the service did not write its log after a restart");
    // An outbound TCP connection from the sandboxed service to a listener on this machine (QEMU maps 10.0.2.2 to its loopback).
    const server = net.createServer((socket) => socket.end());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
        const port = (server.address() as net.AddressInfo).port;
        const reply = JSON.parse(vmRun(vm, `curl -fsS 'http://127.0.0.1:8000/debug/connect?host=10.0.2.2&port=${port}'`)) as { connected: boolean };
        assert.equal(reply.connected, true, "the service could not connect out");
    } finally {
        server.close();
    }
});

test("kill -9 of the service's main process: back and healthy within RestartSec plus start time", { timeout: 3 * MINUTE }, async () => {
    const pid = vmRun(vm, "systemctl show -p MainPID --value amarktai-api").trim();
    const started = Date.now();
    vmRun(vm, `kill -9 ${pid} && sleep 1 && for i in $(seq 60); do [ "$(systemctl show -p MainPID --value amarktai-api)" != ${pid} ] && curl -fs http://127.0.0.1:8000/health >/dev/null && break; sleep 0.5; done`, { root: true });
    const seconds = (Date.now() - started) / 1000;
    console.error(`    back and healthy ${seconds.toFixed(1)}s after kill -9 (RestartSec=5, one SSH session ~2 s included)`);
    assert.equal(health(), "200");
    assert.notEqual(vmRun(vm, "systemctl show -p MainPID --value amarktai-api").trim(), pid);
    assert.ok(seconds < 30, `took ${seconds}s`);
});

test("the notes' restart-loop test: 10 restarts, each healthy, none of the bad messages in the journal", { timeout: 25 * MINUTE }, () => {
    const since = vmRun(vm, "date +%s").trim();
    const out = vmRun(
        vm,
        // Each restart may take its time on a loaded, emulated guest (python startup alone is seconds):
        // wait on health up to a deadline of 120 s per restart, and report how long each took.
        "for i in $(seq 10); do systemctl restart amarktai-api; ok=; t0=$(date +%s); while [ $(( $(date +%s) - t0 )) -lt 120 ]; do curl -fs http://127.0.0.1:8000/health >/dev/null && { ok=1; break; }; sleep 0.5; done; echo \"restart $i: ${ok:+healthy}\"; echo \"restart $i took $(( $(date +%s) - t0 ))s\"; done",
        { root: true },
    );
    assert.equal((out.match(/: healthy$/gm) ?? []).length, 10, out);
    const journal = vmRun(vm, `journalctl -q --no-pager -o cat -u amarktai-api --since @${since}`, { root: true });
    for (const bad of ["never awaited", "SchedulerNotRunningError", "Application shutdown failed", "Unclosed client session", "Traceback"]) {
        assert.ok(!journal.includes(bad), `the journal shows "${bad}"`);
    }
    assert.equal((journal.match(/Application shutdown complete/g) ?? []).length, 10);
});

test("the operator command on the VM: status takes memory and CPU from systemd's accounting, doctor finds the strict service healthy, and no output carries a secret", { timeout: 10 * MINUTE }, async () => {
    const ops = (...args: string[]) => stack.script("scripts/ops", [...args, "--stack", stack.name, "--config-file", stack.configFile]);
    const status = await ops("status", "--json");
    assert.equal(status.code, 0, status.stdout + status.stderr);
    const host = (JSON.parse(status.stdout) as { hosts: { memoryBytes: number; cpuSec: number; mainPid: number; ok: boolean }[] }).hosts[0]!;
    const memoryAfter = Number(vmRun(vm, "systemctl show -p MemoryCurrent --value amarktai-api").trim());
    const cpuAfter = Number(vmRun(vm, "systemctl show -p CPUUsageNSec --value amarktai-api").trim()) / 1e9;
    console.error(`    status: ${JSON.stringify(host)}; systemd after it: MemoryCurrent=${memoryAfter} CPUUsage=${cpuAfter.toFixed(2)}s`);
    assert.ok(host.ok && host.mainPid === Number(vmRun(vm, "systemctl show -p MainPID --value amarktai-api").trim()));
    assert.ok(host.memoryBytes > memoryAfter / 2 && host.memoryBytes < memoryAfter * 2, "memory is the unit's cgroup's, as systemd accounts it");
    assert.ok(host.cpuSec > 0 && host.cpuSec <= cpuAfter + 0.01, "CPU time is the unit's, as systemd accounts it");
    const doctor = await ops("doctor");
    console.error(doctor.stdout);
    assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
    // The notes' After=mongodb.service, with no MongoDB on this host: noted, not a fault, while the service runs.
    assert.match(doctor.stdout, /ok {4}dependencies +.*mongodb\.service: not found \(After\); the service runs without it/);
    const logs = await ops("logs", "-n", "200", "-o", "json");
    assert.equal(logs.code, 0, logs.stderr);
    assert.ok(logs.stdout.trim().split("\n").length >= 20, logs.stdout);
    for (const [where, text] of [["status", status.stdout + status.stderr], ["doctor", doctor.stdout + doctor.stderr], ["logs", logs.stdout + logs.stderr]] as const) {
        assertNoSecret(text, `scripts/ops ${where}`);
    }
});

test("an SSH connection cut in the middle of an activation: up fails clearly, the host finishes, the next up converges", { timeout: 10 * MINUTE }, async () => {
    await stack.setConfig({ overrides: { slow: { environment: { DEMO_STARTUP_DELAY_SEC: "15" } } } });
    const up = stack.up();
    // Wait until the activation has restarted the service into its slow start, then cut every ubuntu SSH session.
    let cut = false;
    for (let i = 0; i < 120 && !cut; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        if (vmSsh(vm, "journalctl -q -o cat -u amarktai-api -n 20 | grep -q 'delaying startup'", { root: true }).code === 0) {
            vmRun(vm, "pkill -KILL -f '^sshd-session: ubuntu' || true", { root: true });
            cut = true;
        }
    }
    assert.ok(cut, "never saw the activation restart the service");
    const r = await up;
    assert.notEqual(r.code, 0, "up should fail when its connection is cut");
    assert.match(r.stdout + r.stderr, /the SSH connection closed before the command finished/);
    // The activation went on without the connection; nothing half-written stays behind.
    vmRun(vm, "flock -w 180 /run/amarktai-infra-amarktai-api.lock true", { root: true });
    assert.equal(vmRun(vm, "find /etc/systemd /var/amarktai /var/lib/amarktai-infra -name '*.amarktai-infra.tmp' -o -name '.incoming.*' | wc -l", { root: true }).trim(), "0");
    const again = await stack.up();
    assert.equal(again.code, 0, `the next up did not converge:\n${again.stdout}\n${again.stderr}`);
    assert.equal(health(), "200");
    assert.match(vmRun(vm, "systemctl show -p Environment --value amarktai-api"), /DEMO_STARTUP_DELAY_SEC=15/);
    await stack.removeConfig("overrides");
    assert.equal((await stack.up()).code, 0);
});

test("logging in as root works as well as through sudo", { timeout: 10 * MINUTE }, async () => {
    const before = vmRun(vm, "journalctl -q --no-pager -o cat _COMM=sshd-session | grep -c 'Accepted publickey for root' || true", { root: true });
    await stack.setConfig({ hosts: [{ name: "vm", address: vm.host, port: vm.port, user: "root", hostKey: vm.hostKey }], env: { ENABLE_TRADING: "true" } });
    const r = await stack.up();
    assert.equal(r.code, 0, `up as root failed:\n${r.stdout}\n${r.stderr}`);
    assert.equal(health(), "200");
    assert.equal(envDigest("ENABLE_TRADING"), sha256("true"));
    const afterCount = vmRun(vm, "journalctl -q --no-pager -o cat _COMM=sshd-session | grep -c 'Accepted publickey for root' || true", { root: true });
    assert.ok(Number(afterCount) > Number(before) + 1, "the deployment did not log in as root");
    await stack.setConfig({ hosts: [{ name: "vm", address: vm.host, port: vm.port, user: vm.user, hostKey: vm.hostKey }] });
    assert.equal((await stack.up()).code, 0);
});

test("a host that presents another host key is refused before any command runs", { timeout: 5 * MINUTE }, async () => {
    const other = await TestStack.create("sec-hostkey");
    try {
        await other.setConfig({
            hosts: [{ name: "vm", address: vm.host, port: vm.port, user: vm.user, hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJrLw0/yHgIQgd1mOq03l/DYoJq/TmjmAsaEpj7CY3VG" }],
            app: { sourceDir: "demo-app" },
        });
        await other.setSecret("sshPrivateKey", vmPrivateKey(vm));
        const sudoBefore = vmRun(vm, "journalctl -q --no-pager -o cat _COMM=sudo | grep -c 'COMMAND=' || true", { root: true });
        const before = hostCounters(vm);
        const r = await other.up();
        assert.notEqual(r.code, 0);
        assert.match(r.stdout + r.stderr, /host key verification failed for ubuntu@127\.0\.0\.1:\d+: the host presented a different ssh-ed25519 key than the pinned one/);
        assert.equal(hostCounters(vm).sessions - before.sessions, 1, "a session was opened with an unpinned host key (the count includes the counting session)");
        assert.equal(vmRun(vm, "journalctl -q --no-pager -o cat _COMM=sudo | grep -c 'COMMAND=' || true", { root: true }), sudoBefore, "a command ran");
    } finally {
        other.cleanup();
    }
});

test("after a reboot the service is active and healthy without any up", { timeout: 10 * MINUTE }, async () => {
    vmSsh(vm, "systemctl reboot", { root: true });
    await new Promise((r) => setTimeout(r, 10_000));
    await waitForSsh(vm, 8 * MINUTE);
    let code = "";
    for (let i = 0; i < 60 && code !== "200"; i++) {
        code = health();
        if (code !== "200") await new Promise((r) => setTimeout(r, 2000));
    }
    assert.equal(code, "200");
    assert.equal(vmRun(vm, "systemctl is-active amarktai-api").trim(), "active");
});

test("destroy, then up again: the service comes back with the same .env and data", { timeout: 10 * MINUTE }, async () => {
    const envBefore = vmRun(vm, "sha256sum /var/amarktai/app/backend/.env", { root: true });
    vmRun(vm, "echo keep-me > /var/amarktai/app/user-data.txt", { root: true });
    assert.equal((await stack.run(["destroy", "--yes", "--skip-preview"])).code, 0);
    assert.notEqual(vmSsh(vm, "systemctl is-active amarktai-api").stdout.trim(), "active");
    const r = await stack.up();
    assert.equal(r.code, 0, `up after destroy failed:\n${r.stdout}\n${r.stderr}`);
    assert.equal(health(), "200");
    assert.equal(vmRun(vm, "sha256sum /var/amarktai/app/backend/.env", { root: true }), envBefore, "the .env changed (JWT_SECRET not kept)");
    assert.equal(vmRun(vm, "cat /var/amarktai/app/user-data.txt", { root: true }).trim(), "keep-me");
});
