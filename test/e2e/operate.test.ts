/**
 * The operator command (`scripts/ops`, the package's `amarktai-ops`) as an
 * operator uses it, against a stack of two real hosts deployed by `up`:
 * status, logs (-n, --since, -o json, --output, -f while a restart happens),
 * a rolling restart in batches, the notes' restart loop, and doctor naming
 * each of the notes' four "won't start" causes, each set up on purpose.
 *
 * Two container hosts: real systemd, journald, sockets and SSH at native
 * speed; nothing here depends on the kernel a VM would add.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { TestStack } from "../../tools/stack";
import { VmInfo, startContainer, stopContainer, vmPrivateKey, vmRun } from "../../tools/vm";

const MINUTE = 60_000;
const UNIT = "amarktai-api.service";
const SOCKET = "amarktai-api.socket";
const SECRET = "s3cr3t-value-never-printed";
let h1: VmInfo;
let h2: VmInfo;
let stack: TestStack;

const ops = (...args: string[]) => stack.script("scripts/ops", [...args, "--stack", stack.name, "--config-file", stack.configFile]);
const show = (host: VmInfo, property: string) => vmRun(host, `systemctl show -p ${property} --value ${UNIT}`).trim();

/** Waits until `check` holds, failing with `what` after `ms`. */
async function until(what: string, ms: number, check: () => boolean): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
        assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 500));
    }
}

before(async () => {
    [h1, h2] = await Promise.all([startContainer(`e2e-ops1-${process.pid}`), startContainer(`e2e-ops2-${process.pid}`)]);
    stack = await TestStack.create("ops");
    await stack.setConfig({
        hosts: [
            { name: "h1", address: h1.host, port: h1.port, user: h1.user, hostKey: h1.hostKey },
            { name: "h2", address: h2.host, port: h2.port, user: h2.user, hostKey: h2.hostKey },
        ],
        app: { sourceDir: "demo-app" },
        dependencies: { after: ["network.target"] },
    });
    await stack.setSecret("sshPrivateKey", vmPrivateKey(h1));
    await stack.setSecret("secretEnv.JWT_SECRET", SECRET);
    const r = await stack.up();
    assert.equal(r.code, 0, `up failed:\n${r.stdout}\n${r.stderr}`);
});

after(async () => {
    await Promise.all([h1, h2].filter(Boolean).map((h) => stopContainer(h.name)));
    stack?.cleanup();
});

test("status shows each host's unit state, main PID, restarts, live release, last deploy and health, with a fleet summary; --json has the same", { timeout: 5 * MINUTE }, async () => {
    const r = await ops("status");
    console.error(r.stdout);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^h1 +active\/running +enabled +\d+ /m);
    assert.match(r.stdout, /^h2 +active\/running +enabled +\d+ /m);
    assert.match(r.stdout, /2 hosts: 2 healthy, 0 unhealthy, 0 unreachable/);
    const j = await ops("status", "--json");
    assert.equal(j.code, 0, j.stderr);
    const hosts = (JSON.parse(j.stdout) as { hosts: Record<string, unknown>[] }).hosts;
    assert.deepEqual(hosts.map((h) => h.host), ["h1", "h2"]);
    for (const [h, info] of [[h1, hosts[0]!], [h2, hosts[1]!]] as const) {
        assert.equal(info.mainPid, Number(show(h, "MainPID")));
        assert.equal(info.restarts, Number(show(h, "NRestarts")));
        assert.deepEqual([info.active, info.enabled, info.failed, info.healthy, info.ok], ["active", "enabled", false, true, true]);
        assert.equal(info.release, path.basename(vmRun(h, "readlink /var/amarktai/releases/current", { root: true }).trim()));
        assert.equal((info.lastActivation as { outcome: string }).outcome, "healthy");
        assert.ok(typeof info.uptimeSec === "number" && info.uptimeSec >= 0, JSON.stringify(info));
        assert.ok(typeof info.cpuSec === "number" && info.cpuSec > 0, JSON.stringify(info));
        assert.ok(typeof info.memoryBytes === "number" && info.memoryBytes > 10 * 1024 * 1024, JSON.stringify(info));
    }
    assert.doesNotMatch(r.stdout + j.stdout, new RegExp(SECRET));
});

test("status names a stopped unit and an unreachable host, still reports the others, and exits non-zero", { timeout: 5 * MINUTE }, async () => {
    const hosts = [
        { name: "h1", address: h1.host, port: h1.port, user: h1.user, hostKey: h1.hostKey },
        { name: "h2", address: h2.host, port: h2.port, user: h2.user, hostKey: h2.hostKey },
    ];
    // A third host whose SSH port nobody listens on.
    await stack.setConfig({ hosts: [...hosts, { name: "gone", address: "127.0.0.1", port: 9, user: "root", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJrLw0/yHgIQgd1mOq03l/DYoJq/TmjmAsaEpj7CY3VG" }] });
    vmRun(h2, `systemctl stop ${UNIT}`, { root: true });
    try {
        const r = await ops("status", "--connect-timeout", "0");
        console.error(r.stdout);
        assert.equal(r.code, 1);
        assert.match(r.stdout, /^h1 +active\/running/m);
        assert.match(r.stdout, /^h2 +inactive\/dead +enabled +- /m);
        assert.match(r.stdout, /^gone +unreachable/m);
        assert.match(r.stdout, /^gone: .*127\.0\.0\.1:9/m);
        assert.match(r.stdout, /3 hosts: 1 healthy, 1 unhealthy, 1 unreachable/);
    } finally {
        vmRun(h2, `systemctl start ${UNIT}`, { root: true });
        await stack.setConfig({ hosts });
    }
});

test("logs: -n, --since and -o json read every host's journal, each line prefixed by its host, and --output exports to a private file", { timeout: 5 * MINUTE }, async () => {
    const r = await ops("logs", "-n", "3");
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    console.error(lines.join("\n"));
    assert.equal(lines.filter((l) => l.startsWith("h1 ")).length, 3);
    assert.equal(lines.filter((l) => l.startsWith("h2 ")).length, 3);
    for (const l of lines) assert.match(l, /^h[12] \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \S+(\[\d+\])?: /);
    const times = lines.map((l) => l.split(" ")[1]!);
    assert.deepEqual(times, [...times].sort(), "one timeline, oldest first");

    const since = await ops("logs", "--since", "10 minutes ago", "-o", "json");
    assert.equal(since.code, 0, since.stderr);
    const records = since.stdout.trim().split("\n").map((l) => JSON.parse(l) as { host: string; message: string; realtimeUsec: number });
    assert.ok(records.some((x) => x.host === "h1" && /startup complete/.test(x.message)), since.stdout);
    assert.ok(records.some((x) => x.host === "h2" && /startup complete/.test(x.message)), since.stdout);
    assert.ok(records.every((x) => x.realtimeUsec >= (Date.now() - 11 * MINUTE) * 1000));
    const future = await ops("logs", "--since", "2099-01-01");
    assert.equal(future.code, 0, future.stderr);
    assert.equal(future.stdout, "");

    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ops-")), "journal.txt");
    const exported = await ops("logs", "-n", "5", "--output", file);
    assert.equal(exported.code, 0, exported.stderr);
    assert.equal(exported.stdout, "");
    assert.match(exported.stderr, new RegExp(`10 lines from 2 hosts written to ${file.replace(/[.]/g, "\\.")}`));
    assert.equal(fs.readFileSync(file, "utf8").trim().split("\n").length, 10);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    fs.rmSync(path.dirname(file), { recursive: true });
});

test("logs never prints a .env value the app writes to its journal", { timeout: 5 * MINUTE }, async () => {
    // A line in the unit's journal that quotes a .env value (as a traceback printing the app's settings would):
    // `journalctl -u` also matches root's lines that name the unit in OBJECT_SYSTEMD_UNIT.
    vmRun(h1, "logger --journald", { root: true, input: `MESSAGE=settings: JWT_SECRET=${SECRET}\nSYSLOG_IDENTIFIER=amarktai-api\nOBJECT_SYSTEMD_UNIT=${UNIT}\n` });
    await until("the leaked line in the unit's journal", MINUTE, () => vmRun(h1, `journalctl -u ${UNIT} --no-pager -o cat | grep -c 'settings: JWT_SECRET' || true`, { root: true }).trim() !== "0");
    const r = await ops("logs", "--host", "h1", "-n", "20");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /settings: JWT_SECRET=\[secret JWT_SECRET\]/);
    assert.doesNotMatch(r.stdout, new RegExp(SECRET));
});

test("logs -f follows both hosts live while a restart happens, and Ctrl-C stops it cleanly on both", { timeout: 5 * MINUTE }, async () => {
    const child = stack.spawnScript("scripts/ops", ["logs", "-f", "-n", "0", "--stack", stack.name, "--config-file", stack.configFile]);
    let out = "";
    let err = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    try {
        // Following has begun on both hosts once journalctl -f runs there.
        await until("journalctl -f on both hosts", 2 * MINUTE, () => [h1, h2].every((h) => vmRun(h, "pgrep -f '^journalctl --no-pager -o json -u' || true", { root: true }).trim() !== ""));
        const before = out;
        vmRun(h1, `systemctl restart ${UNIT}`, { root: true });
        vmRun(h2, `systemctl restart ${UNIT}`, { root: true });
        await until("both restarts in the followed output", 2 * MINUTE, () => /^h1 .*startup complete/m.test(out) && /^h2 .*startup complete/m.test(out));
        assert.equal(before.trim(), "", `-n 0 prints nothing old:\n${before}`);
        console.error(out);
        child.kill("SIGINT");
        assert.equal(await exited, 0, err);
    } finally {
        child.kill("SIGKILL");
    }
    await until("journalctl -f gone from both hosts", MINUTE, () => [h1, h2].every((h) => vmRun(h, "pgrep -f '^journalctl --no-pager -o json -u' || true", { root: true }).trim() === ""));
});

test("restart restarts the hosts in the rollout's batches, one host at a time, each health-gated", { timeout: 10 * MINUTE }, async () => {
    const before = [h1, h2].map((h) => show(h, "InvocationID"));
    const r = await ops("restart");
    console.error(r.stdout + r.stderr);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stderr, /restarting h1 \(batch 1 of 2\)[\s\S]*restarting h2 \(batch 2 of 2\)/);
    assert.match(r.stdout, /^h1: restarted, healthy after \d+\.\d s; no warnings/m);
    assert.match(r.stdout, /^h2: restarted, healthy after \d+\.\d s; no warnings/m);
    assert.notEqual(show(h1, "InvocationID"), before[0]);
    assert.notEqual(show(h2, "InvocationID"), before[1]);
    // Both containers share the machine's monotonic clock: h2 went down only after h1 was back up.
    assert.ok(Number(show(h2, "InactiveEnterTimestampMonotonic")) > Number(show(h1, "ActiveEnterTimestampMonotonic")), "h2 stopped before h1 was active again");
});

test("restart --loop 10 runs the notes' restart loop on one host, timing each restart and searching the journal for the notes' warnings", { timeout: 15 * MINUTE }, async () => {
    const invocation = show(h2, "InvocationID");
    const r = await ops("restart", "--loop", "10", "--host", "h1", "--json");
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = (JSON.parse(r.stdout) as { hosts: { host: string; seconds: number[]; warnings: unknown[] }[] }).hosts;
    console.error(JSON.stringify(report));
    assert.deepEqual(report.map((h) => h.host), ["h1"]);
    assert.equal(report[0]!.seconds.length, 10);
    assert.deepEqual(report[0]!.warnings, []);
    assert.equal((r.stderr.match(/restart \d+ of 10: healthy after/g) ?? []).length, 10, r.stderr);
    assert.equal(show(h2, "InvocationID"), invocation, "--host h1 leaves h2 alone");
});

async function doctorOf(host: string): Promise<{ code: number; out: string; verdict: string; checks: { check: string; ok: boolean; detail: string }[] }> {
    const r = await ops("doctor", "--host", host, "--json");
    const report = (JSON.parse(r.stdout) as { hosts: { verdict: string; checks: { check: string; ok: boolean; detail: string }[] }[] }).hosts[0]!;
    console.error(`    ${host}: ${report.verdict}`);
    return { code: r.code, out: r.stdout, verdict: report.verdict, checks: report.checks };
}

test("doctor finds nothing wrong on a healthy host", { timeout: 5 * MINUTE }, async () => {
    const r = await ops("doctor");
    console.error(r.stdout);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /FAIL/);
});

test("doctor names the notes' first cause: the .env is missing", { timeout: 5 * MINUTE }, async () => {
    vmRun(h2, "mv /etc/amarktai-infra/amarktai-api/env /root/env.saved", { root: true });
    try {
        const d = await doctorOf("h2");
        assert.equal(d.code, 1);
        assert.equal(d.checks.find((c) => c.check === "env")!.ok, false);
        assert.match(d.verdict, /\.env/);
        assert.doesNotMatch(d.out, new RegExp(SECRET));
    } finally {
        vmRun(h2, "mv /root/env.saved /etc/amarktai-infra/amarktai-api/env", { root: true });
    }
});

test("doctor names the notes' second cause: port 8000 held by another process, with its pid", { timeout: 5 * MINUTE }, async () => {
    // With socket activation the notes' "stop the service" leaves systemd listening: the port is taken only with the socket stopped too.
    vmRun(h2, `systemctl stop ${SOCKET} ${UNIT} && systemd-run --unit squatter -p User=amarktai -p WorkingDirectory=/var/amarktai/app/backend /var/amarktai/venv/bin/python -m uvicorn server:app --host 127.0.0.1 --port 8000`, { root: true });
    try {
        await until("the squatter listening", 2 * MINUTE, () => vmRun(h2, "ss -Hltn 'sport = :8000'", { root: true }).trim() !== "");
        const pid = vmRun(h2, "systemctl show -p MainPID --value squatter", { root: true }).trim();
        const d = await doctorOf("h2");
        assert.equal(d.code, 1);
        assert.equal(d.checks.find((c) => c.check === "port")!.ok, false);
        assert.match(d.verdict, new RegExp(`port 8000 .*pid ${pid}`));
    } finally {
        vmRun(h2, `systemctl stop squatter || true; systemctl start ${UNIT}`, { root: true });
    }
});

test("doctor names the notes' third cause: a required unit (MongoDB) is not running", { timeout: 10 * MINUTE }, async () => {
    // A stand-in MongoDB the service requires; stopping it stops the service, as with the real one.
    for (const h of [h1, h2]) vmRun(h, "printf '[Service]\\nExecStart=/bin/sleep infinity\\n' > /etc/systemd/system/mongodb.service && systemctl daemon-reload && systemctl start mongodb", { root: true });
    await stack.setConfig({ dependencies: { after: ["network.target", "mongodb.service"], requires: ["mongodb.service"] } });
    const up = await stack.up();
    assert.equal(up.code, 0, up.stdout + up.stderr);
    vmRun(h2, "systemctl stop mongodb", { root: true });
    try {
        const d = await doctorOf("h2");
        assert.equal(d.code, 1);
        assert.equal(d.checks.find((c) => c.check === "dependencies")!.ok, false);
        assert.match(d.verdict, /mongodb\.service/);
        assert.equal((await doctorOf("h1")).code, 0, "h1, whose MongoDB runs, is fine");
    } finally {
        vmRun(h2, `systemctl start mongodb ${UNIT}`, { root: true });
    }
});

test("doctor names the notes' fourth cause: Python dependencies missing from the venv", { timeout: 5 * MINUTE }, async () => {
    vmRun(h2, `systemctl stop ${UNIT}; mv "$(readlink -f /var/amarktai/venv)"/lib/python3*/site-packages/uvicorn /root/uvicorn.saved`, { root: true });
    try {
        const d = await doctorOf("h2");
        assert.equal(d.code, 1);
        assert.equal(d.checks.find((c) => c.check === "python")!.ok, false);
        assert.match(d.verdict, /No module named 'uvicorn'/);
    } finally {
        vmRun(h2, `mv /root/uvicorn.saved "$(echo "$(readlink -f /var/amarktai/venv)"/lib/python3*/site-packages)/uvicorn"; systemctl start ${UNIT}`, { root: true });
    }
});
