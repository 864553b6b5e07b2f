/**
 * Adoption of a hand-made install: a host built by the service notes' own
 * manual steps (their unit byte for byte, user `amarktai` made by hand,
 * `chown -R amarktai:amarktai` on the app and the venv, a `.env` holding
 * JWT_SECRET and MONGO_URL, a `systemctl edit` override.conf) is taken over
 * by `hosts[i].adopt`: refused without it (changing nothing), previewed with
 * it (what exists, what changes, no value), then adopted by one `up` while a
 * request loop asks /health, keeping the JWT and every other value, with a
 * backup that `destroy` keeps.
 *
 * One container host: real systemd, sockets and uvicorn at native speed
 * (the handover needs only the kernel's sockets, which a container shares).
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { TestStack } from "../../tools/stack";
import { VmInfo, hostCounters, startContainer, stopContainer, vmPrivateKey, vmRun } from "../../tools/vm";
import { RequestLoop, RequestLoopResult, formatRequestLoop, rootShellOn } from "../support/request-loop";

const MINUTE = 60_000;
const UNIT = "amarktai-api.service";
const SOCKET = "amarktai-api.socket";
const UNIT_PATH = `/etc/systemd/system/${UNIT}`;
const OVERRIDE = `/etc/systemd/system/${UNIT}.d/override.conf`;
const ENV_PATH = "/var/amarktai/app/backend/.env";
const STATE = "/var/lib/amarktai-infra/amarktai-api";
const URL = "http://127.0.0.1:8000/health";
const REPO = path.resolve(__dirname, "..", "..", "..");
const NOTES_UNIT = fs.readFileSync(path.join(REPO, "test", "fixtures", "notes-unit.service"), "utf8");
/** What `systemctl edit amarktai-api` leaves after typing the notes' memory limits. */
const OVERRIDE_TEXT = "[Service]\nMemoryMax=2G\nMemoryHigh=1.5G\n";
const JWT = crypto.randomBytes(32).toString("hex");
const MONGO_URL = `mongodb://amarktai:${crypto.randomBytes(12).toString("hex")}@127.0.0.1:27017/amarktai`;
/** The app's directory: inside the project (a sourceDir outside it is refused). */
const appDir = path.join(REPO, ".test-apps", `adopt-${process.pid}`);
const appRel = path.relative(REPO, appDir);
const sha = (text: string) => crypto.createHash("sha256").update(text).digest("hex");

let host: VmInfo;
let stack: TestStack;
const outputs: string[] = [];

const root = (command: string, input?: string) => vmRun(host, command, { root: true, ...(input !== undefined ? { input } : {}) });
const show = (property: string, unit = UNIT) => root(`systemctl show -p ${property} --value ${unit}`).trim();
const digest = (name: string) => JSON.parse(root(`curl -fsS 'http://127.0.0.1:8000/debug/env-digest?name=${name}'`)) as { present: boolean; sha256: string | null };
const owners = () => root("stat -c '%n %U:%G %a' /var/amarktai/app /var/amarktai/app/backend /var/amarktai/venv /var/amarktai/logs");
const fileSha = (p: string) => root(`sha256sum ${p} | cut -d' ' -f1`).trim();

/**
 * The notes' manual install, step by step, as root. The venv gets uvicorn through pip as the notes do
 * (`pip install -r requirements.txt`); the image has no ensurepip, so pip comes as a wheel from the index.
 */
const NOTES_INSTALL = [
    "set -euo pipefail",
    "useradd --system --user-group --no-create-home --shell /usr/sbin/nologin amarktai",
    "mkdir -p /var/amarktai/app/backend /var/amarktai/logs",
    "python3 -m venv --without-pip /var/amarktai/venv",
    "python3 - <<'PY'",
    "import json, urllib.parse, urllib.request",
    "resp = urllib.request.urlopen('https://pypi.org/pypi/pip/json', timeout=120)",
    "meta = json.load(resp)",
    "url = urllib.parse.urljoin(resp.geturl(), next(u['url'] for u in meta['urls'] if u['filename'].endswith('.whl')))",
    "urllib.request.urlretrieve(url, '/root/pip.whl')",
    "PY",
    "/var/amarktai/venv/bin/python /root/pip.whl/pip install --quiet --no-input --disable-pip-version-check uvicorn==0.38.0",
    "rm -f /root/pip.whl",
].join("\n");

/** Runs `during` with the request loop going and prints what it saw. */
async function measured(label: string, during: () => Promise<void>): Promise<RequestLoopResult> {
    const loop = await RequestLoop.start(rootShellOn(host), { url: URL, intervalMs: 50 });
    let result: RequestLoopResult | undefined;
    try {
        await during();
    } finally {
        result = await loop.stop();
        console.error(`    ${formatRequestLoop(label, result)}`);
    }
    return result;
}

async function waitHealthy(what: string): Promise<void> {
    const deadline = Date.now() + 3 * MINUTE;
    for (;;) {
        const r = root(`curl -s -o /dev/null -w '%{http_code}' ${URL} || true`).trim();
        if (r === "200") return;
        if (Date.now() > deadline) throw new Error(`${what}: /health never answered 200 (last: ${r})\n${root(`journalctl -u ${UNIT} -n 30 --no-pager || true`)}`);
        await new Promise((resolve) => setTimeout(resolve, 500));
    }
}

async function cli(args: string[]) {
    const r = await stack.run(args);
    outputs.push(r.stdout, r.stderr);
    return r;
}

let before_: { unitSha: string; envSha: string; owners: string; mainPid: string; uid: string };

before(async () => {
    fs.rmSync(appDir, { recursive: true, force: true });
    fs.mkdirSync(appDir, { recursive: true });
    fs.copyFileSync(path.join(REPO, "demo-app", "server.py"), path.join(appDir, "server.py"));
    host = await startContainer(`e2e-adopt-${process.pid}`);
    // The notes' install: code, venv, .env, ownership, unit, start, then a drop-in with systemctl edit.
    root(NOTES_INSTALL);
    root("cat > /var/amarktai/app/backend/server.py", fs.readFileSync(path.join(REPO, "demo-app", "server.py"), "utf8"));
    root(`umask 077 && cat > ${ENV_PATH}`, `JWT_SECRET=${JWT}\nMONGO_URL=${MONGO_URL}\nENABLE_TRADING=false\nDEMO_STARTUP_DELAY_SEC=2\n`);
    root("chown -R amarktai:amarktai /var/amarktai/app && chown -R amarktai:amarktai /var/amarktai/venv");
    root(`cat > ${UNIT_PATH}`, NOTES_UNIT);
    root(`systemctl daemon-reload && systemctl enable --quiet ${UNIT} && systemctl start ${UNIT}`);
    root(`mkdir -p ${path.dirname(OVERRIDE)} && cat > ${OVERRIDE} && systemctl daemon-reload && systemctl restart ${UNIT}`, OVERRIDE_TEXT);
    await waitHealthy("the hand-made install");
    assert.equal(fileSha(UNIT_PATH), sha(NOTES_UNIT), "the unit is the notes' byte for byte");
    assert.equal(digest("JWT_SECRET").sha256, sha(JWT));
    before_ = { unitSha: fileSha(UNIT_PATH), envSha: fileSha(ENV_PATH), owners: owners(), mainPid: show("MainPID"), uid: root("id -u amarktai; id -g amarktai") };

    stack = await TestStack.create("adopt");
    await stack.setConfig({
        hosts: [{ name: "h1", address: host.host, port: host.port, user: host.user, hostKey: host.hostKey }],
        app: { sourceDir: appRel },
        overrides: { memory: { memoryMax: "2G", memoryHigh: "1.5G" } },
        env: { ENABLE_TRADING: "false", DEMO_STARTUP_DELAY_SEC: "2" },
    });
    await stack.setSecret("sshPrivateKey", vmPrivateKey(host));
});

after(async () => {
    if (host) await stopContainer(host.name);
    stack?.cleanup();
    fs.rmSync(appDir, { recursive: true, force: true });
});

test("without adopt, up refuses the hand-made install, says how to adopt it, and changes nothing", { timeout: 15 * MINUTE }, async () => {
    const r = await cli(["up", "--yes", "--skip-preview"]);
    assert.notEqual(r.code, 0, "up succeeded on a hand-made install without adopt");
    assert.match(r.stdout + r.stderr, /set adopt: true on this host \(hosts\[i\]\.adopt\)/);
    assert.equal(fileSha(UNIT_PATH), before_.unitSha);
    assert.equal(fileSha(ENV_PATH), before_.envSha);
    assert.equal(owners(), before_.owners);
    assert.equal(show("MainPID"), before_.mainPid, "the hand-made service was not restarted");
    assert.equal(root(`cat ${OVERRIDE}`), OVERRIDE_TEXT);
});

test("preview with adopt shows the unit's changed lines, the drop-in as converted, owners and the .env's keys, without a value", { timeout: 10 * MINUTE }, async () => {
    const hosts = [{ name: "h1", address: host.host, port: host.port, user: host.user, hostKey: host.hostKey, adopt: true }];
    await stack.setConfig({ hosts });
    const r = await cli(["preview", "--diff"]);
    assert.equal(r.code, 0, `preview failed:\n${r.stdout}\n${r.stderr}`);
    const out = r.stdout;
    assert.match(out, /- ExecStart=\/var\/amarktai\/venv\/bin\/python -m uvicorn server:app --host 127\.0\.0\.1 --port 8000 --log-level info/);
    assert.match(out, /\+ ExecStart=.*--fd 3/);
    assert.match(out, /override\.conf[\s\S]*MemoryMax=2G[\s\S]*converted/);
    assert.match(out, /JWT_SECRET: kept as a secret/);
    assert.match(out, /MONGO_URL: kept as a secret/);
    assert.match(out, /ENABLE_TRADING: set by env/);
    assert.ok(!out.includes(JWT) && !out.includes(MONGO_URL), "a value of the hand-made .env appeared in the preview");
    // The same report through scripts/preview (the preview's JSON), as its lines.
    const summary = await stack.script("scripts/preview", ["--stack", stack.name, "--config-file", stack.configFile, "--non-interactive"]);
    outputs.push(summary.stdout, summary.stderr);
    assert.equal(summary.code, 0, `scripts/preview failed:\n${summary.stdout}\n${summary.stderr}`);
    assert.match(summary.stdout, /\+ amarktai:HostAdoption [^\n]*\(create\)[\s\S]*report:\n\s+unit \/etc\/systemd\/system\/amarktai-api\.service \(hand-made/);
    assert.match(summary.stdout, /\n\s+JWT_SECRET: kept as a secret\n/);
    assert.equal(fileSha(UNIT_PATH), before_.unitSha, "the preview changed the unit");
    assert.equal(show("MainPID"), before_.mainPid);
});

test("up with adopt takes the install over with no failed request, keeping JWT_SECRET and MONGO_URL, and backs it up", { timeout: 20 * MINUTE }, async () => {
    let up: Awaited<ReturnType<typeof cli>> | undefined;
    const startsBefore = hostCounters(host).starts;
    const loop = await measured("adoption up", async () => {
        up = await cli(["up", "--yes", "--skip-preview"]);
    });
    assert.equal(up!.code, 0, `up failed:\n${up!.stdout}\n${up!.stderr}`);
    assert.equal(hostCounters(host).starts - startsBefore, 1, "the service was started once, on the socket");
    assert.ok(loop.requests > 0);
    assert.equal(loop.failed, 0, `${formatRequestLoop("adoption up", loop)}\n${JSON.stringify(loop.failures, null, 2)}`);
    // The same secrets reach the new process.
    assert.equal(digest("JWT_SECRET").sha256, sha(JWT), "JWT_SECRET was replaced");
    assert.equal(digest("MONGO_URL").sha256, sha(MONGO_URL), "MONGO_URL was not carried");
    // The managed unit behind the socket; the hand-made drop-in is gone, its settings in the managed one.
    assert.equal(show("ActiveState", SOCKET), "active");
    assert.match(root(`head -n 1 ${UNIT_PATH}`), /Managed by amarktai-infra/);
    assert.equal(root(`test -e ${OVERRIDE} && echo present || echo absent`).trim(), "absent");
    assert.equal(show("MemoryMax"), String(2 * 1024 ** 3));
    assert.equal(root("id -u amarktai; id -g amarktai"), before_.uid, "the user and group were kept");
    // The backup: the unit byte for byte, the drop-in, the .env root-only, and a manifest.
    const backup = root(`ls -d ${STATE}/adopted-*`).trim();
    assert.equal(backup.split("\n").length, 1, backup);
    assert.equal(root(`find ${backup} -type f -exec sha256sum {} + | grep -c ${before_.unitSha} || true`).trim(), "1", "the unit's backup differs");
    assert.match(root(`find ${backup} -type f -name '*override*' -o -type f -path '*dropin*'`), /override/);
    assert.match(root(`find ${backup} -type f -exec stat -c '%U %a %n' {} + | grep -v MANIFEST`), /root 600/);
    assert.match(root(`cat ${backup}/MANIFEST`), new RegExp(UNIT_PATH.replace(/\./g, "\\.")));
    assert.match(root(`grep '^adopted ' ${STATE}/created`), /adopted unit .*\n[\s\S]*adopted user amarktai/);
    // The port went over by the handover (the socket joined the old listener), not by stopping first.
    assert.match(root("cat /run/systemd/system/amarktai-api.socket.d/50-amarktai-infra-handover.conf"), /ReusePort=yes/);
});

test("after the adoption, up changes nothing and no output or state holds a hand-made value", { timeout: 10 * MINUTE }, async () => {
    const r = await cli(["up", "--yes", "--skip-preview", "--expect-no-changes"]);
    assert.equal(r.code, 0, `a second up changed something:\n${r.stdout}\n${r.stderr}`);
    const exported = await stack.mustRun(["stack", "export"]);
    for (const text of [...outputs, exported.stdout]) {
        assert.ok(!text.includes(JWT), "JWT_SECRET appeared in an output or the state");
        assert.ok(!text.includes(MONGO_URL), "MONGO_URL appeared in an output or the state");
    }
});

test("destroy after adoption keeps the user, the data and the backup", { timeout: 10 * MINUTE }, async () => {
    const r = await cli(["destroy", "--yes", "--skip-preview"]);
    assert.equal(r.code, 0, `destroy failed:\n${r.stdout}\n${r.stderr}`);
    assert.equal(root(`test -e ${UNIT_PATH} && echo present || echo absent`).trim(), "absent");
    assert.equal(root(`systemctl is-active ${SOCKET} || true`).trim(), "inactive");
    assert.equal(root("id -u amarktai; id -g amarktai"), before_.uid);
    const kept = root(`ls -d /var/amarktai/app /var/amarktai/logs /var/amarktai/releases/before-releases-* ${STATE}/adopted-*`);
    assert.match(kept, /before-releases-venv/);
    assert.match(kept, /adopted-/);
    assert.match(root(`find ${STATE}/adopted-* -type f -exec sha256sum {} +`), new RegExp(before_.unitSha));
});
