/**
 * The port handover for real, as root: a service process running as an
 * unprivileged user in a control group of its own listens on a port (as
 * uvicorn does, SO_REUSEADDR and no SO_REUSEPORT) while 16 clients open a new
 * connection every 5 ms; `handover_hold` takes its listener, a root
 * SO_REUSEPORT socket (what a socket unit with ReusePort=yes binds) joins
 * the port, the service stops, a new server starts on the root socket, and
 * `handover_release` lets the old listener go. Each scenario runs in a
 * network namespace of its own, so the port and `net.ipv4.tcp_migrate_req`
 * are the scenario's alone.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PRELUDE, portHandoverFunctions } from "../../components/host";
import { cgroupRoot } from "../support/cgroup";

const PORT = 8000;
const LOCK_PATH = "/run/amarktai-infra-handover.lock";

/**
 * One scenario, run in its own network namespace: argv[1] is the JSON of
 * {@link DriverConfig}; the last line printed is the JSON of {@link DriverResult}.
 *
 * - `handover`: old server; clients; `handover_hold`; a root SO_REUSEPORT
 *   socket binds the port; SIGTERM to the old server; the new server starts
 *   on the root socket (accepting after 1 s); once the old server closed its
 *   listener and exited, `handover_release`; clients stop 3 s after the
 *   release, once the new server answered.
 * - `gap`: the same without the helper: the old server stops, then the root
 *   socket binds the port and the new server starts on it.
 * - `outside`: the old server (in another group than the one given) and
 *   `handover_hold` only, then what it may have changed is read back.
 */
const DRIVER_PY = String.raw`import fcntl, http.client, json, os, queue, signal, socket, subprocess, sys, threading, time
cfg = json.loads(sys.argv[1])
HOST, PORT, MODE = "127.0.0.1", cfg["port"], cfg["mode"]
MIGRATE_REQ = "/proc/sys/net/ipv4/tcp_migrate_req"
with open(os.path.join(cfg["driverGroup"], "cgroup.procs"), "w") as f:
    f.write("0")
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)

SERVER = r'''
import http.server, os, signal, socket, sys, time
name, arg = sys.argv[1], sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(name)))
        self.end_headers()
        self.wfile.write(name.encode())
    def log_message(self, *args):
        pass
if name == "old":
    import encodings.idna  # loaded while the interpreter's files are readable: the account below may not read them
    with open(arg, "w") as f:
        f.write("0")
    os.setgid(65534)
    os.setuid(65534)
    # Like uvicorn's: SO_REUSEADDR (http.server sets it), no SO_REUSEPORT, created by the service account.
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[3])), Handler)
    def term(signum, frame):
        srv.socket.close()
        print("closed", flush=True)
        time.sleep(1.0)
        os._exit(0)
    signal.signal(signal.SIGTERM, term)
else:
    sock = socket.socket(fileno=int(arg))
    time.sleep(1.0)
    srv = http.server.ThreadingHTTPServer(sock.getsockname()[:2], Handler, bind_and_activate=False)
    srv.socket.close()
    srv.socket = sock
srv.daemon_threads = True
srv.serve_forever(poll_interval=0.05)
'''


def setting():
    with open(MIGRATE_REQ) as f:
        return f.read().strip()


def lines_of(stream):
    q = queue.Queue()
    def pump():
        for line in stream:
            q.put(line.rstrip("\n"))
        q.put(None)
    threading.Thread(target=pump, daemon=True).start()
    return q


def until(what, condition, seconds):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.02)


def accepting():
    try:
        socket.create_connection((HOST, PORT), timeout=1).close()
        return True
    except OSError:
        return False


def old_server(group):
    p = subprocess.Popen([sys.executable, "-c", SERVER, "old", os.path.join(group, "cgroup.procs"), str(PORT)], stdout=subprocess.PIPE, text=True)
    until("the old server to listen", lambda: accepting() or p.poll() is not None, 60)
    if p.poll() is not None:
        raise SystemExit("the old server ended before it listened")
    return p, lines_of(p.stdout)


def root_socket():
    # What systemd binds for a socket unit with ReusePort=yes (it sets SO_REUSEADDR on every listener).
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((HOST, PORT))
    s.listen(1024)
    return s


def new_server(sock):
    return subprocess.Popen([sys.executable, "-c", SERVER, "new", str(sock.fileno())], pass_fds=[sock.fileno()])


def handover_shell(group):
    p = subprocess.Popen(["bash", cfg["script"], HOST, str(PORT), group], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return p, lines_of(p.stdout)


def release_handover(shell, shell_lines):
    """Ends the shell's input (handover_release), records its last line and the setting after."""
    shell.stdin.write("\n")
    shell.stdin.flush()
    result["afterRelease"] = shell_lines.get(timeout=120)
    shell.wait(timeout=60)
    result["settingAfter"] = setting()


def helpers_running():
    n = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                n += b"amarktai-infra port handover:" in f.read()
        except OSError:
            pass
    return n


def lock_free():
    with open(cfg["lockPath"], "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False


stats = {"old": 0, "new": 0, "failed": 0, "other": 0, "errors": [], "maxWaitMs": 0}
stats_lock = threading.Lock()
stopping = threading.Event()


def client():
    while not stopping.is_set():
        began = time.monotonic()
        try:
            conn = http.client.HTTPConnection(HOST, PORT, timeout=30)
            try:
                conn.request("GET", "/health")
                response = conn.getresponse()
                body = response.read().decode()
                key = body if response.status == 200 and body in ("old", "new") else "other"
            finally:
                conn.close()
        except Exception as e:
            key, error = "failed", repr(e)[:120]
        with stats_lock:
            stats[key] += 1
            stats["maxWaitMs"] = max(stats["maxWaitMs"], round((time.monotonic() - began) * 1000))
            if key == "failed" and len(stats["errors"]) < 5:
                stats["errors"].append(error)
        stopping.wait(0.005)


def served(key, n):
    return lambda: stats[key] >= n


result = {"mode": MODE, "settingBefore": setting()}
children = []
try:
    old, old_lines = old_server(cfg["serviceGroup"])
    children.append(old)
    result["oldPid"] = old.pid
    if MODE == "outside":
        shell, shell_lines = handover_shell(cfg["unitGroup"])
        result["answer"] = shell_lines.get(timeout=120)
        result["settingWhileAnswered"] = setting()
        release_handover(shell, shell_lines)
        try:
            root_socket().close()
            result["rootBind"] = "bound"
        except OSError as e:
            result["rootBind"] = e.strerror
        conn = http.client.HTTPConnection(HOST, PORT, timeout=30)
        conn.request("GET", "/health")
        result["oldAnswersAfter"] = conn.getresponse().read().decode()
        conn.close()
    else:
        clients = [threading.Thread(target=client) for _ in range(16)]
        for t in clients:
            t.start()
        until("the old server to answer", served("old", 20), 60)
        if MODE == "handover":
            shell, shell_lines = handover_shell(cfg["unitGroup"])
            result["answer"] = shell_lines.get(timeout=120)
            if not (result["answer"] or "").startswith("held "):
                raise SystemExit(f"handover_hold did not hold: {result['answer']}")
            result["settingWhileHeld"] = setting()
            sock = root_socket()
            old.send_signal(signal.SIGTERM)
            children.append(new_server(sock))
            if old_lines.get(timeout=60) != "closed":
                raise SystemExit("the old server did not close its listener")
            # As systemctl stop returns: once the old service is gone (its last connections served).
            old.wait(timeout=60)
            release_handover(shell, shell_lines)
        else:
            old.send_signal(signal.SIGTERM)
            old.wait(timeout=60)
            sock = root_socket()
            children.append(new_server(sock))
        released = time.monotonic()
        until("the new server to answer", served("new", 1), 60)
        until("3 s after the release", lambda: time.monotonic() - released >= 3, 10)
        stopping.set()
        for t in clients:
            t.join(timeout=60)
        old.wait(timeout=60)
        result.update(stats)
    result["helpersRunning"] = helpers_running()
    result["lockFree"] = lock_free()
finally:
    stopping.set()
    for p in children:
        p.kill()
        p.wait()
print(json.dumps(result), flush=True)
`;

interface DriverConfig {
    mode: "handover" | "gap" | "outside";
    port: number;
    /** The script defining and calling the handover: `bash SCRIPT BIND_HOST PORT CGROUP`. */
    script: string;
    lockPath: string;
    /** Directories of the control groups (under the hierarchy's mount). */
    driverGroup: string;
    serviceGroup: string;
    /** The unit's group as `handover_hold` is given it (a path in the hierarchy). */
    unitGroup: string;
}

interface DriverResult {
    mode: string;
    settingBefore: string;
    settingWhileHeld?: string;
    settingWhileAnswered?: string;
    settingAfter?: string;
    answer?: string;
    oldPid: number;
    afterRelease?: string;
    old?: number;
    new?: number;
    failed?: number;
    other?: number;
    errors?: string[];
    maxWaitMs?: number;
    rootBind?: string;
    oldAnswersAfter?: string;
    helpersRunning: number;
    lockFree: boolean;
}

/** Calls the handover as an activation would: holds, answers `held PID` or `unavailable WHY`, releases at a line on stdin. */
function handoverCallerScript(): string {
    return [
        ...PRELUDE,
        ...portHandoverFunctions(),
        'if handover_hold "$1" "$2" "$3"; then echo "held $HANDOVER_PID"; else echo "unavailable $HANDOVER_WHY"; fi',
        "IFS= read -r _ || true",
        "handover_release",
        // Twice: releasing when nothing is held does nothing.
        "handover_release",
        'echo "released"',
    ].join("\n");
}

/** Scratch control groups: the unit's (with the service's group below it), another beside it, and the driver's. */
function scratchGroups(): { group: (p: string) => string; dir: (p: string) => string; remove: () => void } {
    const base = `/amarktai-test-handover-${process.pid}`;
    const dir = (p: string) => path.join(cgroupRoot(), base, p);
    const leaves = ["unit/service", "other", "driver"];
    for (const leaf of leaves) fs.mkdirSync(dir(leaf), { recursive: true });
    return {
        group: (p) => `${base}/${p}`,
        dir,
        remove: () => {
            for (const leaf of leaves) {
                const kill = path.join(dir(leaf), "cgroup.kill");
                if (fs.existsSync(kill)) fs.writeFileSync(kill, "1");
            }
            // The killed processes leave their groups asynchronously: wait (bounded) until each is empty.
            const deadline = Date.now() + 30_000;
            for (const leaf of leaves) {
                while (fs.readFileSync(path.join(dir(leaf), "cgroup.procs"), "utf8").trim() !== "" && Date.now() < deadline) spawnSync("sleep", ["0.05"]);
                fs.rmdirSync(dir(leaf));
            }
            fs.rmdirSync(dir("unit"));
            fs.rmdirSync(dir(""));
        },
    };
}

/** Runs one scenario in a new network namespace and returns its result. */
function runScenario(mode: DriverConfig["mode"], serviceLeaf: string): DriverResult {
    assert.equal(process.getuid?.(), 0, "needs root: it creates control groups, changes to another user, and runs in a network namespace of its own");
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "port-handover-"));
    const groups = scratchGroups();
    try {
        const driver = path.join(tmp, "driver.py");
        const script = path.join(tmp, "handover.sh");
        fs.writeFileSync(driver, DRIVER_PY);
        fs.writeFileSync(script, handoverCallerScript());
        const config: DriverConfig = { mode, port: PORT, script, lockPath: LOCK_PATH, driverGroup: groups.dir("driver"), serviceGroup: groups.dir(serviceLeaf), unitGroup: groups.group("unit") };
        const r = spawnSync("unshare", ["--net", "--", "python3", driver, JSON.stringify(config)], { encoding: "utf8", timeout: 240_000 });
        assert.equal(r.status, 0, `the ${mode} scenario failed (${r.error?.message ?? r.signal ?? ""}):\n${r.stdout}\n${r.stderr}`);
        const last = r.stdout.trim().split("\n").pop() ?? "";
        return JSON.parse(last) as DriverResult;
    } finally {
        groups.remove();
        fs.rmSync(tmp, { recursive: true, force: true });
    }
}

test("with the listener held through the switch, no request fails while the port passes from the old server to a root SO_REUSEPORT socket", { timeout: 300_000 }, (t) => {
    // The service's process sits in a group below the unit's: the helper looks through the unit's whole subtree.
    const r = runScenario("handover", "unit/service");
    t.diagnostic(`handover: ${r.old} answered by the old server, ${r.new} by the new one, ${r.failed} failed, longest wait ${r.maxWaitMs} ms ${JSON.stringify(r.errors)}`);
    assert.equal(r.answer, `held ${r.oldPid}`, "the old server's listener is held");
    assert.equal(r.settingBefore, "0");
    assert.equal(r.settingWhileHeld, "1", "net.ipv4.tcp_migrate_req is on while the listener is held");
    assert.equal(r.afterRelease, "released");
    assert.equal(r.settingAfter, "0", "and put back at the release");
    // One reset in about 5 000 requests was seen under load (3 CPU burners beside the test): the model server exits 1 s
    // after SIGTERM whatever its threads still handle, as uvicorn's own shutdown race can. At most one is tolerated; the
    // run without the helper (below) fails thousands.
    assert.ok((r.failed ?? 0) <= 1, JSON.stringify(r.errors));
    assert.equal(r.other, 0);
    assert.ok((r.old ?? 0) > 0 && (r.new ?? 0) > 0, `both servers answered: ${r.old} old, ${r.new} new`);
    assert.equal(r.helpersRunning, 0, "the helper is gone after the release");
    assert.equal(r.lockFree, true, "and the lock is free");
});

test("without the helper, stopping the old server before the new one binds refuses requests (the gap the handover closes)", { timeout: 300_000 }, (t) => {
    const r = runScenario("gap", "unit/service");
    t.diagnostic(`gap: ${r.old} answered by the old server, ${r.new} by the new one, ${r.failed} failed ${JSON.stringify(r.errors)}`);
    assert.ok((r.failed ?? 0) > 0, "some requests fail in the gap");
    assert.ok((r.old ?? 0) > 0 && (r.new ?? 0) > 0);
});

test("a listener held outside the unit's control group is not taken: handover_hold names its holder and changes nothing", { timeout: 300_000 }, () => {
    const r = runScenario("outside", "other");
    assert.ok((r.answer ?? "").startsWith(`unavailable 127.0.0.1:8000 is held by pid ${r.oldPid} (`), r.answer);
    assert.match(r.answer ?? "", /\) in \/amarktai-test-handover-\d+\/other, outside \/amarktai-test-handover-\d+\/unit$/, "it names the holder's group and the unit's");
    assert.equal(r.settingWhileAnswered, "0");
    assert.equal(r.settingAfter, "0");
    assert.equal(r.afterRelease, "released");
    assert.equal(r.rootBind, "Address already in use", "the listener is untouched: no root SO_REUSEPORT socket can join it");
    assert.equal(r.oldAnswersAfter, "old", "and still serves");
    assert.equal(r.helpersRunning, 0, "the helper is gone");
    assert.equal(r.lockFree, true, "and the lock is free");
});

test("the handover functions parse with bash -n and pass shellcheck", () => {
    const script = handoverCallerScript();
    const parsed = spawnSync("bash", ["-n"], { input: script, encoding: "utf8" });
    assert.equal(parsed.status, 0, parsed.stderr);
    const checked = spawnSync("shellcheck", ["--shell=bash", "--severity=warning", "-"], { input: script, encoding: "utf8" });
    assert.notEqual(checked.error?.message.includes("ENOENT"), true, "shellcheck is not installed (scripts/test.sh installs it)");
    assert.equal(checked.status, 0, checked.stdout);
});
