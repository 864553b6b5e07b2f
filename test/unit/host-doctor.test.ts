/**
 * The `doctor` script, run for real in bash on this machine against a
 * scratch service tree (its `.env` link and store, venv, app, releases),
 * with stand-ins for `systemctl`, `journalctl`, `df` and `systemd-run`
 * (which runs the import in place). The port check reads this machine's
 * real /proc, with real listening sockets.
 */
import { test, TestContext } from "node:test";
import * as assert from "node:assert/strict";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { DOCTOR_CHECK_IDS, DoctorCheck, DoctorCheckId, doctorScript, doctorVerdict, parseDoctorOutput } from "../../components/host";
import { OperatedService } from "../../components/model";
import { planOperatedService } from "../../components/plan";
import { StubHost, StubbedRun } from "../support/host-stubs";
import { testConfig } from "../support/config";
import { closedPort as freePort, listeningOn } from "../support/net";
import { cgroupRoot } from "../support/cgroup";

const SECRET = "jwt-s3cret-value-7781";
const UNIT = "amarktai-api.service";
/** The interpreter itself (not a version manager's shim), so /proc shows it and the venv can link to it. */
const REAL_PYTHON = spawnSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).stdout.trim();
/** 20 GiB with 12.3 GiB free: `/: 12.3 GiB free (61 %)`. */
const ROOMY_DF = `${20 * 2 ** 30} ${Math.round(12.3 * 2 ** 30)}`;

type UnitState = Partial<Record<"LoadState" | "ActiveState" | "SubState" | "NRestarts" | "UnitFileState" | "ControlGroup", string>>;
const RUNNING: UnitState = { LoadState: "loaded", ActiveState: "active", SubState: "running", NRestarts: "0", UnitFileState: "enabled" };
const FAILED: UnitState = { LoadState: "loaded", ActiveState: "failed", SubState: "failed", NRestarts: "0", UnitFileState: "enabled", ControlGroup: "" };

/** What one run of the doctor printed, parsed. */
interface Diagnosis {
    readonly run: StubbedRun;
    readonly checks: DoctorCheck[];
    readonly by: Record<DoctorCheckId, DoctorCheck>;
}

/** A host in a scratch directory: the service's files under `srv`, its units and journal in stand-ins. */
class DoctorHost {
    readonly stub = new StubHost();
    readonly srv: string;
    readonly service: OperatedService;

    constructor(srvName = "srv") {
        this.srv = path.join(this.stub.dir, srvName);
        const app = path.join(this.srv, "app");
        const store = path.join(this.srv, "etc", "env");
        const venvPython = path.join(this.srv, "venv", "bin", "python");
        for (const dir of [app, path.dirname(store), path.dirname(venvPython), path.join(this.srv, "releases")]) fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(path.join(app, "server.py"), "app = object()\n");
        // The venv's uvicorn (the unit runs `python -m uvicorn`): a stand-in module on the import path.
        fs.writeFileSync(path.join(app, "uvicorn.py"), "");
        fs.writeFileSync(store, `JWT_SECRET=${SECRET}\nLOG_LEVEL=debug\n`);
        fs.chmodSync(store, 0o640);
        fs.symlinkSync(store, path.join(app, ".env"));
        fs.symlinkSync(REAL_PYTHON, venvPython);
        this.service = {
            ...planOperatedService(testConfig()),
            user: "root",
            group: "root",
            envLink: path.join(app, ".env"),
            envStore: store,
            venvPython,
            workingDirectory: app,
            releasesDir: path.join(this.srv, "releases"),
            dependencies: { after: ["network.target", "mongodb.service"], requires: [], wants: [] },
        };
        const units = path.join(this.stub.dir, "units");
        fs.mkdirSync(units);
        this.unit(UNIT, FAILED).unit("mongodb.service", RUNNING).journal("").df(ROOMY_DF);
        this.stub
            .command(
                "systemctl",
                [
                    `units=${JSON.stringify(units)}`,
                    'get() { [ -f "$units/$1" ] && sed -n "s/^$2=//p" "$units/$1" | head -n 1; }',
                    'case "$1" in',
                    "  show)",
                    '    shift; props=""; value=""; names=()',
                    '    while [ $# -gt 0 ]; do case "$1" in -p) props="$2"; shift 2 ;; --value) value=1; shift ;; *) names+=("$1"); shift ;; esac; done',
                    '    IFS=, read -ra wanted <<< "$props"',
                    '    for n in "${names[@]}"; do for p in "${wanted[@]}"; do',
                    '      v=$(get "$n" "$p" || true)',
                    '      if [ ! -f "$units/$n" ]; then case "$p" in LoadState) v=not-found ;; ActiveState) v=inactive ;; SubState) v=dead ;; NRestarts) v=0 ;; esac; fi',
                    "      if [ -n \"$value\" ]; then printf '%s\\n' \"$v\"; else printf '%s=%s\\n' \"$p\" \"$v\"; fi",
                    "    done; done ;;",
                    "  is-enabled)",
                    '    v=$(get "$2" UnitFileState || true)',
                    '    [ -n "$v" ] || { echo "Failed to get unit file state for $2: No such file or directory" >&2; exit 1; }',
                    '    echo "$v"; [ "$v" = enabled ] ;;',
                    '  *) echo "unexpected: systemctl $*" >&2; exit 1 ;;',
                    "esac",
                ].join("\n"),
            )
            .command("journalctl", `cat ${JSON.stringify(path.join(this.stub.dir, "journal"))}`)
            .command("df", `printf '%s\\n' '1B-blocks Avail Mounted on' "$(cat ${JSON.stringify(path.join(this.stub.dir, "df"))}) \${@: -1}"`)
            // Runs the command in place, in the unit's working directory and, as the manager does, a clean environment
            // (user, group and .env are the manager's business).
            .command(
                "systemd-run",
                [
                    'wd=""',
                    'while [ $# -gt 0 ]; do case "$1" in -p) case "$2" in WorkingDirectory=*) wd="${2#WorkingDirectory=}" ;; esac; shift 2 ;; --) shift; break ;; -*) shift ;; *) break ;; esac; done',
                    'cd "$wd" || exit 200',
                    'exec env -i PATH=/usr/bin:/bin "$@"',
                ].join("\n"),
            );
        // The interpreter itself first on PATH: a version manager's shim would only make each python3 slower.
        fs.symlinkSync(REAL_PYTHON, path.join(this.stub.dir, "bin", "python3"));
    }

    /** Sets what `systemctl show` says of `name`; `undefined`: no such unit. */
    unit(name: string, state: UnitState | undefined): this {
        const file = path.join(this.stub.dir, "units", name);
        if (state) fs.writeFileSync(file, Object.entries(state).map(([k, v]) => `${k}=${v}\n`).join(""));
        else fs.rmSync(file, { force: true });
        return this;
    }

    /** What `journalctl` prints. */
    journal(text: string | Buffer): this {
        fs.writeFileSync(path.join(this.stub.dir, "journal"), text);
        return this;
    }

    /** `size avail` in bytes, as `df` reports every path. */
    df(sizeAvail: string): this {
        fs.writeFileSync(path.join(this.stub.dir, "df"), sizeAvail);
        return this;
    }

    /** The app module's source. */
    app(source: string): this {
        fs.writeFileSync(path.join(this.service.workingDirectory, "server.py"), source);
        return this;
    }

    /** Runs the doctor script for the service (with `overrides`) in the scratch directory. */
    async diagnose(overrides: Partial<OperatedService> = {}): Promise<Diagnosis> {
        const run = await this.stub.run(`cd ${JSON.stringify(this.stub.dir)}\n${doctorScript({ ...this.service, ...overrides })}`);
        assert.equal(run.code, 0, run.stderr);
        const checks = parseDoctorOutput(run.stdout);
        assert.deepEqual(checks.map((c) => c.check), [...DOCTOR_CHECK_IDS], run.stdout);
        return { run, checks, by: Object.fromEntries(checks.map((c) => [c.check, c])) as Record<DoctorCheckId, DoctorCheck> };
    }

    done(): void {
        this.stub.done();
    }
}

let groups = 0;

/** The unit's own listener: a process in a control group of its own (the unit's `ControlGroup`), listening on a loopback port. Needs root. */
async function unitListener(t: TestContext): Promise<{ port: number; group: string }> {
    assert.equal(process.getuid?.(), 0, "needs root: it creates a control group and moves a process into it");
    const group = `/amarktai-doctor-test-${process.pid}-${++groups}`;
    const dir = path.join(cgroupRoot(), group);
    fs.mkdirSync(dir);
    const child = spawn(REAL_PYTHON, ["-c", "import socket, sys\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen()\nprint(s.getsockname()[1], flush=True)\nsys.stdin.read()"], { stdio: ["pipe", "pipe", "inherit"] });
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    t.after(async () => {
        child.kill("SIGKILL");
        await exited;
        fs.rmdirSync(dir);
    });
    const port = Number(await new Promise<string>((resolve) => child.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim()))));
    fs.writeFileSync(path.join(dir, "cgroup.procs"), `${child.pid}\n`);
    return { port, group };
}

/** A running, healthy service: the unit active and holding its port. */
async function healthyHost(t: TestContext, srvName?: string): Promise<{ host: DoctorHost; port: number }> {
    const host = new DoctorHost(srvName);
    t.after(() => host.done());
    const { port, group } = await unitListener(t);
    host.unit(UNIT, { ...RUNNING, ControlGroup: group });
    return { host, port };
}

/** A service whose unit failed, on a port nobody holds. */
async function failedHost(t: TestContext, srvName?: string): Promise<{ host: DoctorHost; port: number }> {
    const host = new DoctorHost(srvName);
    t.after(() => host.done());
    return { host, port: await freePort() };
}

test("with the unit active on its own port and every cause absent, the doctor prints the seven checks in order, all ok, and the verdict is healthy", async (t) => {
    const { host, port } = await healthyHost(t);
    const { checks, by } = await host.diagnose({ healthPort: port });
    assert.deepEqual(checks.filter((c) => !c.ok), [], JSON.stringify(checks));
    assert.equal(by.unit.detail, `${UNIT} is active: loaded, active (running), 0 restart(s), enabled`);
    assert.equal(by.env.detail, `${host.service.envLink} -> ${host.service.envStore} (root:root 0640)`);
    assert.equal(by.port.detail, `port ${port} is held by ${UNIT}`);
    assert.equal(by.dependencies.detail, "active: mongodb.service");
    assert.equal(by.python.detail, `uvicorn and server import with ${host.service.venvPython} as root`);
    assert.equal(by.disk.detail, `/: 12.3 GiB free (61 %); ${host.service.releasesDir}: 12.3 GiB free (61 %); /var/log: 12.3 GiB free (61 %)`);
    assert.equal(by.journal.detail, `no error in the journal of ${UNIT}`);
    assert.equal(doctorVerdict(checks), "healthy");
});

test("a missing .env link is named, and the verdict says the service won't start because of it", async (t) => {
    const { host, port } = await failedHost(t);
    fs.rmSync(host.service.envLink);
    const { checks, by } = await host.diagnose({ healthPort: port });
    assert.equal(by.env.ok, false);
    assert.equal(by.env.detail, `${host.service.envLink} is missing`);
    assert.equal(by.unit.ok, false);
    assert.match(by.unit.detail, /^amarktai-api\.service has failed: loaded, failed \(failed\)/);
    assert.equal(doctorVerdict(checks), `won't start: .env file: ${host.service.envLink} is missing`);
});

test("a .env link pointing elsewhere and a store with the wrong mode are each named with their path", async (t) => {
    const { host, port } = await failedHost(t);
    const other = path.join(host.srv, "other-env");
    fs.writeFileSync(other, "A=b\n");
    fs.rmSync(host.service.envLink);
    fs.symlinkSync(other, host.service.envLink);
    fs.chmodSync(host.service.envStore, 0o644);
    const { by } = await host.diagnose({ healthPort: port });
    assert.equal(by.env.ok, false);
    assert.equal(by.env.detail, `${host.service.envLink} points to ${other}, not ${host.service.envStore}; ${host.service.envStore} has mode 0644, not 0640`);
});

test("another process holding the port is named with pid, command line and cgroup, and the verdict says the unit restarts constantly because of it", async (t) => {
    const { host, port } = await failedHost(t);
    host.unit(UNIT, { ...FAILED, ActiveState: "activating", SubState: "auto-restart", NRestarts: "12" });
    const squatter = spawn(REAL_PYTHON, ["-m", "http.server", "--bind", "127.0.0.1", String(port)], { stdio: "ignore" });
    const exited = new Promise<void>((resolve) => squatter.once("exit", () => resolve()));
    t.after(async () => {
        squatter.kill("SIGKILL");
        await exited;
    });
    await listeningOn(port);
    const { checks, by } = await host.diagnose({ healthPort: port });
    assert.equal(by.port.ok, false);
    const holder = `pid ${squatter.pid} \\(\\S*python\\S* -m http\\.server --bind 127\\.0\\.0\\.1 ${port}\\) in /\\S*`;
    assert.match(by.port.detail, new RegExp(`^port ${port} is held by ${holder}, not by amarktai-api\\.service$`));
    assert.equal(by.unit.detail, `${UNIT} is restarting constantly: loaded, activating (auto-restart), 12 restart(s), enabled`);
    assert.match(doctorVerdict(checks), new RegExp(`^restarts constantly: port ${port} is held by ${holder}, not by amarktai-api\\.service$`));
});

test("nothing listening on the port is a problem only while the unit claims to be active", async (t) => {
    const host = new DoctorHost();
    t.after(() => host.done());
    const port = await freePort();
    assert.deepEqual((await host.diagnose({ healthPort: port })).by.port, { check: "port", ok: true, detail: `port ${port} is free (${UNIT} is failed)` });
    host.unit(UNIT, { ...RUNNING, ControlGroup: "/system.slice/amarktai-api.service" });
    assert.deepEqual((await host.diagnose({ healthPort: port })).by.port, { check: "port", ok: false, detail: `nothing listens on port ${port} although ${UNIT} is active` });
});

test("a dependency that is not found or not active is named with how the unit refers to it; targets are not checked", async (t) => {
    const { host, port } = await failedHost(t);
    host.unit("mongodb.service", undefined).unit("redis.service", { LoadState: "loaded", ActiveState: "inactive" });
    const { run, checks, by } = await host.diagnose({ healthPort: port, dependencies: { after: ["network.target", "mongodb.service", "redis.service"], requires: ["redis.service"], wants: ["network-online.target"] } });
    assert.equal(by.dependencies.ok, false);
    assert.equal(by.dependencies.detail, "redis.service: inactive (Requires, After); mongodb.service: not found (After)");
    assert.equal(doctorVerdict(checks), "won't start: dependency not running: redis.service: inactive (Requires, After); mongodb.service: not found (After)");
    assert.deepEqual(run.calls.filter((c) => c.includes(".target")), []);
});

test("a missing After= unit is noted but not a fault while the service runs; a missing Requires= unit is one", async (t) => {
    const { host, port } = await healthyHost(t);
    host.unit("mongodb.service", undefined);
    const after = await host.diagnose({ healthPort: port, dependencies: { after: ["network.target", "mongodb.service"], requires: [], wants: [] } });
    assert.equal(after.by.dependencies.ok, true);
    assert.equal(after.by.dependencies.detail, "mongodb.service: not found (After); the service runs without it (After=/Wants= only order its start)");
    assert.equal(doctorVerdict(after.checks), "healthy");
    const requires = await host.diagnose({ healthPort: port, dependencies: { after: ["mongodb.service"], requires: ["mongodb.service"], wants: [] } });
    assert.equal(requires.by.dependencies.ok, false);
    assert.equal(requires.by.dependencies.detail, "mongodb.service: not found (Requires, After)");
});

test("an app module that fails to import for a missing package is reported with the error's last line: Python dependencies missing", async (t) => {
    const { host, port } = await failedHost(t);
    host.app("import fastapi_not_installed_here\napp = object()\n");
    const { run, checks, by } = await host.diagnose({ healthPort: port });
    assert.equal(by.python.ok, false);
    assert.equal(by.python.detail, "the imports of uvicorn and server failed (exit 1): ModuleNotFoundError: No module named 'fastapi_not_installed_here'");
    assert.equal(doctorVerdict(checks), "won't start: Python dependencies missing: ModuleNotFoundError: No module named 'fastapi_not_installed_here'");
    const [call, ...more] = run.calls.filter((c) => c.startsWith("systemd-run "));
    assert.deepEqual(more, []);
    const s = host.service;
    assert.ok(call!.startsWith("systemd-run --wait --pipe --quiet --collect --service-type=exec --expand-environment=no "), call);
    assert.ok(call!.includes(` -p User=root -p Group=root -p WorkingDirectory=${s.workingDirectory} -p EnvironmentFile=-${s.envStore} -p RuntimeMaxSec=120 `), call);
    assert.ok(call!.endsWith(` -- ${s.venvPython} -B -c import importlib, sys; sys.path.insert(0, ""); [importlib.import_module(m) for m in sys.argv[1:]] uvicorn server`), call);
});

test("a missing venv interpreter is named without running anything", async (t) => {
    const { host, port } = await failedHost(t);
    fs.rmSync(path.dirname(path.dirname(host.service.venvPython)), { recursive: true });
    const { run, checks, by } = await host.diagnose({ healthPort: port });
    assert.deepEqual(by.python, { check: "python", ok: false, detail: `${host.service.venvPython} is missing` });
    assert.deepEqual(run.calls.filter((c) => c.startsWith("systemd-run")), []);
    assert.equal(doctorVerdict(checks), `won't start: Python: ${host.service.venvPython} is missing`);
});

test("no value of the .env reaches the output: the journal line and the import error show it as [secret KEY]", async (t) => {
    const { host, port } = await failedHost(t);
    host.journal(`2026-01-02T03:04:05+0000 host python[42]: lifespan failed: jwt=${SECRET}\n`);
    host.app(`raise RuntimeError("cannot sign with ${SECRET}")\n`);
    const { run, by } = await host.diagnose({ healthPort: port });
    assert.ok(!run.stdout.includes(SECRET) && !run.stderr.includes(SECRET), run.stdout + run.stderr);
    assert.ok(!run.stdout.includes("JWT_SECRET="), "the .env's content is never printed");
    assert.deepEqual(by.journal, { check: "journal", ok: false, detail: "2026-01-02T03:04:05+0000 host python[42]: lifespan failed: jwt=[secret JWT_SECRET]" });
    assert.equal(by.python.detail, "the imports of uvicorn and server failed (exit 1): RuntimeError: cannot sign with [secret JWT_SECRET]");
});

test("an earlier error in the journal of an active unit is shown but does not fail the check", async (t) => {
    const { host, port } = await healthyHost(t);
    host.journal("-- Boot 1 --\n2026-01-02T03:04:05+0000 host python[42]: old crash\n");
    const { checks, by } = await host.diagnose({ healthPort: port });
    assert.deepEqual(by.journal, { check: "journal", ok: true, detail: `last error (from before; ${UNIT} is active now): 2026-01-02T03:04:05+0000 host python[42]: old crash` });
    assert.equal(doctorVerdict(checks), "healthy");
});

test("the details are valid JSON whatever bytes the host's text holds", async (t) => {
    const { host, port } = await failedHost(t);
    host.journal(Buffer.concat([Buffer.from('2026 host x[1]: "quoted" back\\slash tab\t bell\x07 '), Buffer.from([0xff, 0xfe]), Buffer.from(" é\n")]));
    const { by } = await host.diagnose({ healthPort: port });
    assert.equal(by.journal.detail, '2026 host x[1]: "quoted" back\\slash tab\t bell\x07 \ufffd\ufffd é');
});

test("low free space on any of /, the releases directory and /var/log fails the disk check", async (t) => {
    const { host, port } = await failedHost(t);
    host.df(`${100 * 2 ** 30} ${300 * 2 ** 20}`);
    const { checks, by } = await host.diagnose({ healthPort: port });
    const low = "300 MiB free (0 %): too little (under 5 % or 500 MiB)";
    assert.deepEqual(by.disk, { check: "disk", ok: false, detail: `/: ${low}; ${host.service.releasesDir}: ${low}; /var/log: ${low}` });
    assert.equal(doctorVerdict(checks), `won't start: disk space low: ${by.disk.detail}`);
    host.df(`${10_000 * 2 ** 30} ${400 * 2 ** 30}`);
    assert.equal((await host.diagnose({ healthPort: port })).by.disk.ok, false, "400 GiB of 10000 GiB is under 5 %");
});

test("the script quotes hostile paths: a quote, a backslash and a command substitution in a path are only text", async (t) => {
    const { host, port } = await failedHost(t, `it's "odd" \\ $(touch pwned) \`touch pwned2\` dir`);
    const { by } = await host.diagnose({ healthPort: port });
    assert.deepEqual(by.env, { check: "env", ok: true, detail: `${host.service.envLink} -> ${host.service.envStore} (root:root 0640)` });
    assert.equal(by.python.ok, true, by.python.detail);
    assert.ok(by.disk.detail.includes(`${host.service.releasesDir}: 12.3 GiB free`), by.disk.detail);
    assert.deepEqual(fs.readdirSync(host.stub.dir).filter((f) => f.startsWith("pwned")), []);
});

/** Every path under `dir` with its type, mode, owner, times, size, link target and content. */
function snapshot(dir: string): string[] {
    const out: string[] = [];
    const walk = (p: string): void => {
        const st = fs.lstatSync(p);
        const what = st.isSymbolicLink() ? `-> ${fs.readlinkSync(p)}` : st.isFile() ? fs.readFileSync(p).toString("base64") : "";
        out.push(`${p} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeMs} ${st.ctimeMs} ${what}`);
        if (st.isDirectory()) for (const e of fs.readdirSync(p).sort()) walk(path.join(p, e));
    };
    walk(dir);
    return out;
}

test("the doctor changes nothing: the service's tree is identical after a run that imports the app, and systemctl is only asked", async (t) => {
    const { host, port } = await healthyHost(t);
    const before = snapshot(host.srv);
    const { run } = await host.diagnose({ healthPort: port });
    assert.deepEqual(snapshot(host.srv), before);
    const systemctl = run.calls.filter((c) => c.startsWith("systemctl "));
    assert.ok(systemctl.length > 0);
    assert.deepEqual(systemctl.filter((c) => !/^systemctl (show -p [A-Za-z,]+( --value)?|is-enabled|is-active --quiet) \S+$/.test(c)), []);
    assert.equal(run.calls.filter((c) => c.startsWith("systemd-run ")).length, 1, "the one import");
});

test("a check whose command is missing reports why, and the other checks still run (without python3, as valid JSON)", async (t) => {
    const { host, port } = await failedHost(t, `quote " and back\\slash`);
    // This machine's commands, but neither systemd-run nor python3.
    for (const name of ["systemd-run", "python3"]) fs.rmSync(path.join(host.stub.dir, "bin", name));
    const tools = path.join(host.stub.dir, "tools");
    fs.mkdirSync(tools);
    for (const name of fs.readdirSync("/usr/bin")) if (name !== "systemd-run" && !name.startsWith("python")) fs.symlinkSync(path.join("/usr/bin", name), path.join(tools, name));
    const r = spawnSync("bash", ["-c", doctorScript({ ...host.service, healthPort: port })], { encoding: "utf8", env: { ...process.env, PATH: `${path.join(host.stub.dir, "bin")}:${tools}` } });
    assert.equal(r.status, 0, r.stderr);
    const checks = parseDoctorOutput(r.stdout);
    assert.deepEqual(checks.map((c) => c.check), [...DOCTOR_CHECK_IDS]);
    const by = Object.fromEntries(checks.map((c) => [c.check, c])) as Record<DoctorCheckId, DoctorCheck>;
    assert.deepEqual(by.port, { check: "port", ok: false, detail: `cannot check port ${port}: python3 is not installed` });
    assert.deepEqual(by.python, { check: "python", ok: false, detail: "cannot import server as root: systemd-run is not installed" });
    assert.deepEqual(by.journal, { check: "journal", ok: false, detail: `cannot read the journal of ${UNIT}: python3 is not installed` });
    assert.deepEqual(by.env, { check: "env", ok: true, detail: `${host.service.envLink} -> ${host.service.envStore} (root:root 0640)` });
    assert.equal(by.disk.ok, true, by.disk.detail);
});

test("parseDoctorOutput reads the check lines and throws, naming it, on a line that is not a check", () => {
    const ok = '{"check": "unit", "ok": true, "detail": "x"}\n{"check": "env", "ok": false, "detail": "y"}\n';
    assert.deepEqual(parseDoctorOutput(ok), [
        { check: "unit", ok: true, detail: "x" },
        { check: "env", ok: false, detail: "y" },
    ]);
    assert.deepEqual(parseDoctorOutput(""), []);
    assert.throws(() => parseDoctorOutput(`${ok}warning: something\n`), /not a check line: "warning: something"/);
    assert.throws(() => parseDoctorOutput('{"check": "kernel", "ok": true, "detail": ""}'), /not a check line: .*kernel/);
    assert.throws(() => parseDoctorOutput('{"check": "unit", "ok": "yes", "detail": ""}'), /not a check line/);
    assert.throws(() => parseDoctorOutput(`${ok}\n`), /not a check line: ""/, "a blank line is not skipped");
    assert.throws(() => parseDoctorOutput(`${ok}${ok}`), /the check unit came twice/);
});

test("the verdict names every cause that holds, in the notes' order, or says no known cause was found", () => {
    const all = (failing: Partial<Record<DoctorCheckId, string>>): DoctorCheck[] => DOCTOR_CHECK_IDS.map((check) => ({ check, ok: failing[check] === undefined, detail: failing[check] ?? "fine" }));
    assert.equal(
        doctorVerdict(all({ unit: "u has failed: …", python: "the import of server failed (exit 1): ImportError: cannot import name 'x'", env: "/a/.env is missing", dependencies: "mongodb.service: inactive (After)" })),
        "won't start: .env file: /a/.env is missing; dependency not running: mongodb.service: inactive (After); Python dependencies missing: ImportError: cannot import name 'x'",
    );
    assert.equal(doctorVerdict(all({ unit: "u has failed: loaded, failed (failed)", journal: "boom" })), "won't start: no known cause found (unit: u has failed: loaded, failed (failed); journal: boom)");
    assert.equal(doctorVerdict(all({ port: "nothing listens on port 8000 although u is active" })), "not healthy: nothing listens on port 8000 although u is active");
    assert.equal(doctorVerdict([]), "no checks ran");
});
