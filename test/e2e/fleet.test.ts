/**
 * A fleet: eight hosts in one stack, rolled out with `maxUnavailable: 2`.
 * The hosts are systemd-nspawn containers of the test image (systemd as PID 1,
 * sshd, the real prepare path: apt installs python3-venv, pip the
 * requirements), so eight cost what one emulated VM does. What is checked here
 * is what systemd does the same in a container and a VM: units, reloads,
 * restarts, health and the journal's timestamps (the containers share this
 * machine's clock, so timestamps from different hosts compare directly).
 *
 * One set of hosts serves the three steps in order: a fresh `up`, a rolling
 * change (batches in host order, each healthy before the next starts), and a
 * failing change that stops after the first batch with later hosts untouched.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import { TestStack } from "../../tools/stack";
import { VmInfo, hostCounters, startContainer, stopContainer, vmPrivateKey, vmRun, vmSsh } from "../../tools/vm";

const MINUTE = 60_000;
const HOSTS = 8;
const BATCH = 2;
const UNIT = "amarktai-api.service";
let hosts: VmInfo[] = [];
let stack: TestStack;

const health = (h: VmInfo) => vmSsh(h, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/health").stdout.trim();
const batches = () => Array.from({ length: Math.ceil(HOSTS / BATCH) }, (_, k) => hosts.slice(k * BATCH, (k + 1) * BATCH));

/** What a host's journal says about the unit, as epoch seconds: each start, and each /health answered 200. */
function unitTimeline(h: VmInfo): { starts: number[]; healthy: number[] } {
    const out = vmRun(h, `journalctl -q --no-pager -o short-unix -u ${UNIT}`, { root: true });
    const starts: number[] = [];
    const healthy: number[] = [];
    for (const line of out.split("\n")) {
        const t = Number(line.split(" ", 1)[0]);
        if (new RegExp(`\\sStarted ${UNIT.replace(".", "\\.")}`).test(line)) starts.push(t);
        if (/"GET \/health[^"]*" 200\b/.test(line)) healthy.push(t);
    }
    return { starts, healthy };
}

/** Epoch seconds of each SSH session the host accepted. */
function sessionTimes(h: VmInfo): number[] {
    const out = vmRun(h, "journalctl -q --no-pager -o short-unix _COMM=sshd-session _COMM=sshd | grep 'Accepted publickey' || true", { root: true });
    return out.split("\n").filter(Boolean).map((l) => Number(l.split(" ", 1)[0]));
}

const fmt = (t: number) => new Date(t * 1000).toISOString().slice(11, 23);

before(async () => {
    const t0 = Date.now();
    hosts = await Promise.all(Array.from({ length: HOSTS }, (_, i) => startContainer(`e2e-fleet${i + 1}-${process.pid}`)));
    console.error(`    ${HOSTS} container hosts started in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    stack = await TestStack.create("fleet");
    await stack.setConfig({
        hosts: hosts.map((h, i) => ({ name: `h${i + 1}`, address: h.host, port: h.port, user: h.user, hostKey: h.hostKey })),
        app: { sourceDir: "demo-app" },
        rollout: { maxUnavailable: BATCH },
        // The demo app answers in ~2 s here; the failing change waits this long before rolling back.
        health: { timeoutSec: 30 },
    });
    await stack.setSecret("sshPrivateKey", vmPrivateKey(hosts[0]!));
});

after(async () => {
    await Promise.all(hosts.map((h) => stopContainer(h.name)));
    stack?.cleanup();
});

test("a fresh up of 8 hosts prepares them in parallel over one SSH session each, and every host ends healthy", { timeout: 15 * MINUTE }, async () => {
    const before = hosts.map((h) => hostCounters(h).sessions);
    const started = Date.now() / 1000;
    const r = await stack.up();
    assert.equal(r.code, 0, `up failed:\n${r.stdout}\n${r.stderr}`);
    console.error(`    fresh up of ${HOSTS} hosts took ${r.seconds.toFixed(1)}s`);
    // Read first: every check below is an SSH session of its own. The counting sessions (before, after) are not the up's.
    const upSessions = hosts.map((h, i) => hostCounters(h).sessions - before[i]! - 1);
    const firstActivation = Math.min(...hosts.map((h) => unitTimeline(h).starts[0] ?? Infinity));
    hosts.forEach((h, i) => {
        assert.equal(upSessions[i], 1, `${h.name}: the up should use one SSH session`);
        assert.equal(health(h), "200", `${h.name} is not healthy`);
        // Every host's session (its preparation) began before any host was activated: preparation ran in parallel.
        const upSession = sessionTimes(h).filter((t) => t >= started - 1);
        assert.ok(upSession.length > 0 && upSession[0]! < firstActivation, `${h.name} was first contacted at ${fmt(upSession[0] ?? NaN)}, after the first activation at ${fmt(firstActivation)}`);
    });
});

test("a rolling change with maxUnavailable 2 goes batch by batch in host order, each batch healthy before the next starts", { timeout: 10 * MINUTE }, async () => {
    const before = hosts.map((h) => unitTimeline(h).starts.length);
    await stack.setConfig({ overrides: { workers: { workers: 2 } } });
    const r = await stack.up();
    assert.equal(r.code, 0, `up failed:\n${r.stdout}\n${r.stderr}`);
    console.error(`    rolling change over ${HOSTS} hosts took ${r.seconds.toFixed(1)}s`);
    const restart = new Map<string, { start: number; healthy: number }>();
    hosts.forEach((h, i) => {
        assert.match(vmRun(h, `systemctl show -p ExecStart --value ${UNIT}`), /--workers 2/, `${h.name} did not get the change`);
        const tl = unitTimeline(h);
        assert.equal(tl.starts.length, before[i]! + 1, `${h.name} should be restarted exactly once`);
        const start = tl.starts[tl.starts.length - 1]!;
        const healthy = tl.healthy.find((t) => t >= start);
        assert.ok(healthy !== undefined, `${h.name}: no /health 200 in the journal after its restart`);
        restart.set(h.name, { start, healthy });
    });
    const bs = batches();
    bs.forEach((batch, k) => {
        const line = batch.map((h) => `${h.name} restarted ${fmt(restart.get(h.name)!.start)}, healthy ${fmt(restart.get(h.name)!.healthy)}`).join("; ");
        console.error(`    batch ${k + 1}: ${line}`);
        if (k === 0) return;
        const previousHealthy = Math.max(...bs[k - 1]!.map((h) => restart.get(h.name)!.healthy));
        const firstStart = Math.min(...batch.map((h) => restart.get(h.name)!.start));
        assert.ok(firstStart >= previousHealthy, `batch ${k + 1} restarted at ${fmt(firstStart)}, before batch ${k} was healthy at ${fmt(previousHealthy)}`);
    });
});

test("a failing change stops after the first batch: it is rolled back, and the later hosts are untouched", { timeout: 10 * MINUTE }, async () => {
    const [first, ...later] = batches();
    const invocations = later.flat().map((h) => vmRun(h, `systemctl show -p InvocationID --value ${UNIT}`).trim());
    const counters = hosts.map((h) => hostCounters(h));
    await stack.setConfig({ overrides: { workers: { order: 10, workers: 2 }, broken: { order: 20, environment: { DEMO_FAIL_ON_STARTUP: "1" } } } });
    const r = await stack.up();
    assert.notEqual(r.code, 0, "the rollout should fail in the first batch");
    assert.match(r.stdout + r.stderr, /did not become healthy; the previous files were restored/);
    for (const h of first!) {
        const i = hosts.indexOf(h);
        assert.ok(hostCounters(h).starts > counters[i]!.starts, `${h.name} (first batch) was never tried`);
        assert.equal(health(h), "200", `${h.name} was not rolled back to a healthy service`);
        assert.equal(vmSsh(h, `ls /etc/systemd/system/${UNIT}.d/ | grep -c broken`).stdout.trim(), "0", `${h.name} kept the failing drop-in`);
    }
    later.flat().forEach((h, j) => {
        const i = hosts.indexOf(h);
        const now = hostCounters(h);
        assert.equal(vmRun(h, `systemctl show -p InvocationID --value ${UNIT}`).trim(), invocations[j], `${h.name} was restarted`);
        assert.equal(now.reloads, counters[i]!.reloads, `${h.name}: systemd was reloaded`);
        assert.equal(now.starts, counters[i]!.starts, `${h.name}: the unit was started`);
        assert.equal(vmSsh(h, `ls /etc/systemd/system/${UNIT}.d/ | grep -c broken`).stdout.trim(), "0", `${h.name}: the failing drop-in went live`);
        assert.equal(health(h), "200");
    });
});
