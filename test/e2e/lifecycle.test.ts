/**
 * The whole life of the service on a real VM, driven by the real Pulumi CLI:
 * fresh `up` to healthy, no-op `up`, one override added/changed, three applied
 * in their order and removed, an env-only change, a failing change rolled back, bad config refused, and
 * `destroy` keeping the data. Steps run in order on one VM.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { assertGolden, assertShowsEveryLine, changedLines, normalizePreview } from "../support/golden";
import { TestStack } from "../../tools/stack";
import { VmInfo, hostCounters, startVm, stopVm, vmPrivateKey, vmRun, vmSsh } from "../../tools/vm";

const MINUTE = 60_000;
const OPENAI_API_KEY = `sk-test-${Date.now()}-$(touch /tmp/pwned)'"\`;`;
const MONGO_URL = "mongodb://amarktai:p%40ss$word@127.0.0.1:27017/amarktai";

let vm: VmInfo;
let stack: TestStack;

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

/** What the running service received for an env var, as reported by the demo app (a digest, never the value). */
function envDigest(name: string): { present: boolean; sha256: string | null } {
    return JSON.parse(vmRun(vm, `curl -fsS 'http://127.0.0.1:8000/debug/env-digest?name=${name}'`));
}

function show(property: string): string {
    return vmRun(vm, `systemctl show -p ${property} --value amarktai-api`).trim();
}

const counters = () => hostCounters(vm);

function healthStatus(): string {
    return vmSsh(vm, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/health").stdout.trim();
}

before(async () => {
    vm = startVm(`e2e-life-${process.pid}`);
    stack = await TestStack.create("life");
    await stack.setConfig({
        hosts: [{ name: "vm", address: vm.host, port: vm.port, user: vm.user, hostKey: vm.hostKey }],
        app: { sourceDir: "demo-app" },
        env: { ENABLE_TRADING: "false" },
        journald: { systemMaxUse: "1G", systemKeepFree: "2G" },
    });
    await stack.setSecret("sshPrivateKey", vmPrivateKey(vm));
    await stack.setSecret("secretEnv.OPENAI_API_KEY", OPENAI_API_KEY);
    await stack.setSecret("secretEnv.MONGO_URL", MONGO_URL);
});

after(() => {
    if (vm) stopVm(vm.name);
    stack?.cleanup();
});

test("pulumi up on a fresh VM brings the service to healthy with the notes' unit in effect", { timeout: 20 * MINUTE }, async () => {
    const r = await stack.up();
    assert.equal(r.code, 0, `up failed:\n${r.stdout}\n${r.stderr}`);
    console.error(`    fresh up took ${r.seconds.toFixed(1)}s`);
    assert.equal(vmRun(vm, "systemctl is-active amarktai-api").trim(), "active");
    assert.equal(vmRun(vm, "systemctl is-enabled amarktai-api").trim(), "enabled");
    assert.equal(healthStatus(), "200");
    // Every directive of the notes, as systemd itself reports it.
    assert.equal(show("User"), "amarktai");
    assert.equal(show("Type"), "simple");
    assert.equal(show("WorkingDirectory"), "/var/amarktai/app/backend");
    assert.equal(show("Environment"), "PATH=/var/amarktai/venv/bin");
    // The one deliberate difference from the notes: systemd reads the root-owned real file, the notes' path links to it.
    assert.match(show("EnvironmentFiles"), /^\/etc\/amarktai-infra\/amarktai-api\/env /);
    // The other deliberate difference: systemd holds the listener (socket activation) and passes it as fd 3.
    assert.match(show("ExecStart"), /argv\[\]=\/var\/amarktai\/venv\/bin\/python -m uvicorn server:app --fd 3 --log-level info /);
    assert.equal(vmRun(vm, "systemctl is-active amarktai-api.socket").trim(), "active");
    assert.equal(vmRun(vm, "systemctl is-enabled amarktai-api.socket").trim(), "enabled");
    assert.equal(vmRun(vm, "systemctl show -p Listen --value amarktai-api.socket").trim(), "127.0.0.1:8000 (Stream)");
    assert.equal(show("Restart"), "always");
    assert.equal(show("RestartUSec"), "5s");
    assert.equal(show("TimeoutStopUSec"), "1min");
    assert.equal(show("NoNewPrivileges"), "yes");
    assert.equal(show("PrivateTmp"), "yes");
    assert.equal(show("ProtectSystem"), "strict");
    assert.equal(show("ProtectHome"), "yes");
    assert.equal(show("ReadWritePaths"), "/var/amarktai/app /var/amarktai/logs");
    assert.equal(show("ProtectKernelTunables"), "yes");
    assert.equal(show("ProtectControlGroups"), "yes");
    assert.equal(show("RestrictRealtime"), "yes");
    assert.equal(show("StandardOutput"), "journal");
    assert.equal(show("StandardError"), "journal");
    assert.equal(show("SyslogIdentifier"), "amarktai-api");
    assert.match(show("After"), /\bnetwork\.target\b/);
    assert.match(show("After"), /\bmongodb\.service\b/);
    assert.match(show("WantedBy"), /multi-user\.target/);
    // Ownership and modes from the notes; .env readable by the service group only.
    assert.equal(vmRun(vm, "stat -c '%a %U %G' /etc/amarktai-infra/amarktai-api/env /etc/amarktai-infra/amarktai-api", { root: true }).trim(), "640 root amarktai\n755 root root");
    assert.equal(vmRun(vm, "stat -c '%U %N' /var/amarktai/app/backend/.env", { root: true }).trim(), "root '/var/amarktai/app/backend/.env' -> '/etc/amarktai-infra/amarktai-api/env'");
    // The app and its venv are a release: root-owned, read-only to the service (see test/e2e/releases.test.ts).
    assert.equal(vmRun(vm, "stat -L -c '%U %G' /var/amarktai/app/backend /var/amarktai/venv /var/amarktai/logs").trim(), "root root\nroot root\namarktai amarktai");
    assert.match(vmRun(vm, "getent passwd amarktai"), /:\/usr\/sbin\/nologin$/m);
    // The release's venv was built although the image lacks python3-venv.
    vmRun(vm, "/var/amarktai/venv/bin/python -c 'import uvicorn'");
    // Secrets reached the process byte for byte.
    assert.deepEqual(envDigest("OPENAI_API_KEY"), { name: "OPENAI_API_KEY", present: true, sha256: sha256(OPENAI_API_KEY) } as never);
    assert.equal(envDigest("MONGO_URL").sha256, sha256(MONGO_URL));
    assert.equal(envDigest("ENABLE_TRADING").sha256, sha256("false"));
    assert.equal(envDigest("JWT_SECRET").present, true);
    assert.equal(vmSsh(vm, "test -e /tmp/pwned").code, 1, "a shell metacharacter in a secret was executed");
    // journald limits in effect.
    const journald = vmRun(vm, "systemd-analyze cat-config systemd/journald.conf");
    assert.match(journald, /^SystemMaxUse=1G$/m);
    assert.match(journald, /^SystemKeepFree=2G$/m);
    // The app writes its log file under ReadWritePaths.
    assert.match(vmRun(vm, "cat /var/amarktai/logs/demo-app.log", { root: true }), /startup pid=/);
});

test("render writes the same unit the host runs, and no secret value", { timeout: 2 * MINUTE }, async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-render-"));
    try {
        const r = await stack.script("scripts/render", ["--stack", stack.name, "--config-file", stack.configFile, "--out", out]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /0640 root:amarktai .* \/etc\/amarktai-infra\/amarktai-api\/env/);
        const unit = fs.readFileSync(path.join(out, "vm", "etc/systemd/system/amarktai-api.service"), "utf8");
        assert.equal(unit, vmRun(vm, "cat /etc/systemd/system/amarktai-api.service"));
        const env = fs.readFileSync(path.join(out, "vm", "etc/amarktai-infra/amarktai-api/env"), "utf8");
        assert.match(env, /^OPENAI_API_KEY=\[secret\]$/m);
        const everything = r.stdout + r.stderr + fs.readdirSync(out, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => fs.readFileSync(path.join(e.parentPath, e.name), "utf8")).join("\n");
        for (const secret of [OPENAI_API_KEY, MONGO_URL, vmPrivateKey(vm).split("\n")[1]!]) {
            assert.ok(!everything.includes(secret), "a secret value reached the render output");
        }
    } finally {
        fs.rmSync(out, { recursive: true, force: true });
    }
});

test("a second pulumi up changes nothing and opens no SSH session", { timeout: 5 * MINUTE }, async () => {
    const before = counters();
    const r = await stack.up(["--expect-no-changes"]);
    assert.equal(r.code, 0, `no-op up failed:\n${r.stdout}\n${r.stderr}`);
    const preview = await stack.run(["preview", "--expect-no-changes"]);
    assert.equal(preview.code, 0, `no-op preview reported changes:\n${preview.stdout}`);
    const after = counters();
    assert.equal(after.sessions - before.sessions, 1, "only the counting session itself");
    assert.equal(after.starts, before.starts);
    assert.equal(after.reloads, before.reloads);
});

test("adding one override writes one drop-in, reloads once, restarts once", { timeout: 10 * MINUTE }, async () => {
    const before = counters();
    await stack.setConfig({ overrides: { workers: { workers: 2 } } });
    const preview = await stack.run(["preview", "--diff"]);
    assert.equal(preview.code, 0, preview.stdout + preview.stderr);
    assert.match(preview.stdout, /Resources:\n\s+\+ 1 to create\n\s+~ 1 to update\n/);
    assertGolden("preview/override-added.txt", normalizePreview(preview.stdout, stack.name, vm.port, [vm.hostKey]));
    const r = await stack.up();
    assert.equal(r.code, 0, `up failed:\n${r.stdout}\n${r.stderr}`);
    const after = counters();
    assert.equal(after.starts - before.starts, 1, "restarted once");
    assert.equal(after.reloads - before.reloads, 1, "one daemon-reload");
    assert.ok(after.sessions - before.sessions - 1 <= 3, `at most 3 SSH sessions (got ${after.sessions - before.sessions - 1})`);
    const dropIn = vmRun(vm, "cat /etc/systemd/system/amarktai-api.service.d/10-workers.conf");
    assert.match(dropIn, /^ExecStart=$/m);
    // The reviewer saw every line of the new drop-in, exactly as the host got it.
    assertShowsEveryLine(preview.stdout, dropIn, "the added drop-in");
    assert.match(show("ExecStart"), /--workers 2 --timeout-worker-healthcheck 30 --log-level info/);
    assert.equal(healthStatus(), "200");
});

test("changing that override rewrites only its drop-in; the unit file is untouched", { timeout: 10 * MINUTE }, async () => {
    const unitStamp = vmRun(vm, "stat -c %Y.%i /etc/systemd/system/amarktai-api.service");
    const before = counters();
    await stack.setConfig({ overrides: { workers: { workers: 3 } } });
    const preview = await stack.run(["preview", "--diff"]);
    assert.equal(preview.code, 0, preview.stdout + preview.stderr);
    // The reviewer sees the drop-in's changed line, and nothing else changes.
    assert.deepEqual(changedLines(preview.stdout), [
        "- ExecStart=/var/amarktai/venv/bin/python -m uvicorn server:app --fd 3 --workers 2 --timeout-worker-healthcheck 30 --log-level info",
        "+ ExecStart=/var/amarktai/venv/bin/python -m uvicorn server:app --fd 3 --workers 3 --timeout-worker-healthcheck 30 --log-level info",
    ]);
    assert.match(preview.stdout, /Resources:\n\s+~ 2 to update\n/);
    assertGolden("preview/one-override-change.txt", normalizePreview(preview.stdout, stack.name, vm.port, [vm.hostKey]));
    const r = await stack.up();
    assert.equal(r.code, 0, `up failed:\n${r.stdout}\n${r.stderr}`);
    const after = counters();
    assert.equal(after.starts - before.starts, 1);
    assert.equal(after.reloads - before.reloads, 1);
    assert.equal(vmRun(vm, "stat -c %Y.%i /etc/systemd/system/amarktai-api.service"), unitStamp, "the unit file was rewritten");
    assert.match(show("ExecStart"), /--workers 3 /);
});

test("a stack file with three overrides applies them in their order, not by name", { timeout: 10 * MINUTE }, async () => {
    // Written as docs/configuration.md shows it: logging, memory, cpu. Pulumi hands the program this object with its keys
    // sorted (cpu, logging, memory); the drop-ins must still be 10-logging, 20-memory, 30-cpu.
    const doc = YAML.parseDocument(fs.readFileSync(stack.configFile, "utf8"));
    doc.setIn(["config", "amarktai-infra:overrides"], {
        logging: { order: 10, logLevel: "debug" },
        memory: { order: 20, memoryMax: "2G", memoryHigh: "1.5G" },
        cpu: { order: 30, cpuQuota: "200%" },
    });
    fs.writeFileSync(stack.configFile, doc.toString());
    const r = await stack.up();
    assert.equal(r.code, 0, `up failed:\n${r.stdout}\n${r.stderr}`);
    const dir = "/etc/systemd/system/amarktai-api.service.d";
    // systemd lists DropInPaths in the order it applies them.
    assert.deepEqual(show("DropInPaths").split(/\s+/), [`${dir}/10-logging.conf`, `${dir}/20-memory.conf`, `${dir}/30-cpu.conf`]);
    assert.equal(show("MemoryMax"), String(2 * 1024 ** 3));
    assert.equal(show("CPUQuotaPerSecUSec"), "2s");
    assert.match(show("ExecStart"), /--log-level debug /);
    assert.equal(vmSsh(vm, `test -e ${dir}/10-workers.conf`).code, 1, "the earlier workers drop-in left with its override");
    assert.equal(healthStatus(), "200");
});

test("removing the overrides removes their files from the host", { timeout: 10 * MINUTE }, async () => {
    const dropIn = vmRun(vm, "cat /etc/systemd/system/amarktai-api.service.d/20-memory.conf");
    await stack.removeConfig("overrides");
    const preview = await stack.run(["preview", "--diff"]);
    assert.equal(preview.code, 0, preview.stdout + preview.stderr);
    assert.match(preview.stdout, /Resources:\n\s+~ 1 to update\n\s+- 3 to delete\n/);
    assertShowsEveryLine(preview.stdout, dropIn, "a removed drop-in");
    assertGolden("preview/override-removed.txt", normalizePreview(preview.stdout, stack.name, vm.port, [vm.hostKey]));
    const r = await stack.up();
    assert.equal(r.code, 0, `up failed:\n${r.stdout}\n${r.stderr}`);
    for (const file of ["10-logging.conf", "20-memory.conf", "30-cpu.conf"]) {
        assert.equal(vmSsh(vm, `test -e /etc/systemd/system/amarktai-api.service.d/${file}`).code, 1, `${file} still there`);
    }
    assert.doesNotMatch(show("ExecStart"), /--workers/);
    assert.equal(healthStatus(), "200");
});

test("adding and changing env flags restarts the service without a daemon-reload", { timeout: 10 * MINUTE }, async () => {
    const before = counters();
    await stack.setConfig({ env: { ENABLE_TRADING: "true", FEATURE_SIGNALS: "on" } });
    const preview = await stack.run(["preview", "--diff"]);
    assert.equal(preview.code, 0, preview.stdout + preview.stderr);
    assert.deepEqual(changedLines(preview.stdout), ["- ENABLE_TRADING=false", "+ ENABLE_TRADING=true", "+ FEATURE_SIGNALS=on"], "a flag change shows its old and new value, an added flag its line");
    assertGolden("preview/env-flag-added.txt", normalizePreview(preview.stdout, stack.name, vm.port, [vm.hostKey]));
    const r = await stack.up();
    assert.equal(r.code, 0, `up failed:\n${r.stdout}\n${r.stderr}`);
    const after = counters();
    assert.equal(after.starts - before.starts, 1);
    assert.equal(after.reloads - before.reloads, 0);
    assert.equal(envDigest("ENABLE_TRADING").sha256, sha256("true"));
    assert.equal(envDigest("FEATURE_SIGNALS").sha256, sha256("on"));
});

test("changing a secret shows which key changed, never its value, and restarts the service", { timeout: 10 * MINUTE }, async () => {
    const newKey = `sk-rotated-${Date.now()}`;
    await stack.setSecret("secretEnv.OPENAI_API_KEY", newKey);
    const preview = await stack.run(["preview", "--diff"]);
    assert.equal(preview.code, 0, preview.stdout + preview.stderr);
    const changed = changedLines(preview.stdout);
    assert.equal(changed.length, 2, changed.join("\n"));
    assert.match(changed[0]!, /^- OPENAI_API_KEY=\[secret [0-9a-f]{12}\]$/);
    assert.match(changed[1]!, /^\+ OPENAI_API_KEY=\[secret [0-9a-f]{12}\]$/);
    assert.notEqual(changed[0]!.slice(2), changed[1]!.slice(2));
    for (const secret of [OPENAI_API_KEY, newKey, MONGO_URL]) {
        assert.ok(!(preview.stdout + preview.stderr).includes(secret), "a secret value appeared in the preview");
    }
    assertGolden("preview/secret-change.txt", normalizePreview(preview.stdout, stack.name, vm.port, [vm.hostKey]));
    const before = counters();
    assert.equal((await stack.up()).code, 0);
    assert.equal(counters().starts - before.starts, 1);
    assert.equal(envDigest("OPENAI_API_KEY").sha256, sha256(newKey));
});

test("adding a journald limit rewrites only the journald drop-in, shown as one added line", { timeout: 10 * MINUTE }, async () => {
    await stack.setConfig({ journald: { systemMaxUse: "1G", systemKeepFree: "2G", maxRetentionSec: "30day" } });
    const preview = await stack.run(["preview", "--diff"]);
    assert.equal(preview.code, 0, preview.stdout + preview.stderr);
    assert.deepEqual(changedLines(preview.stdout), ["+ MaxRetentionSec=30day"]);
    assertGolden("preview/journald-limit-added.txt", normalizePreview(preview.stdout, stack.name, vm.port, [vm.hostKey]));
    const before = counters();
    assert.equal((await stack.up()).code, 0);
    assert.equal(counters().starts - before.starts, 0, "journald settings do not restart the service");
    assert.match(vmRun(vm, "systemd-analyze cat-config systemd/journald.conf"), /^MaxRetentionSec=30day$/m);
});

test("a change that makes the service unhealthy fails with the journal, and the previous version keeps serving", { timeout: 10 * MINUTE }, async () => {
    const envBefore = vmRun(vm, "sha256sum /var/amarktai/app/backend/.env", { root: true });
    await stack.setConfig({ overrides: { broken: { environment: { DEMO_FAIL_ON_STARTUP: "1" } } } });
    const r = await stack.up();
    assert.notEqual(r.code, 0, "the update should have failed");
    const output = r.stdout + r.stderr;
    assert.match(output, /did not become healthy; the previous files were restored/);
    assert.match(output, /DEMO_FAIL_ON_STARTUP=1: refusing to start/, "journal excerpt missing");
    assert.equal(vmSsh(vm, "test -e /etc/systemd/system/amarktai-api.service.d/10-broken.conf").code, 1, "the failing drop-in was left live");
    assert.equal(vmRun(vm, "systemctl is-active amarktai-api").trim(), "active");
    assert.equal(healthStatus(), "200");
    assert.equal(vmRun(vm, "sha256sum /var/amarktai/app/backend/.env", { root: true }), envBefore, ".env changed");
    // Fixing the config converges.
    await stack.removeConfig("overrides");
    const fixed = await stack.up();
    assert.equal(fixed.code, 0, `up after the fix failed:\n${fixed.stdout}\n${fixed.stderr}`);
    assert.equal(healthStatus(), "200");
});

test("a bad config value is refused by preview, naming the key, before any SSH connection", { timeout: 5 * MINUTE }, async () => {
    const before = counters();
    await stack.setConfig({ overrides: { memory: { memoryMax: "2GB" } } });
    const r = await stack.run(["preview"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /amarktai-infra:overrides\.memory\.memoryMax: must be a systemd size/);
    const after = counters();
    assert.equal(after.sessions - before.sessions, 1, "preview of a bad config connected to the host");
    await stack.removeConfig("overrides");
});

test("pulumi destroy removes the unit and its drop-ins and keeps the data", { timeout: 10 * MINUTE }, async () => {
    await stack.setConfig({ overrides: { cpu: { cpuQuota: "150%" } } });
    assert.equal((await stack.up()).code, 0);
    const envSha = vmRun(vm, "sha256sum /var/amarktai/app/backend/.env", { root: true });
    const r = await stack.run(["destroy", "--yes", "--skip-preview"]);
    assert.equal(r.code, 0, `destroy failed:\n${r.stdout}\n${r.stderr}`);
    assert.equal(vmSsh(vm, "test -e /etc/systemd/system/amarktai-api.service").code, 1, "unit left behind");
    assert.equal(vmSsh(vm, "test -e /etc/systemd/system/amarktai-api.service.d").code, 1, "drop-in dir left behind");
    assert.equal(vmSsh(vm, "test -e /etc/systemd/journald.conf.d/60-amarktai-infra-amarktai-api.conf").code, 1, "journald drop-in left behind");
    assert.notEqual(vmSsh(vm, "systemctl is-active amarktai-api").stdout.trim(), "active");
    assert.equal(vmRun(vm, "sha256sum /var/amarktai/app/backend/.env", { root: true }), envSha, ".env not kept");
    vmRun(vm, "test -x /var/amarktai/venv/bin/python && test -d /var/amarktai/logs && getent passwd amarktai >/dev/null");
    // And back again.
    assert.equal((await stack.up()).code, 0);
    assert.equal(healthStatus(), "200");
});
