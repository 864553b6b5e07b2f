/**
 * Releases on a real VM: the app's files and a venv built beside the live
 * release, switched atomically, health-gated and switched back; kept releases
 * reused without an installer run. One VM serves every step, each leaving it
 * healthy on a known release.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { envStorePath } from "../../components/model";
import { TestStack } from "../../tools/stack";
import { REPO, VmInfo, hostCounters, startVm, stopVm, vmPrivateKey, vmRun, vmSsh } from "../../tools/vm";

const MINUTE = 60_000;
const RELEASES = "/var/amarktai/releases";
let vm: VmInfo;
let stack: TestStack;
/** The app's directory: inside the project (a sourceDir outside it is refused). */
const appDir = path.join(REPO, ".test-apps", `releases-${process.pid}`);
const appRel = path.relative(REPO, appDir);
const BINARY = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const SCRIPT = "#!/bin/sh\necho tool ran\n";
const BASE_REQS = ["uvicorn==0.38.0"];
const WITH_SIX = ["uvicorn==0.38.0", "six==1.17.0"];

const health = () => vmSsh(vm, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/health").stdout.trim();
const current = () => vmRun(vm, `readlink ${RELEASES}/current`).trim();
const releasesOnDisk = () => vmRun(vm, `ls -1 ${RELEASES} | grep -E '^[0-9a-f]{16}$' || true`).trim().split("\n").filter(Boolean);
/** Installer runs and reuses, from the host's journal (the build logs them with the tag amarktai-infra). */
const buildLog = () => vmRun(vm, "journalctl -q --no-pager -o cat -t amarktai-infra | grep -E 'release [0-9a-f]{16} (built|is already)' || true", { root: true });

async function up() {
    const r = await stack.up();
    assert.equal(r.code, 0, `up failed:\n${r.stdout}\n${r.stderr}`);
    return r;
}

before(async () => {
    fs.rmSync(appDir, { recursive: true, force: true });
    fs.mkdirSync(path.join(appDir, "assets"), { recursive: true });
    fs.mkdirSync(path.join(appDir, "bin"));
    fs.copyFileSync(path.join(REPO, "demo-app", "server.py"), path.join(appDir, "server.py"));
    fs.writeFileSync(path.join(appDir, "assets", "blob.bin"), BINARY);
    fs.writeFileSync(path.join(appDir, "bin", "tool.sh"), SCRIPT, { mode: 0o755 });
    fs.writeFileSync(path.join(appDir, "extra.py"), "VALUE = 1\n");
    fs.writeFileSync(path.join(appDir, ".env"), "LOCAL_SECRET=never-deployed\n");
    vm = startVm(`e2e-rel-${process.pid}`);
    stack = await TestStack.create("rel");
    await stack.setConfig({
        hosts: [{ name: "vm", address: vm.host, port: vm.port, user: vm.user, hostKey: vm.hostKey }],
        app: { sourceDir: appRel, requirements: BASE_REQS },
    });
    await stack.setSecret("sshPrivateKey", vmPrivateKey(vm));
});

after(() => {
    if (vm) stopVm(vm.name);
    stack?.cleanup();
    fs.rmSync(appDir, { recursive: true, force: true });
});

test("a fresh up runs the app from a root-owned release that the notes' paths point into", { timeout: 15 * MINUTE }, async () => {
    const r = await up();
    console.error(`    fresh up took ${r.seconds.toFixed(1)}s`);
    assert.equal(health(), "200");
    const id = current();
    assert.match(id, /^[0-9a-f]{16}$/);
    assert.equal(vmRun(vm, "readlink /var/amarktai/venv; readlink /var/amarktai/app/backend").trim(), `${RELEASES}/current/venv\n${RELEASES}/current/app`);
    assert.equal(vmRun(vm, "systemctl show -p WorkingDirectory --value amarktai-api").trim(), "/var/amarktai/app/backend");
    // The venv works through the link (Python finds pyvenv.cfg beside the invoked executable).
    assert.equal(vmRun(vm, "/var/amarktai/venv/bin/python -c 'import sys, uvicorn; print(sys.prefix)'").trim(), "/var/amarktai/venv");
    // The service can read its release but change nothing in it, nor the links into it.
    const attempt = vmSsh(vm, `runuser -u amarktai -- sh -c 'touch /var/amarktai/app/backend/x || touch ${RELEASES}/current/app/x || ln -sfn /tmp /var/amarktai/app/backend || echo refused'`, { root: true });
    assert.equal(attempt.stdout.trim(), "refused", attempt.stderr);
    assert.equal(vmRun(vm, `stat -c '%U %a' ${RELEASES} ${RELEASES}/${id} /var/amarktai/app`).trim(), "root 755\nroot 755\nroot 755");
    assert.equal(vmSsh(vm, "test -e /var/amarktai/app/backend/.env.local || grep -q LOCAL_SECRET /var/amarktai/app/backend/.env", { root: true }).code, 1, "a local .env must never be deployed");
    assert.equal(buildLog().match(/built/g)?.length, 1, buildLog());
});

test("a binary file and an executable script arrive byte-exact with their modes", { timeout: 5 * MINUTE }, async () => {
    const sha = (b: Buffer | string) => crypto.createHash("sha256").update(b).digest("hex");
    const out = vmRun(vm, "cd /var/amarktai/app/backend && sha256sum assets/blob.bin bin/tool.sh && stat -c '%a %s %U' assets/blob.bin bin/tool.sh && ./bin/tool.sh").trim().split("\n");
    assert.deepEqual(out, [
        `${sha(BINARY)}  assets/blob.bin`,
        `${sha(SCRIPT)}  bin/tool.sh`,
        "644 256 root",
        `755 ${Buffer.byteLength(SCRIPT)} root`,
        "tool ran",
    ]);
});

test("a symlink out of sourceDir is refused before any SSH session", { timeout: 5 * MINUTE }, async () => {
    const link = path.join(appDir, "leak.conf");
    fs.symlinkSync("/etc/hostname", link);
    try {
        const before = hostCounters(vm);
        const r = await stack.run(["preview", "--diff"]);
        assert.notEqual(r.code, 0, "the preview should fail");
        assert.match(r.stdout + r.stderr, /app\.sourceDir: leak\.conf is a symbolic link to \/etc\/hostname, outside/);
        assert.equal(hostCounters(vm).sessions - before.sessions, 1, "only the counter's own SSH session");
    } finally {
        fs.unlinkSync(link);
    }
});

test("adding a requirement makes a new release: one restart, healthy, and the previous release still on disk", { timeout: 10 * MINUTE }, async () => {
    const previous = current();
    const before = hostCounters(vm);
    await stack.setConfig({ app: { sourceDir: appRel, requirements: WITH_SIX } });
    const preview = await stack.run(["preview", "--diff"]);
    assert.equal(preview.code, 0, preview.stderr);
    assert.match(preview.stdout, /\+ six==1\.17\.0/, "the preview shows the requirement that changes");
    const r = await up();
    console.error(`    requirements-only change took ${r.seconds.toFixed(1)}s`);
    assert.equal(health(), "200");
    assert.notEqual(current(), previous);
    assert.equal(hostCounters(vm).starts - before.starts, 1, "exactly one restart");
    assert.ok(releasesOnDisk().includes(previous), `the previous release ${previous} was removed: ${releasesOnDisk().join(" ")}`);
    assert.equal(vmRun(vm, "/var/amarktai/venv/bin/python -c 'import six; print(six.__version__)'").trim(), "1.17.0");
});

test("a requirement that cannot be installed fails up with the installer's message; the running release keeps answering /health 200, its venv untouched", { timeout: 10 * MINUTE }, async () => {
    const live = current();
    const venvBefore = vmRun(vm, `cd ${RELEASES}/${live} && find venv -printf '%p %s %T@\\n' | sort | sha256sum`);
    // Poll /health inside the host for the whole up.
    vmRun(vm, "rm -f /tmp/health.log; nohup bash -c 'while :; do curl -s -o /dev/null -m 5 -w \"%{http_code}\\n\" http://127.0.0.1:8000/health >> /tmp/health.log; sleep 0.5; done' >/dev/null 2>&1 & echo $! > /tmp/health.pid", { root: true });
    try {
        await stack.setConfig({ app: { sourceDir: appRel, requirements: [...WITH_SIX, "amarktai-no-such-package==1.0"] } });
        const r = await stack.up();
        assert.notEqual(r.code, 0, "up should fail");
        assert.match(r.stdout + r.stderr, /amarktai-no-such-package/);
        assert.match(r.stdout + r.stderr, /not found in the package registry|No matching distribution/);
    } finally {
        vmRun(vm, "kill $(cat /tmp/health.pid)", { root: true });
    }
    const polls = vmRun(vm, "cat /tmp/health.log", { root: true }).trim().split("\n");
    assert.ok(polls.length >= 5, `too few health polls: ${polls.length}`);
    assert.deepEqual([...new Set(polls)], ["200"], `a poll did not answer 200: ${polls.join(",")}`);
    assert.equal(current(), live);
    assert.equal(vmRun(vm, `cd ${RELEASES}/${live} && find venv -printf '%p %s %T@\\n' | sort | sha256sum`), venvBefore, "the live venv changed");
    assert.equal(vmRun(vm, `ls -a ${RELEASES} | grep -c '^\\.\\?[0-9a-f]\\{16\\}' || true`).trim(), String(releasesOnDisk().length), "a failed build left a directory behind");
});

test("a release that fails health is switched back to the previous release", { timeout: 10 * MINUTE }, async () => {
    const live = current();
    const invocation = vmRun(vm, "systemctl show -p InvocationID --value amarktai-api").trim();
    fs.writeFileSync(path.join(appDir, "server.py"), `raise RuntimeError("this release cannot start")\n`);
    await stack.setConfig({ app: { sourceDir: appRel, requirements: WITH_SIX } });
    try {
        const r = await stack.up();
        assert.notEqual(r.code, 0, "up should fail");
        assert.match(r.stdout + r.stderr, /did not become healthy/);
        assert.match(r.stdout + r.stderr, /this release cannot start/);
    } finally {
        fs.copyFileSync(path.join(REPO, "demo-app", "server.py"), path.join(appDir, "server.py"));
    }
    assert.equal(current(), live, "current points back at the previous release");
    assert.equal(health(), "200");
    assert.notEqual(vmRun(vm, "systemctl show -p InvocationID --value amarktai-api").trim(), invocation, "the previous release was restarted");
});

test("a file removed from sourceDir is gone from the host after the next up", { timeout: 10 * MINUTE }, async () => {
    fs.unlinkSync(path.join(appDir, "extra.py"));
    await up();
    assert.equal(health(), "200");
    assert.equal(vmSsh(vm, "test -e /var/amarktai/app/backend/extra.py").code, 1, "extra.py is still there");
    assert.equal(vmSsh(vm, "test -e /var/amarktai/app/backend/server.py").code, 0);
});

test("switching back to the previous config reuses the kept release without running the installer", { timeout: 10 * MINUTE }, async () => {
    const builtBefore = buildLog().match(/built/g)?.length ?? 0;
    fs.writeFileSync(path.join(appDir, "extra.py"), "VALUE = 1\n");
    const before = hostCounters(vm);
    await up();
    assert.equal(health(), "200");
    const log = buildLog();
    assert.equal(log.match(/built/g)?.length ?? 0, builtBefore, `a release was built again:\n${log}`);
    assert.match(log.trim().split("\n").pop()!, /release ([0-9a-f]{16}) is already on this host: reusing it/);
    assert.equal(current(), /release ([0-9a-f]{16}) is already/.exec(log.trim().split("\n").pop()!)![1]);
    assert.equal(vmRun(vm, "cat /var/amarktai/app/backend/extra.py"), "VALUE = 1\n");
    assert.equal(hostCounters(vm).starts - before.starts, 1, "one restart for the switch");
    assert.ok(releasesOnDisk().length <= 3, `more releases than releases.keep: ${releasesOnDisk().join(" ")}`);
});

test("a package index the host cannot reach fails up in seconds, naming the index first; the running release keeps answering", { timeout: 10 * MINUTE }, async () => {
    const live = current();
    const index = "http://127.0.0.1:9/simple";
    // A new index is a new release (it may resolve other packages), so the build runs and checks it first.
    await stack.setConfig({ app: { sourceDir: appRel, requirements: WITH_SIX }, releases: { indexUrl: index } });
    try {
        const r = await stack.up();
        console.error(`    up with an unreachable index took ${r.seconds.toFixed(1)}s`);
        assert.notEqual(r.code, 0, "up should fail");
        const out = `${r.stdout}\n${r.stderr}`;
        const firstError = out.split("\n").find((l) => /error:/.test(l)) ?? "";
        assert.match(firstError, /cannot reach the package index http:\/\/127\.0\.0\.1:9\/simple from this host \(Connection refused\): set releases\.indexUrl to an index this host can reach/, out);
        assert.doesNotMatch(out, /Traceback|building release [0-9a-f]{16} with/, "nothing was installed");
        // Before: the installers' retries made this take minutes; the check answers at once (the rest is the up's own cost).
        assert.ok(r.seconds < 120, `took ${r.seconds}s`);
    } finally {
        await stack.setConfig({ releases: {} });
    }
    assert.equal(health(), "200");
    assert.equal(current(), live);
});

test("with releases.uvSource: deployer, a host without uv gets it over SSH from the machine running Pulumi and never downloads it", { timeout: 15 * MINUTE }, async () => {
    const live = current();
    vmRun(vm, "rm -rf /var/lib/amarktai-infra/tools", { root: true });
    const since = vmRun(vm, "date '+%Y-%m-%d %H:%M:%S'").trim();
    // A new app file makes a new release, so the build runs and needs uv.
    fs.writeFileSync(path.join(appDir, "deployer.py"), "SENT = True\n");
    await stack.setConfig({ app: { sourceDir: appRel, requirements: WITH_SIX }, releases: { uvSource: "deployer" } });
    const r = await up();
    console.error(`    up sending uv from the deployer took ${r.seconds.toFixed(1)}s`);
    assert.equal(health(), "200");
    assert.notEqual(current(), live);
    const journal = vmRun(vm, `journalctl -q --no-pager -o cat -t amarktai-infra --since '${since}'`, { root: true });
    assert.match(journal, /uv 0\.9\.5 for \S+: installed from the wheel the deployer sent \(this host downloaded nothing\)/, journal);
    assert.match(journal, /release [0-9a-f]{16} built in \d+s with uv 0\.9\.5 \(sent by the deployer\)/, journal);
    assert.doesNotMatch(journal, /downloaded by this host/, journal);
    assert.equal(vmRun(vm, "cat /var/lib/amarktai-infra/tools/uv-0.9.5-*/origin", { root: true }), "sent by the deployer\n");
});

/** The setup.py of a package whose build step tries to harm the host: one line with each attempt's outcome, then an unguarded write to /etc. */
const HOSTILE_SETUP_PY = (targets: readonly string[], secretFile: string) => `import socket, sys
from setuptools import setup
outcomes = []
for address in [("127.0.0.1", 8000), ("169.254.169.254", 80)]:
    try:
        socket.create_connection(address, timeout=3).close()
        outcomes.append("connected to %s:%d" % address)
    except OSError as e:
        outcomes.append("could not connect to %s:%d (%s)" % (address[0], address[1], e.strerror or type(e).__name__))
for target in ${JSON.stringify(targets)}:
    try:
        with open(target, "w") as f:
            f.write("written by a build step")
        outcomes.append("wrote %s" % target)
    except OSError as e:
        outcomes.append("could not write %s (%s)" % (target, e.strerror))
try:
    outcomes.append("read the secrets: %s" % open(${JSON.stringify(secretFile)}).read().replace("\\n", " "))
except OSError as e:
    outcomes.append("could not read the secrets (%s)" % e.strerror)
print("HOSTILE " + "; ".join(outcomes), file=sys.stderr, flush=True)
open("/etc/amarktai-hostile-build", "w").write("x")
setup(name="hostile-build", version="1.0", packages=[])
`;

/** A PEP 503 index serving one sdist, on the deployer's loopback (the VM reaches it as 10.0.2.2). */
async function serveIndex(name: string, sdist: Buffer): Promise<{ url: string; close: () => void }> {
    const http = await import("http");
    const file = `${name}-1.0.tar.gz`;
    const digest = crypto.createHash("sha256").update(sdist).digest("hex");
    const server = http.createServer((req, res) => {
        if (req.url === `/simple/${name}/`) {
            res.writeHead(200, { "content-type": "text/html" }).end(`<!DOCTYPE html><html><body><a href="/files/${file}#sha256=${digest}">${file}</a></body></html>`);
        } else if (req.url === `/files/${file}`) {
            res.writeHead(200, { "content-type": "application/gzip" }).end(sdist);
        } else {
            res.writeHead(404).end();
        }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as import("net").AddressInfo).port;
    return { url: `http://10.0.2.2:${port}/simple`, close: () => server.close() };
}

test("a package whose build step writes to /etc and to the service's paths, reads the .env and connects to the live app fails in the build sandbox as a throwaway account (already when its requirements are resolved) and harms nothing", { timeout: 15 * MINUTE }, async () => {
    const live = current();
    const since = vmRun(vm, "date '+%Y-%m-%d %H:%M:%S'").trim();
    const liveVenv = vmRun(vm, `cd ${RELEASES}/${live} && find venv -printf '%p %s %T@\\n' | sort | sha256sum`);
    const envStore = envStorePath("amarktai-api");
    const jwt = vmRun(vm, `sed -n 's/^JWT_SECRET=//p' ${envStore}`, { root: true }).trim();
    assert.ok(jwt.length >= 16, `no JWT_SECRET in ${envStore}`);
    const targets = ["/etc/amarktai-hostile", `${RELEASES}/current/venv/hostile`, `${RELEASES}/hostile`, "/var/amarktai/logs/hostile", "/var/lib/amarktai-infra/hostile", `${path.dirname(envStore)}/hostile`, "/root/hostile"];
    // The sdist, packed by tar from a scratch directory.
    const work = fs.mkdtempSync(path.join(REPO, ".test-apps", "hostile-"));
    const src = path.join(work, "hostile_build-1.0");
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, "setup.py"), HOSTILE_SETUP_PY(targets, envStore));
    fs.writeFileSync(path.join(src, "pyproject.toml"), '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n');
    fs.writeFileSync(path.join(src, "PKG-INFO"), "Metadata-Version: 2.1\nName: hostile-build\nVersion: 1.0\n");
    const tar = (await import("child_process")).spawnSync("tar", ["-czf", "-", "-C", work, "hostile_build-1.0"]);
    assert.equal(tar.status, 0, String(tar.stderr));
    const index = await serveIndex("hostile-build", tar.stdout);
    try {
        await stack.setConfig({ app: { sourceDir: appRel, requirements: [...WITH_SIX, "hostile-build==1.0"] }, releases: { extraIndexUrls: [index.url] } });
        const r = await stack.up();
        const out = `${r.stdout}\n${r.stderr}`;
        assert.notEqual(r.code, 0, `up should fail:\n${out}`);
        // Resolving builds the sdist to read its metadata: the build step runs there first, in the same sandbox.
        assert.match(out, /uv pip compile failed/, out);
        assert.match(out, /hostile-build/, out);
        // Every write was refused by the sandbox: a read-only system, or no permission for the build account.
        // The build step's one line, as uv shows it: wrapped at 80 columns, behind the CLI's own prefixes.
        assert.ok(out.includes("HOSTILE "), `the build step did not run:\n${out}`);
        const shown = out.slice(out.indexOf("HOSTILE "), out.indexOf("Traceback", out.indexOf("HOSTILE ")));
        const hostile = shown.split("\n").map((l) => l.replace(/^[\s|]+/, "")).join(" ");
        for (const t of targets) assert.ok(new RegExp(`could not write ${t.replace(/[/.]/g, "\\$&")} \\((Read-only file system|Permission denied)\\)`).test(hostile), `${t}: ${hostile || out}`);
        assert.doesNotMatch(hostile, /wrote|read the secrets:|connected to/);
        // Neither the live app on loopback (which answers anyone else at once) nor a cloud's metadata address:
        // the sandbox's address filter drops the packets, so the connection times out.
        assert.match(hostile, /could not connect to 127\.0\.0\.1:8000 \((TimeoutError|timed out|Operation not permitted)\)/);
        assert.match(hostile, /could not connect to 169\.254\.169\.254:80 \((TimeoutError|timed out|Operation not permitted)\)/);
        assert.match(hostile, /could not read the secrets \(Permission denied\)/);
        assert.ok(!out.includes(jwt), "the JWT secret reached the output");
    } finally {
        index.close();
        fs.rmSync(work, { recursive: true, force: true });
        await stack.setConfig({ app: { sourceDir: appRel, requirements: WITH_SIX }, releases: {} });
    }
    // Nothing of it on the host; the live release untouched and answering; no half-built release left.
    assert.equal(vmRun(vm, `for t in ${targets.join(" ")} /etc/amarktai-hostile-build; do [ -e "$t" ] && echo "$t"; done; true`, { root: true }).trim(), "");
    assert.equal(health(), "200");
    assert.equal(current(), live);
    assert.equal(vmRun(vm, `cd ${RELEASES}/${live} && find venv -printf '%p %s %T@\\n' | sort | sha256sum`), liveVenv, "the live venv changed");
    assert.equal(vmRun(vm, `ls -a ${RELEASES} | grep -c '^\\.\\?[0-9a-f]\\{16\\}' || true`).trim(), String(releasesOnDisk().length), "a failed build left a directory behind");
    // The build ran as its throwaway account, which is gone, and no file is left to its uid.
    assert.match(vmRun(vm, `journalctl -q --no-pager -o cat --since '${since}' | grep -m 1 'sandboxed, as amarktai-build-' || true`, { root: true }), /amarktai-infra: resolve requirements [0-9a-f]{16} \(sandboxed, as amarktai-build-[0-9a-f]{12}\)/);
    assert.equal(vmRun(vm, "getent passwd | grep '^amarktai-build' || true", { root: true }).trim(), "", "a build account is left");
    assert.equal(vmRun(vm, "find /var/amarktai /var/lib/amarktai-infra /etc /tmp /var/tmp -xdev -nouser -print -quit 2>/dev/null || true", { root: true }).trim(), "", "a file is owned by a deleted account");
});

test("a built release's venv belongs to root, with nothing writable by others, and its build account is gone", { timeout: 5 * MINUTE }, async () => {
    const live = current();
    const foreign = vmRun(vm, `find ${RELEASES}/${live}/venv \\( ! -user root -o ! -group root -o -perm /022 \\) ! -type l -printf '%u:%g %m %p\\n' | head -n 5`, { root: true }).trim();
    assert.equal(foreign, "", "entries of the venv that are not root's or are writable by others");
    assert.equal(vmRun(vm, "getent passwd | grep '^amarktai-build' || true; getent group | grep '^amarktai-build' || true", { root: true }).trim(), "", "a build account or group is left");
});
