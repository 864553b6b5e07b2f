/**
 * Every apt-get call in every generated script goes through the one apt
 * generator and waits for dpkg's and apt's locks (timeouts.aptLockSec). The
 * waits are also run for real, as root on this machine: apt-get install under
 * a held dpkg lock, apt-get update under a held lists lock (in a scratch apt
 * state, so this machine's package lists stay as they are).
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { ChildProcessWithoutNullStreams, execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { PRELUDE, activationScript, aptGetLines, buildReleaseScript, detachedScript, installUvScript, prepareScript, readEnvValueScript, readHostScript, removalScript, stageFileScript, unstageFileScript, uvProbeScript } from "../../components/host";
import { MANAGED_MARKER } from "../../components/model";
import { planService } from "../../components/plan";
import { testConfig } from "../support/config";
import { StubHost } from "../support/host-stubs";

/** A lock bound no default has, to find in the scripts. */
const WAITS = { connectSec: 600, bootSec: 900, aptLockSec: 321, stepSec: 1800 };
const plan = planService(testConfig({ app: { sourceDir: "demo-app" }, releases: { installer: "pip" } }), [{ relativePath: "server.py", content: "app = None\n" }]);
const files = plan.files.map((f) => f.file);
const activation = { serviceName: "amarktai-api", unitName: "amarktai-api.service", files, removed: [], marker: MANAGED_MARKER, links: plan.links, account: { user: "amarktai", group: "amarktai" }, healthUrl: "http://127.0.0.1:8000/health", healthTimeoutSec: 60 };

/** Every script generator's output (the detached ones also wrapped), with the lock bound above. */
const GENERATED: [string, string][] = [
    ["prepare", prepareScript(plan.prepare, WAITS)],
    ["release build", buildReleaseScript(plan.release.spec, "0".repeat(64), WAITS)],
    ["activation", activationScript({ ...activation, release: plan.release.spec })],
    ["removal", removalScript({ serviceName: "amarktai-api", unitName: "amarktai-api.service", files, marker: MANAGED_MARKER, purge: { paths: [], envLink: "/var/amarktai/app/backend/.env", user: "amarktai", group: "amarktai" } })],
    ["stage", stageFileScript("amarktai-api", files[0]!)],
    ["unstage", unstageFileScript("amarktai-api", files[0]!)],
    ["read env value", readEnvValueScript(["/etc/amarktai-infra/amarktai-api/env"], "JWT_SECRET")],
    ["read", readHostScript({ serviceName: "amarktai-api", unitName: "amarktai-api.service", files: files.map((f) => ({ path: f.path, secret: false })), marker: MANAGED_MARKER, directories: ["/var/amarktai/logs"], releases: [{ releasesDir: "/var/amarktai/releases", id: plan.release.spec.id }] })],
    ["uv probe", uvProbeScript()],
    ["uv install", installUvScript("x86_64")],
];
const ALL: [string, string][] = [...GENERATED, ...GENERATED.map(([name, s]): [string, string] => [`detached ${name}`, detachedScript(name, s)])];

test("every apt-get in every generated script waits for dpkg's lock, and each apt call goes through the generator with the configured bound", () => {
    let calls = 0;
    const callers: string[] = [];
    for (const [name, script] of ALL) {
        for (const m of script.matchAll(/apt-get\b.{0,40}/g)) {
            assert.match(m[0], /^apt-get -o DPkg::Lock::Timeout="\$lock_wait" /, `${name}: ${m[0]}`);
        }
        assert.doesNotMatch(script, /(^|[\s;&|(])(apt|aptitude|dpkg) (install|update|upgrade|-i)\b/m, `${name} calls a package tool outside the generator`);
        const callLines = script.split("\n").filter((l) => /^\s*apt_get (update|install)\b/.test(l));
        calls += callLines.length;
        // A script without an apt call has nothing more to check; each one with calls is checked below.
        if (callLines.length > 0) callers.push(name);
    }
    assert.ok(calls >= 4, "prepare and the release build install with apt");
    assert.ok(callers.length >= 2, `scripts calling apt: ${callers.join(", ")}`);
    for (const [name, script] of ALL.filter(([n]) => callers.includes(n))) {
        const firstCall = script.split("\n").find((l) => /^\s*apt_get (update|install)\b/.test(l))!;
        // (Inside a detached script the inner script is one quoted word: its quotes are escaped.)
        assert.match(script, /^\s*APT_LOCK_SEC=('|'\\'')321\1$/m, `${name} waits for the configured aptLockSec`);
        assert.ok(script.indexOf("apt_get() {") < script.indexOf(firstCall), `${name} defines apt_get before calling it`);
    }
});

test("the apt generator writes update and install calls, and refuses what is not a package name or a bound", () => {
    const lines = aptGetLines([{ op: "update" }, { op: "install", packages: ["python3", "python3-venv"] }], 60);
    assert.equal(lines[0], "APT_LOCK_SEC='60'");
    assert.deepEqual(lines.slice(-2), ["apt_get update -q", "apt_get install -y -q --no-install-recommends 'python3' 'python3-venv'"]);
    assert.throws(() => aptGetLines([{ op: "install", packages: ["python3; reboot"] }], 60), /not a Debian package name/);
    assert.throws(() => aptGetLines([{ op: "install", packages: [] }], 60), /at least one package/);
    assert.throws(() => aptGetLines([{ op: "update" }], -1), /aptLockSec/);
});

test("a failing apt call that is not about a lock fails at once with apt's message", async () => {
    const host = new StubHost();
    try {
        host.command("apt-get", 'echo "E: Unable to locate package nosuch" >&2; exit 100');
        const r = await host.run([...PRELUDE, ...aptGetLines([{ op: "install", packages: ["nosuch"] }], 600)].join("\n"));
        assert.equal(r.code, 100);
        assert.match(r.stderr, /Unable to locate package nosuch/);
        assert.equal(r.calls.length, 1);
    } finally {
        host.done();
    }
});

test("a lock still held at the bound fails naming timeouts.aptLockSec and the holder", async () => {
    const host = new StubHost();
    try {
        host.command("apt-get", 'echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)" >&2; exit 100');
        const r = await host.run([...PRELUDE, ...aptGetLines([{ op: "update" }], 0)].join("\n"));
        assert.equal(r.code, 1);
        assert.match(r.stderr, /apt update: apt's lock is still held after 0s \(timeouts\.aptLockSec\): Could not get lock \/var\/lib\/apt\/lists\/lock\. It is held by process 4242 \(apt-get\)/);
    } finally {
        host.done();
    }
});

/** Holds an fcntl write lock on `file` (as apt and dpkg take theirs) for `seconds` in a child process; resolves once it is held. */
async function holdLock(file: string, seconds: number): Promise<{ child: ChildProcessWithoutNullStreams; released: Promise<number> }> {
    const py = [
        "import fcntl, os, sys, time",
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o640)",
        "fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)",
        "print('held', flush=True)",
        "time.sleep(float(sys.argv[2]))",
        "released = time.time()",
        "fcntl.lockf(fd, fcntl.LOCK_UN)",
        "print('released %f' % released, flush=True)",
    ].join("\n");
    const child = spawn("python3", ["-c", py, file, String(seconds)]);
    let out = "";
    const released = new Promise<number>((resolve, reject) => {
        child.on("close", (code) => {
            const m = /released ([0-9.]+)/.exec(out);
            if (code === 0 && m) resolve(Number(m[1]) * 1000);
            else reject(new Error(`the lock holder failed (${code}): ${out}`));
        });
    });
    await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => {
            out += d.toString();
            if (out.includes("held")) resolve();
        });
        child.stderr.on("data", (d: Buffer) => reject(new Error(`could not take the lock on ${file}: ${d.toString()}`)));
        child.on("error", reject);
    });
    return { child, released };
}

/** An installed package whose installed version is apt's candidate: installing it again changes nothing. */
function installedAtCandidate(): string {
    for (const p of ["bash", "coreutils", "dpkg", "base-files", "libc-bin"]) {
        const policy = execFileSync("apt-cache", ["policy", p], { encoding: "utf8", env: { ...process.env, LC_ALL: "C" } });
        const installed = /Installed: (\S+)/.exec(policy)?.[1];
        if (installed && installed !== "(none)" && policy.includes(`Candidate: ${installed}`)) return p;
    }
    assert.fail("no installed package is at its candidate version here");
}

test("apt-get install waits while dpkg's lock is held, says so, and succeeds once it is released (real apt, as root)", async () => {
    assert.equal(process.getuid?.(), 0, "needs root: it takes dpkg's lock");
    const pkg = installedAtCandidate();
    const lock = await holdLock("/var/lib/dpkg/lock-frontend", 3);
    const started = Date.now();
    const host = new StubHost();
    try {
        const r = await host.run([...PRELUDE, ...aptGetLines([{ op: "install", packages: [pkg] }], 120)].join("\n"));
        const released = await lock.released;
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /waiting for dpkg's lock, up to \d+s \(timeouts\.aptLockSec\): Could not get lock \/var\/lib\/dpkg\/lock-frontend\. It is held by process \d+ \(python3\)/);
        assert.match(r.stdout, /got dpkg's lock after \d+s/);
        assert.ok(started + r.ms >= released, `apt finished (${started + r.ms}) only after the lock was released (${released})`);
        process.stderr.write(`    apt install under dpkg's lock: lock released after ${released - started} ms, apt done after ${r.ms} ms\n`);
    } finally {
        lock.child.kill();
        host.done();
    }
});

test("apt-get update waits while the package lists' lock is held, which DPkg::Lock::Timeout alone does not do (real apt, as root)", async () => {
    assert.equal(process.getuid?.(), 0, "needs root: apt-get update takes its locks as root");
    const host = new StubHost();
    try {
        // A scratch apt state: no sources, lists and caches inside the scratch directory.
        for (const d of ["parts", "lists/partial", "cache/archives/partial"]) fs.mkdirSync(path.join(host.dir, "apt", d), { recursive: true });
        const config = host.file("apt/apt.conf", ["SourceList \"/dev/null\"", `SourceParts "${host.dir}/apt/parts"`].map((l) => `Dir::Etc::${l};`).concat([`Dir::State::Lists "${host.dir}/apt/lists";`, `Dir::Cache "${host.dir}/apt/cache";`]).join("\n") + "\n");
        const env = `export APT_CONFIG=${JSON.stringify(config)}\n`;
        const listsLock = path.join(host.dir, "apt", "lists", "lock");
        // What apt does by itself: fails at once, even with a dpkg lock timeout.
        let lock = await holdLock(listsLock, 3);
        const plain = await host.run(`${env}apt-get -o DPkg::Lock::Timeout=60 update -q`);
        assert.equal(plain.code, 100);
        assert.match(plain.stderr, /Could not get lock .*lists\/lock/);
        assert.ok(plain.ms < 2500, `apt-get update failed at once (${plain.ms} ms)`);
        await lock.released;
        // The generated call waits.
        lock = await holdLock(listsLock, 3);
        const started = Date.now();
        const r = await host.run(env + [...PRELUDE, ...aptGetLines([{ op: "update" }], 120)].join("\n"));
        const released = await lock.released;
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /waiting for apt's lock, up to \d+s \(timeouts\.aptLockSec\): Could not get lock .*lists\/lock\. It is held by process \d+ \(python3\)/);
        assert.ok(started + r.ms >= released, `apt finished (${started + r.ms}) only after the lock was released (${released})`);
    } finally {
        host.done();
    }
});
