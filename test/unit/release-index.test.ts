/**
 * Package indexes and the pinned uv in a release build: the flags given to
 * uv and pip, the release id, the reachability check run for real in bash,
 * how an installer's failure is reported, and the shared uv placement.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { PRELUDE, buildReleaseScript, installUvScript, installerLines, leadWithScriptError, packageIndexLines, uvPinLines, uvPlaceLines, uvProbeScript } from "../../components/host";
import { ReleaseSpec, uvWheelUrl, UV_WHEELS } from "../../components/model";
import { planRelease } from "../../components/plan";
import { RemoteCommandError } from "../../components/transport";
import { testConfig } from "../support/config";
import { closedPort, listeningOn as listening } from "../support/net";

const SPEC: ReleaseSpec = { id: "0123456789abcdef", releasesDir: "/var/amarktai/releases", venvLink: "/var/amarktai/venv", keep: 3, installer: "uv", requireHashes: false };
const ALL_SET: ReleaseSpec = {
    ...SPEC,
    indexUrl: "https://pypi.example.com/simple",
    extraIndexUrls: ["https://extra.example.com/simple", "http://10.0.0.5:8080/simple"],
    trustedHosts: ["10.0.0.5:8080"],
    uvSource: "deployer",
    uvMirror: "https://nexus.example.com/repository/pypi-files/",
};

/** Runs `lines` with bash and returns its exit code, output and wall time. */
function bash(lines: readonly string[], options: { input?: string | Buffer; timeoutMs?: number } = {}) {
    const started = Date.now();
    const r = spawnSync("bash", ["-c", lines.join("\n") + "\n"], { input: options.input, encoding: "utf8", timeout: options.timeoutMs ?? 60_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, seconds: (Date.now() - started) / 1000 };
}

/** The elements of a bash array assignment in `script`, as bash reads them back. */
function arrayOf(script: string, name: string): string[] {
    const line = script.split("\n").find((l) => l.startsWith(`${name}=(`));
    assert.ok(line, `${name} is not assigned`);
    const r = bash([line, `for v in "\${${name}[@]}"; do printf '%s\\n' "$v"; done`]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.split("\n").slice(0, -1);
}

/** Waits until `condition` holds (up to 10 s). */
async function until(condition: () => boolean, message: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!condition()) {
        if (Date.now() > deadline) assert.fail(message);
        await new Promise((r) => setTimeout(r, 50));
    }
}

/** A requirements file with the given text, in a temporary directory removed after the test. */
function requirementsFile(t: { after: (fn: () => void) => void }, text: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-index-"));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, "requirements.txt"), text);
    return path.join(dir, "requirements.txt");
}

/** Runs the build's index check against `spec`'s indexes. */
function checkIndexes(spec: Partial<ReleaseSpec>, requirements: string) {
    return bash([...PRELUDE, ...packageIndexLines(spec), `check_package_indexes '${requirements}'`, "echo reachable"]);
}

test("with no index settings, uv and pip get no index flags and the check asks PyPI", () => {
    const script = buildReleaseScript(SPEC, "0".repeat(64));
    assert.deepEqual(arrayOf(script, "UV_INDEX_ARGS"), []);
    assert.deepEqual(arrayOf(script, "PIP_INDEX_ARGS"), []);
    assert.deepEqual(arrayOf(script, "INDEX_URLS"), ["https://pypi.org/simple"]);
    assert.doesNotMatch(script, /--index-url|--extra-index-url|--trusted-host|--allow-insecure-host/);
});

test("index settings reach uv and pip as quoted array elements, each flag only when its setting is set", () => {
    const script = buildReleaseScript(ALL_SET, "0".repeat(64));
    assert.deepEqual(arrayOf(script, "UV_INDEX_ARGS"), [
        "--index-url", "https://pypi.example.com/simple",
        "--extra-index-url", "https://extra.example.com/simple",
        "--extra-index-url", "http://10.0.0.5:8080/simple",
        "--allow-insecure-host", "10.0.0.5:8080",
    ]);
    assert.deepEqual(arrayOf(script, "PIP_INDEX_ARGS"), [
        "--index-url", "https://pypi.example.com/simple",
        "--extra-index-url", "https://extra.example.com/simple",
        "--extra-index-url", "http://10.0.0.5:8080/simple",
        "--trusted-host", "10.0.0.5:8080",
    ]);
    assert.match(script, /"\$uv" pip install .*"\$\{UV_INDEX_ARGS\[@\]\}"/);
    assert.match(script, /"\$REL\/venv\/bin\/pip" install .*"\$\{PIP_INDEX_ARGS\[@\]\}"/);
    const onlyExtra = buildReleaseScript({ ...SPEC, extraIndexUrls: ["https://extra.example.com/simple"] }, "0".repeat(64));
    assert.deepEqual(arrayOf(onlyExtra, "UV_INDEX_ARGS"), ["--extra-index-url", "https://extra.example.com/simple"]);
    assert.deepEqual(arrayOf(onlyExtra, "INDEX_URLS"), ["https://pypi.org/simple", "https://extra.example.com/simple"]);
});

test("a hostile index value stays one literal argument", () => {
    const evil = "https://x.example/simple'$(touch /tmp/amarktai-pwned)' --no-deps";
    const script = buildReleaseScript({ ...SPEC, indexUrl: evil }, "0".repeat(64));
    assert.deepEqual(arrayOf(script, "UV_INDEX_ARGS"), ["--index-url", evil]);
    assert.equal(fs.existsSync("/tmp/amarktai-pwned"), false);
});

test("the uv wheel comes from uvMirror when set: the same path below the mirror, the same pinned SHA-256", () => {
    const wheel = UV_WHEELS.x86_64!;
    const mirrored = uvWheelUrl(wheel, "https://nexus.example.com/repository/pypi-files/");
    assert.equal(mirrored, `https://nexus.example.com/repository/pypi-files${new URL(wheel.url).pathname}`);
    const script = buildReleaseScript(ALL_SET, "0".repeat(64));
    assert.ok(script.includes(`x86_64) UV_URL='${mirrored}'; UV_SUM='${wheel.sha256}' ;;`), "the mirrored URL with the pinned checksum");
    assert.ok(!script.includes(wheel.url), "the host is never sent PyPI's URL when a mirror is set");
    assert.ok(buildReleaseScript(SPEC, "0".repeat(64)).includes(`x86_64) UV_URL='${wheel.url}'; UV_SUM='${wheel.sha256}' ;;`));
});

for (const [name, script] of [
    ["release build with every index setting", buildReleaseScript(ALL_SET, "0".repeat(64))],
    ["uv probe", uvProbeScript()],
    ["uv install from the deployer", installUvScript("x86_64")],
] as const) {
    test(`the ${name} script parses with bash -n and passes shellcheck`, () => {
        assert.match(script, /^set -euo pipefail$/m);
        const parsed = spawnSync("bash", ["-n"], { input: script, encoding: "utf8" });
        assert.equal(parsed.status, 0, parsed.stderr);
        const checked = spawnSync("shellcheck", ["--shell=bash", "--severity=warning", "-"], { input: script, encoding: "utf8" });
        assert.notEqual(checked.error?.message.includes("ENOENT"), true, "shellcheck is not installed (scripts/test.sh installs it)");
        assert.equal(checked.status, 0, checked.stdout);
    });
}

test("a release id stays what it was when no index setting is set, and changes with the index URLs only", () => {
    const files = [{ relativePath: "server.py", content: "app = 1\n" }];
    const id = (releases: Record<string, unknown> = {}) => planRelease(testConfig({ app: { sourceDir: "demo-app" }, releases }), files, "/var/amarktai/releases/shared/.env").spec.id;
    // The id this config had before the index settings existed: existing stacks build nothing new.
    assert.equal(id(), "deecd6a9cec9c81f");
    assert.equal(id({ uvSource: "deployer", uvMirror: "https://nexus.example.com/pypi-files", trustedHosts: ["pypi.example.com"] }), id(), "how packages and uv are fetched is not what is installed");
    const withIndex = id({ indexUrl: "https://pypi.example.com/simple" });
    assert.notEqual(withIndex, id(), "another index may resolve other packages");
    assert.notEqual(id({ indexUrl: "https://other.example.com/simple" }), withIndex);
    assert.notEqual(id({ extraIndexUrls: ["https://extra.example.com/simple"] }), id());
    assert.notEqual(id({ extraIndexUrls: ["https://a.example.com/simple", "https://b.example.com/simple"] }), id({ extraIndexUrls: ["https://b.example.com/simple", "https://a.example.com/simple"] }), "index order decides");
});

test("the release spec carries only the settings that are set", () => {
    const spec = (releases: Record<string, unknown> = {}) => planRelease(testConfig({ releases }), [], undefined).spec;
    for (const key of ["indexUrl", "extraIndexUrls", "trustedHosts", "uvSource", "uvMirror"]) assert.equal(key in spec(), false, `${key} is in a default spec`);
    assert.equal("uvSource" in spec({ uvSource: "host" }), false, "host is the default");
    const all = spec({ indexUrl: "https://pypi.example.com/simple", extraIndexUrls: ["https://extra.example.com/simple"], trustedHosts: ["pypi.example.com"], uvSource: "deployer", uvMirror: "https://nexus.example.com/pypi-files" });
    assert.deepEqual(
        { indexUrl: all.indexUrl, extraIndexUrls: all.extraIndexUrls, trustedHosts: all.trustedHosts, uvSource: all.uvSource, uvMirror: all.uvMirror },
        { indexUrl: "https://pypi.example.com/simple", extraIndexUrls: ["https://extra.example.com/simple"], trustedHosts: ["pypi.example.com"], uvSource: "deployer", uvMirror: "https://nexus.example.com/pypi-files" },
    );
});

test("an index on a closed loopback port fails the check within seconds, naming the index and what to set", async (t) => {
    const port = await closedPort();
    const url = `http://127.0.0.1:${port}/simple`;
    const r = checkIndexes({ indexUrl: url }, requirementsFile(t, "uvicorn==0.38.0\n"));
    assert.equal(r.code, 1, r.stdout);
    assert.equal(r.stdout, "");
    assert.equal(
        r.stderr.trim(),
        `[amarktai-infra] error: cannot reach the package index ${url} from this host (Connection refused): set releases.indexUrl to an index this host can reach (and releases.uvSource: deployer if it cannot reach PyPI's files either)`,
    );
    assert.ok(r.seconds < 15, `took ${r.seconds}s`);
});

test("an index that answers passes the check, even with 404 for the project; an unreachable extra index fails it", async (t) => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-index-root-"));
    t.after(() => fs.rmSync(root, { recursive: true, force: true }));
    const port = await closedPort();
    const server: ChildProcess = spawn("python3", ["-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", root], { stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    server.stderr!.on("data", (d: Buffer) => (log += d.toString()));
    t.after(() => server.kill());
    await listening(port);
    const requirements = requirementsFile(t, "# pinned\n--require-hashes\nUvicorn_Standard.Extra[all]==1.0 ; python_version >= '3.8'\n");
    const ok = checkIndexes({ indexUrl: `http://127.0.0.1:${port}/simple` }, requirements);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), "reachable");
    // The server logs each request after answering it: wait for the line.
    await until(() => /"GET \/simple\/uvicorn-standard-extra\/ HTTP\/1\.1" 404/.test(log), `the first requirement's normalized project page was not asked for:\n${log}`);
    const closed = await closedPort();
    const extra = checkIndexes({ indexUrl: `http://127.0.0.1:${port}/simple`, extraIndexUrls: [`http://127.0.0.1:${closed}/extra`] }, requirements);
    assert.equal(extra.code, 1);
    assert.match(extra.stderr, new RegExp(`cannot reach the package index http://127\\.0\\.0\\.1:${closed}/extra from this host \\(Connection refused\\): remove it from releases\\.extraIndexUrls`));
});

test("an index that accepts connections but never answers fails the check after its short timeout", async (t) => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    t.after(() => {
        sockets.forEach((s) => s.destroy());
        silent.close();
    });
    const url = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}/simple`;
    const started = Date.now();
    // The check runs in its own process: this one must stay free to accept the connection.
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn("bash", ["-c", [...PRELUDE, ...packageIndexLines({ indexUrl: url }), "check_package_indexes /nonexistent/requirements.txt"].join("\n")], { stdio: ["ignore", "ignore", "pipe"] });
        let stderr = "";
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        child.on("close", (code) => resolve({ code, stderr }));
    });
    const seconds = (Date.now() - started) / 1000;
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`cannot reach the package index ${url.replace(/\./g, "\\.")} from this host \\(no answer within 10 s\\)`));
    assert.ok(seconds >= 9 && seconds < 30, `took ${seconds}s`);
});

/** Runs a fake installer printing `output` and exiting 1 through run_installer; returns the script's stderr. */
function failedInstall(t: { after: (fn: () => void) => void }, output: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-installer-"));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, "output"), output);
    const r = bash([...PRELUDE, ...installerLines(), `INSTALL_LOG='${dir}/log'`, `run_installer "uv pip install" sh -c 'cat "$1"; exit 2' sh '${dir}/output'`, "echo not reached"]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    return r.stderr;
}

const TRACEBACK = [
    "Traceback (most recent call last):",
    ...Array.from({ length: 55 }, (_, i) => `  File "/usr/lib/python3/dist-packages/pip/_internal/x${i}.py", line ${i}, in f${i}\n    call()`),
    "urllib3.exceptions.NewConnectionError: <urllib3.connection.HTTPSConnection object>: Failed to establish a new connection: [Errno 101] Network is unreachable",
    "",
].join("\n");

test("an installer's traceback is reported by its last line, first in the error, then the output's tail", (t) => {
    const stderr = failedInstall(t, `ERROR: Exception:\n${TRACEBACK}`);
    const lines = stderr.trim().split("\n");
    const actionable = "uv pip install failed (exit 2): urllib3.exceptions.NewConnectionError: <urllib3.connection.HTTPSConnection object>: Failed to establish a new connection: [Errno 101] Network is unreachable";
    assert.equal(lines[lines.length - 1], `[amarktai-infra] error: ${actionable}`);
    assert.ok(lines.length <= 45, `the script's error output is ${lines.length} lines`);
    // What the provider reports: the failed command's message, led by the script's error line.
    const error = new RemoteCommandError("building release 0123456789abcdef", "ubuntu@203.0.113.10:22", { code: 1, stdout: "[amarktai-infra] checking\n", stderr });
    const message = leadWithScriptError(error.message, error.result.stderr).split("\n");
    assert.equal(message[0], actionable);
    assert.equal(message[1], "building release 0123456789abcdef failed on ubuntu@203.0.113.10:22 (exit 1):");
    assert.equal(message[2], "--- the last lines of uv pip install ---");
    assert.equal(message.filter((l) => l.includes(actionable)).length, 1, "the error line is not repeated");
});

test("uv's error with its causes, and pip's last ERROR line, become the error line", (t) => {
    const uvResolve = "  × No solution found when resolving dependencies:\n  ╰─▶ Because amarktai-no-such-package was not found in the package registry and you require amarktai-no-such-package==1.0, we can conclude that your requirements are unsatisfiable.\n";
    assert.match(failedInstall(t, `warning: something minor\n${uvResolve}`), /\[amarktai-infra\] error: uv pip install failed \(exit 2\): No solution found when resolving dependencies: Because amarktai-no-such-package was not found in the package registry and you require amarktai-no-such-package==1\.0, we can conclude that your requirements are unsatisfiable\.\n$/);
    const uvFetch = "error: Failed to fetch: `http://127.0.0.1:9/simple/uvicorn/`\n  Caused by: Request failed after 3 retries\n  Caused by: tcp connect error: Connection refused (os error 111)\nhint: check the index\n";
    assert.match(failedInstall(t, uvFetch), /error: uv pip install failed \(exit 2\): Failed to fetch: `http:\/\/127\.0\.0\.1:9\/simple\/uvicorn\/` Caused by: Request failed after 3 retries Caused by: tcp connect error: Connection refused \(os error 111\)\n$/);
    const pip = "WARNING: Retrying (Retry(total=4)) after connection broken\nERROR: Could not find a version that satisfies the requirement nope==1.0 (from versions: none)\nERROR: No matching distribution found for nope==1.0\n";
    assert.match(failedInstall(t, pip), /error: uv pip install failed \(exit 2\): No matching distribution found for nope==1\.0\n$/);
});

test("a message without a script error line is left as it is", () => {
    assert.equal(leadWithScriptError("x failed on h (exit 1):\nboom", "boom\n"), "x failed on h (exit 1):\nboom");
});

test("uv_place installs the uv of a wheel on stdin, checked by its SHA-256, into a root-owned directory, and refuses a linked one", (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-uv-"));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const wheel = path.join(dir, "uv.whl");
    const made = spawnSync("python3", ["-c", "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z:\n    z.writestr('uv-0.9.5.data/scripts/uv', '#!/bin/sh\\necho fake uv\\n')", wheel], { encoding: "utf8" });
    assert.equal(made.status, 0, made.stderr);
    const sha = spawnSync("sha256sum", [wheel], { encoding: "utf8" }).stdout.split(" ")[0]!;
    // The shared placement, with the tools directory and the pin swapped for the test's.
    const place = (tools: string, sum: string) => bash([...PRELUDE, "umask 022", ...uvPinLines(), ...uvPlaceLines(), `TOOLS='${tools}'`, `UV_SUM='${sum}'`, 'UV_DIR="$TOOLS/uv-test"', 'uv_place - "sent by the deployer" || fail "$uv_problem"', 'uv_present && echo present'], { input: fs.readFileSync(wheel) });
    fs.mkdirSync(path.join(dir, "state"));
    const good = place(path.join(dir, "state", "tools"), sha);
    assert.equal(good.code, 0, good.stderr);
    assert.equal(good.stdout.trim(), "present");
    assert.equal(spawnSync(path.join(dir, "state", "tools", "uv-test", "uv"), { encoding: "utf8" }).stdout, "fake uv\n");
    assert.equal(fs.readFileSync(path.join(dir, "state", "tools", "uv-test", "origin"), "utf8"), "sent by the deployer\n");
    const st = fs.statSync(path.join(dir, "state", "tools", "uv-test", "uv"));
    assert.deepEqual([st.uid, st.mode & 0o777], [0, 0o755], "root's, everyone may run it");

    const bad = place(path.join(dir, "state", "tools2"), "0".repeat(64));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /uv wheel checksum mismatch: got [0-9a-f]{64}, pinned 0{64}/);
    assert.deepEqual(fs.readdirSync(path.join(dir, "state", "tools2")), [".lock"], "nothing left behind but the placements' lock");

    fs.mkdirSync(path.join(dir, "elsewhere"));
    fs.symlinkSync(path.join(dir, "elsewhere"), path.join(dir, "state", "linked"));
    const linked = place(path.join(dir, "state", "linked"), sha);
    assert.equal(linked.code, 1);
    assert.match(linked.stderr, /linked must be a directory owned by root \(not a link\) to hold the pinned uv/);
    assert.deepEqual(fs.readdirSync(path.join(dir, "elsewhere")), []);
});

test("a uv placement waits for another one on the same host and keeps the uv it placed, never deleting a binary in use", async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-uv-lock-"));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const wheel = path.join(dir, "uv.whl");
    const made = spawnSync("python3", ["-c", "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z:\n    z.writestr('uv-0.9.5.data/scripts/uv', '#!/bin/sh\\necho second uv\\n')", wheel], { encoding: "utf8" });
    assert.equal(made.status, 0, made.stderr);
    const sha = spawnSync("sha256sum", [wheel], { encoding: "utf8" }).stdout.split(" ")[0]!;
    const tools = path.join(dir, "state", "tools");
    fs.mkdirSync(tools, { recursive: true });
    // Another build holds the placement lock until the test lets it go.
    const release = path.join(dir, "release");
    spawnSync("mkfifo", [release]);
    const holder = spawn("bash", ["-c", 'exec 8>"$1/.lock"; flock 8; echo locked; read -r _ < "$2"', "hold", tools, release], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve) => holder.stdout!.once("data", () => resolve()));
    const second = spawn("bash", ["-c", [...PRELUDE, "umask 022", ...uvPinLines(), ...uvPlaceLines(), `TOOLS='${tools}'`, `UV_SUM='${sha}'`, 'UV_DIR="$TOOLS/uv-test"', 'uv_place - "second" || fail "$uv_problem"', 'echo placed'].join("\n") + "\n"], { stdio: ["pipe", "pipe", "pipe"] });
    second.stdin!.end(fs.readFileSync(wheel));
    let out = "";
    second.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    const secondDone = new Promise<number | null>((resolve) => second.on("close", resolve));
    // Meanwhile the holder places its uv, which a build is now running.
    const first = path.join(tools, "uv-test");
    fs.mkdirSync(first, { mode: 0o755 });
    fs.writeFileSync(path.join(first, "uv"), "#!/bin/sh\necho first uv\n", { mode: 0o755 });
    fs.writeFileSync(path.join(first, "origin"), "first\n");
    const inode = fs.statSync(path.join(first, "uv")).ino;
    assert.equal(out, "", "the second placement waits for the lock");
    fs.writeFileSync(release, "go\n");
    assert.equal(await secondDone, 0);
    assert.equal(out, "placed\n");
    assert.equal(fs.statSync(path.join(first, "uv")).ino, inode, "the uv in use was kept, not replaced");
    assert.equal(fs.readFileSync(path.join(first, "origin"), "utf8"), "first\n");
    assert.deepEqual(fs.readdirSync(tools).sort(), [".lock", "uv-test"], "no temporary directory left");
});
