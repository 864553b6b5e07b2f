/**
 * Two services on one host, each from its own stack: `amarktai-api` (the
 * defaults, port 8000) and `amarktai-worker` (its own user, group, paths and
 * port 8001). Each writes its own journald drop-in, so neither overwrites,
 * refreshes back or deletes the other's limits; the pinned uv the host keeps
 * for every build is placed once even when both builds start at the same
 * moment on a fresh host.
 *
 * The host is a systemd-nspawn container of the test image (systemd as PID 1,
 * the real prepare path). One host serves the steps in order: both stacks `up`
 * at once, both refresh to no changes, a change of one service's limits leaves
 * the other untouched, and destroying one leaves the other running.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import { UV_VERSION } from "../../components/model";
import { TestStack } from "../../tools/stack";
import { VmInfo, startContainer, stopContainer, vmPrivateKey, vmRun, vmSsh } from "../../tools/vm";

const MINUTE = 60_000;
/** Where the host keeps the pinned uv, one directory per version and architecture. */
const TOOLS = "/var/lib/amarktai-infra/tools";
/** The one file every service wrote before each got its own. */
const SHARED_JOURNALD = "/etc/systemd/journald.conf.d/60-amarktai-infra.conf";

/** One service on the shared host, with the stack that deploys it. */
interface Service {
    readonly name: string;
    readonly port: number;
    /** The journald limits of its stack config (the schema's keys). */
    journald: { systemMaxUse?: string; systemKeepFree?: string; maxRetentionSec?: string | number };
    stack?: TestStack;
}

const api: Service = { name: "amarktai-api", port: 8000, journald: { systemMaxUse: "1G" } };
const worker: Service = { name: "amarktai-worker", port: 8001, journald: { systemMaxUse: "2G", maxRetentionSec: "7day" } };

/** The worker's own directories: none of them is, or is inside, one of the api's (`/var/amarktai/…`). */
const WORKER_PATHS = {
    app: "/var/amarktai-worker/app",
    workingDirectory: "/var/amarktai-worker/app/backend",
    venv: "/var/amarktai-worker/venv",
    logs: "/var/amarktai-worker/logs",
    envFile: "/var/amarktai-worker/app/backend/.env",
    releases: "/var/amarktai-worker/releases",
};

let host: VmInfo;

const root = (command: string) => vmRun(host, command, { root: true });
const journaldPath = (s: Service) => `/etc/systemd/journald.conf.d/60-amarktai-infra-${s.name}.conf`;
const journaldText = (s: Service) => root(`cat ${journaldPath(s)}`);
const exists = (path: string) => vmSsh(host, `test -e ${path}`, { root: true }).code === 0;
const health = (s: Service) => vmSsh(host, `curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:${s.port}/health`).stdout.trim();
const activeState = (s: Service) => vmSsh(host, `systemctl is-active ${s.name}`).stdout.trim();
/** What changes whenever the unit is stopped, started or restarted by systemd. */
const runIdentity = (s: Service) => vmRun(host, `systemctl show -p InvocationID -p NRestarts -p ActiveEnterTimestampMonotonic ${s.name}`).trim();

/** The `[Journal]` lines a service's limits should produce: `Name=value`, one per key set. */
function expectedJournalLines(s: Service): string[] {
    const names: Record<string, string> = { systemMaxUse: "SystemMaxUse", systemKeepFree: "SystemKeepFree", maxRetentionSec: "MaxRetentionSec" };
    return Object.entries(s.journald).map(([key, value]) => `${names[key]}=${String(value)}`);
}

/** A service's journald drop-in holds exactly its own `[Journal]` section (comments aside). */
function assertOwnJournald(s: Service): void {
    const lines = journaldText(s)
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l !== "" && !l.startsWith("#"));
    assert.equal(lines[0], "[Journal]", `${journaldPath(s)} should open with [Journal]:\n${lines.join("\n")}`);
    assert.deepEqual(lines.slice(1).sort(), expectedJournalLines(s).sort(), `${journaldPath(s)} does not hold ${s.name}'s limits`);
}

/** The service is active and answers /health with 200 on its own port. */
function assertServing(s: Service): void {
    assert.equal(activeState(s), "active", `${s.name} is not active`);
    assert.equal(health(s), "200", `${s.name} does not answer /health on port ${s.port}`);
}

/** `up --expect-no-changes`: must succeed, i.e. the stack already matches the host. */
async function assertNoChanges(s: Service): Promise<void> {
    const r = await s.stack!.up(["--expect-no-changes"]);
    assert.equal(r.code, 0, `${s.name}: up --expect-no-changes found changes:\n${r.stdout}\n${r.stderr}`);
    console.error(`    ${s.name}: up --expect-no-changes took ${r.seconds.toFixed(1)}s`);
}

before(async () => {
    const t0 = Date.now();
    const [started, apiStack, workerStack] = await Promise.all([startContainer(`e2e-two-${process.pid}`), TestStack.create("two-api"), TestStack.create("two-worker")]);
    host = started;
    api.stack = apiStack;
    worker.stack = workerStack;
    console.error(`    container host and two stacks ready in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    const hosts = [{ name: "shared", address: host.host, port: host.port, user: host.user, hostKey: host.hostKey }];
    await apiStack.setConfig({ hosts, serviceName: api.name, app: { sourceDir: "demo-app" }, journald: api.journald });
    await workerStack.setConfig({
        hosts,
        serviceName: worker.name,
        user: "amarktai-worker",
        group: "amarktai-worker",
        paths: WORKER_PATHS,
        app: { sourceDir: "demo-app", port: worker.port },
        journald: worker.journald,
    });
    for (const stack of [apiStack, workerStack]) await stack.setSecret("sshPrivateKey", vmPrivateKey(host));
});

after(async () => {
    if (host) await stopContainer(host.name);
    api.stack?.cleanup();
    worker.stack?.cleanup();
});

test("two stacks brought up at once on a fresh host both succeed: each service runs on its own port with its own journald drop-in, and the host holds one working uv", { timeout: 25 * MINUTE }, async () => {
    const [a, b] = await Promise.all([api.stack!.up(), worker.stack!.up()]);
    assert.equal(a.code, 0, `${api.name}: up failed:\n${a.stdout}\n${a.stderr}`);
    assert.equal(b.code, 0, `${worker.name}: up failed:\n${b.stdout}\n${b.stderr}`);
    console.error(`    simultaneous fresh ups: ${api.name} took ${a.seconds.toFixed(1)}s, ${worker.name} took ${b.seconds.toFixed(1)}s`);
    for (const s of [api, worker]) {
        assertServing(s);
        assertOwnJournald(s);
    }
    assert.equal(exists(SHARED_JOURNALD), false, `${SHARED_JOURNALD} (one file for every service) should not be written`);
    assert.equal(vmSsh(host, "systemctl is-active systemd-journald").stdout.trim(), "active", "journald is not running after its limits changed");

    // One uv directory for this host's version and architecture, no half-placed copy beside it, and its uv runs.
    const uvDirs = root(`find ${TOOLS} -mindepth 1 -maxdepth 1 -name 'uv-*' -printf '%f\\n'`).split("\n").filter(Boolean);
    assert.equal(uvDirs.length, 1, `expected one uv directory in ${TOOLS}, found: ${uvDirs.join(", ")}`);
    assert.match(uvDirs[0]!, new RegExp(`^uv-${UV_VERSION.replace(/\./g, "\\.")}-\\S+$`));
    assert.equal(root(`find ${TOOLS} -mindepth 1 -maxdepth 1 -type d -name '.uv.*'`).trim(), "", "a half-placed uv was left in the tools directory");
    const version = root(`${TOOLS}/${uvDirs[0]}/uv --version`).trim();
    assert.match(version, new RegExp(`^uv ${UV_VERSION.replace(/\./g, "\\.")}\\b`), version);
    console.error(`    ${TOOLS}/${uvDirs[0]}/uv --version: ${version}`);
    // Both builds installed with that uv: neither lost it to the other's placement nor fell back to pip.
    const journal = root("journalctl -q --no-pager -o cat -t amarktai-infra");
    const builds = journal.match(/release [0-9a-f]{16} built in \d+s with \S+/g) ?? [];
    console.error(`    ${builds.join("; ")}`);
    assert.equal(builds.length, 2, `expected one release build per service:\n${journal}`);
    assert.deepEqual(builds.map((l) => l.replace(/^.* with /, "")), ["uv", "uv"], `a build did not use the pinned uv:\n${journal}`);
});

test("a refresh of either stack finds no changes: neither reads the other's journald limits as its own", { timeout: 15 * MINUTE }, async () => {
    const identities = [api, worker].map(runIdentity);
    const texts = [api, worker].map(journaldText);
    for (const s of [api, worker]) {
        const preview = await s.stack!.run(["preview", "--refresh", "--expect-no-changes"]);
        assert.equal(preview.code, 0, `${s.name}: preview --refresh found changes:\n${preview.stdout}\n${preview.stderr}`);
        console.error(`    ${s.name}: preview --refresh --expect-no-changes took ${preview.seconds.toFixed(1)}s`);
    }
    for (const s of [api, worker]) {
        const refresh = await s.stack!.run(["refresh", "--yes", "--expect-no-changes"]);
        assert.equal(refresh.code, 0, `${s.name}: refresh found changes:\n${refresh.stdout}\n${refresh.stderr}`);
        console.error(`    ${s.name}: refresh --expect-no-changes took ${refresh.seconds.toFixed(1)}s`);
    }
    // After both refreshes, neither stack wants to write anything back.
    for (const s of [api, worker]) await assertNoChanges(s);
    assert.deepEqual([api, worker].map(journaldText), texts, "a journald drop-in was rewritten");
    assert.deepEqual([api, worker].map(runIdentity), identities, "a service was restarted");
    for (const s of [api, worker]) assertServing(s);
});

test("changing one service's journald limits rewrites only its own drop-in: the other's file is byte-identical and its service keeps running unrestarted", { timeout: 10 * MINUTE }, async () => {
    const apiText = journaldText(api);
    const apiIdentity = runIdentity(api);
    worker.journald = { ...worker.journald, systemMaxUse: "3G" };
    await worker.stack!.setConfig({ journald: worker.journald });
    const r = await worker.stack!.up();
    assert.equal(r.code, 0, `${worker.name}: up failed:\n${r.stdout}\n${r.stderr}`);
    console.error(`    ${worker.name}: up changing its journald limits took ${r.seconds.toFixed(1)}s`);
    assertOwnJournald(worker);
    assert.equal(journaldText(api), apiText, `${journaldPath(api)} changed`);
    assert.equal(runIdentity(api), apiIdentity, `${api.name} was restarted`);
    assert.equal(vmSsh(host, "systemctl is-active systemd-journald").stdout.trim(), "active", "journald is not running after its limits changed");
    for (const s of [api, worker]) assertServing(s);
    await assertNoChanges(api);
    await assertNoChanges(worker);
});

test("destroying one stack removes its unit and its journald drop-in only: the other service's drop-in stays byte-identical and it keeps running unrestarted", { timeout: 10 * MINUTE }, async () => {
    const apiText = journaldText(api);
    const apiIdentity = runIdentity(api);
    const r = await worker.stack!.run(["destroy", "--yes", "--skip-preview"]);
    assert.equal(r.code, 0, `${worker.name}: destroy failed:\n${r.stdout}\n${r.stderr}`);
    console.error(`    ${worker.name}: destroy took ${r.seconds.toFixed(1)}s`);
    assert.equal(exists(`/etc/systemd/system/${worker.name}.service`), false, `${worker.name}.service left behind`);
    assert.equal(exists(journaldPath(worker)), false, `${journaldPath(worker)} left behind`);
    assert.notEqual(activeState(worker), "active", `${worker.name} still runs`);
    assert.equal(health(worker), "000", `something still answers on port ${worker.port}`);
    assert.equal(journaldText(api), apiText, `${journaldPath(api)} changed`);
    assert.equal(runIdentity(api), apiIdentity, `${api.name} was restarted`);
    assertServing(api);
    await assertNoChanges(api);
});
