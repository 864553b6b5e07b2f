/**
 * A request loop on a test host, the measure behind "zero downtime": while a
 * deploy, restart or reload happens, a small Python loop INSIDE the host sends
 * one HTTP GET at a time to the service's health URL over loopback (a new TCP
 * connection each) and counts the requests that did not answer 200 and the
 * longest wait for an answer.
 *
 * The loop runs detached from the SSH session that starts it (a transient
 * systemd unit on a host), so that a test can start it, run `up`, and stop it
 * to read the figures.
 */
import { randomBytes } from "crypto";
import { quoteScript, shellQuote, shellWords } from "../../components/host";
import { VmInfo, vmSsh } from "../../tools/vm";

/**
 * The loop itself: Python 3, standard library only. Arguments: url, result
 * path, stop path, max seconds, max requests, interval (ms).
 *
 * Each request is `urllib.request.urlopen(url, timeout=30)` (a new connection,
 * closed after the answer): a status other than 200, a refused or reset
 * connection, or a 30 s timeout is a failure, and the first 20 failures are
 * kept with their error text. Between requests it waits `interval` ms, waking
 * early if the stop file appears. It ends when the stop file exists, or after
 * max seconds or max requests, and writes its result as JSON (written to a
 * temporary file, then renamed into place). After its first request it writes
 * `<result path>.started`, so a starter knows the measure has begun.
 */
export const REQUEST_LOOP_PY = [
    "import json, os, sys, time, urllib.error, urllib.request",
    "from datetime import datetime, timezone",
    "url, result_path, stop_path = sys.argv[1], sys.argv[2], sys.argv[3]",
    "max_seconds, max_requests, interval = float(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]) / 1000.0",
    "TIMEOUT_SECONDS = 30",
    "KEPT_FAILURES = 20",
    "def now_iso():",
    "    return datetime.now(timezone.utc).isoformat(timespec='milliseconds').replace('+00:00', 'Z')",
    "def write_atomic(path, text):",
    "    tmp = path + '.tmp'",
    "    with open(tmp, 'w') as f:",
    "        f.write(text)",
    "        f.flush()",
    "        os.fsync(f.fileno())",
    "    os.rename(tmp, path)",
    "def describe(exc):",
    // HTTPError is a URLError, and an answer too: name its status.
    "    if isinstance(exc, urllib.error.HTTPError):",
    "        return 'HTTP %d %s' % (exc.code, exc.reason)",
    // A refused connection or a connect timeout arrives wrapped in a URLError: name the cause.
    "    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):",
    "        exc = exc.reason",
    "    text = str(exc)",
    "    return '%s: %s' % (type(exc).__name__, text) if text else type(exc).__name__",
    "latencies, failures = [], []",
    "ok = failed = 0",
    "started_at = now_iso()",
    "t0 = time.monotonic()",
    "stopped_by = None",
    "while True:",
    "    if os.path.exists(stop_path):",
    "        stopped_by = 'stop-file'",
    "        break",
    "    if len(latencies) >= max_requests:",
    "        stopped_by = 'max-requests'",
    "        break",
    "    if time.monotonic() - t0 >= max_seconds:",
    "        stopped_by = 'max-seconds'",
    "        break",
    "    begin = time.monotonic()",
    "    error = None",
    "    try:",
    "        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:",
    "            response.read()",
    "            if response.status != 200:",
    "                error = 'HTTP %d %s' % (response.status, response.reason)",
    "    except Exception as exc:",
    "        error = describe(exc)",
    "    latencies.append((time.monotonic() - begin) * 1000.0)",
    "    if error is None:",
    "        ok += 1",
    "    else:",
    "        failed += 1",
    "        if len(failures) < KEPT_FAILURES:",
    "            failures.append({'atMs': round((begin - t0) * 1000.0, 1), 'error': error})",
    "    if len(latencies) == 1:",
    "        write_atomic(result_path + '.started', started_at + '\\n')",
    // Pacing: the interval, cut short by the stop file.
    "    wake = time.monotonic() + interval",
    "    while not os.path.exists(stop_path):",
    "        left = wake - time.monotonic()",
    "        if left <= 0:",
    "            break",
    "        time.sleep(min(left, 0.05))",
    "ordered = sorted(latencies)",
    "result = {",
    "    'requests': len(latencies),",
    "    'ok': ok,",
    "    'failed': failed,",
    "    'maxWaitMs': round(ordered[-1], 1) if ordered else 0,",
    "    'p50Ms': round(ordered[(len(ordered) - 1) // 2], 1) if ordered else 0,",
    "    'failures': failures,",
    "    'startedAt': started_at,",
    "    'endedAt': now_iso(),",
    "    'stoppedBy': stopped_by,",
    "}",
    "write_atomic(result_path, json.dumps(result) + '\\n')",
    "",
].join("\n");

/** Runs a bash script as root on the host (stdin optional) and reports how it ended. */
export type RunOnHost = (script: string, stdin?: string) => Promise<{ stdout: string; stderr: string; code: number }>;

/** One failed request as the loop kept it. */
export interface RequestLoopFailure {
    /** When the request started, in ms since the loop's start. */
    readonly atMs: number;
    /** What went wrong: `HTTP 503 Service Unavailable`, `ConnectionRefusedError: [Errno 111] Connection refused`, `TimeoutError: timed out`, … */
    readonly error: string;
}

/** Why the loop ended. */
export type RequestLoopStop = "stop-file" | "max-seconds" | "max-requests";

/** The loop's figures. */
export interface RequestLoopResult {
    /** Requests made. */
    readonly requests: number;
    /** Requests answered 200. */
    readonly ok: number;
    /** Requests that failed: another status, a refused or reset connection, a 30 s timeout. */
    readonly failed: number;
    /** The longest time one request took, answered or not (ms). */
    readonly maxWaitMs: number;
    /** The median time a request took (ms). */
    readonly p50Ms: number;
    /** The first 20 failures. */
    readonly failures: readonly RequestLoopFailure[];
    /** Wall clock (ISO 8601, UTC) at the loop's start and end. */
    readonly startedAt: string;
    readonly endedAt: string;
    readonly stoppedBy: RequestLoopStop;
}

/** How to run the loop. */
export interface RequestLoopOptions {
    /** The URL to GET, as the host itself reaches it (e.g. `http://127.0.0.1:8000/health`). */
    readonly url: string;
    /** Pause between two requests (ms); default 50. */
    readonly intervalMs?: number;
    /** The loop ends by itself after this long, should nobody stop it (s); default 1800. */
    readonly maxSeconds?: number;
    /** The loop ends by itself after this many requests; default 1,000,000. */
    readonly maxRequests?: number;
    /**
     * What keeps the loop running after the starting session ends: a transient
     * unit (`systemd-run`, the default, for hosts) or a new session (`setsid`,
     * for a machine without systemd as PID 1).
     */
    readonly launcher?: "systemd-run" | "setsid";
    /** The root-owned directory that gets the loop's own working directory; default `/run`. */
    readonly parentDir?: string;
    /** How long `start` waits for the first request to be made (ms); default 60,000. */
    readonly startTimeoutMs?: number;
}

/** A request's own timeout in the loop (s): the longest a stop may wait for the request in flight. */
const REQUEST_TIMEOUT_SECONDS = 30;
/** How often the host-side waits check their condition (s). */
const POLL_SECONDS = 0.1;

/** Bash that succeeds while the loop's process runs. */
function aliveCheck(launcher: "systemd-run" | "setsid", unit: string, dir: string): string {
    if (launcher === "systemd-run") return `systemctl is-active --quiet -- ${shellQuote(`${unit}.service`)}`;
    // A zombie (the loop ended, its parent has not reaped it yet) is not running.
    return `{ pid="$(cat -- ${shellQuote(`${dir}/pid`)})" && state="$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)" && [[ -n "$state" && "$state" != Z ]]; }`;
}

/** Bash that ends the loop's process if it still runs. */
function killCommand(launcher: "systemd-run" | "setsid", unit: string, dir: string): string {
    if (launcher === "systemd-run") return `systemctl stop -- ${shellQuote(`${unit}.service`)} 2>/dev/null || true`;
    return `kill "$(cat -- ${shellQuote(`${dir}/pid`)})" 2>/dev/null || true`;
}

/** Iterations of a {@link POLL_SECONDS} wait that cover `ms`. */
function pollCount(ms: number): number {
    return Math.max(1, Math.ceil(ms / 1000 / POLL_SECONDS));
}

/**
 * A running request loop on a host. Start it with {@link RequestLoop.start},
 * end it with {@link RequestLoop.stop}; the figures come from the host.
 */
export class RequestLoop {
    private stopped = false;

    private constructor(
        private readonly run: RunOnHost,
        /** The loop's transient unit name (systemd-run) and the name of its working directory. */
        readonly unit: string,
        /** The loop's working directory on the host: result, stop file, log. */
        readonly dir: string,
        private readonly launcher: "systemd-run" | "setsid",
        private readonly intervalMs: number,
    ) {}

    /**
     * Starts the loop on the host through `run` (detached, so it outlives that
     * session) and resolves once its first request has been made. Throws with
     * the loop's output if it ends or does not make a request in time.
     */
    static async start(run: RunOnHost, options: RequestLoopOptions): Promise<RequestLoop> {
        const launcher = options.launcher ?? "systemd-run";
        const intervalMs = options.intervalMs ?? 50;
        const maxSeconds = options.maxSeconds ?? 1800;
        const maxRequests = options.maxRequests ?? 1_000_000;
        const startTimeoutMs = options.startTimeoutMs ?? 60_000;
        const unit = `request-loop-${randomBytes(6).toString("hex")}`;
        const dir = `${(options.parentDir ?? "/run").replace(/\/+$/, "")}/${unit}`;
        const loop = new RequestLoop(run, unit, dir, launcher, intervalMs);
        const args = shellWords([options.url, `${dir}/result.json`, `${dir}/stop`, String(maxSeconds), String(Math.floor(maxRequests)), String(intervalMs)]);
        const log = shellQuote(`${dir}/log`);
        // systemd would otherwise expand `$NAME` in the arguments (systemd-run >= 254; the test images have 257).
        const launch =
            launcher === "systemd-run"
                ? `systemd-run --unit=${shellQuote(unit)} --collect --quiet --expand-environment=no --property=${shellQuote(`StandardOutput=append:${dir}/log`)} --property=${shellQuote(`StandardError=append:${dir}/log`)} python3 -c ${quoteScript(REQUEST_LOOP_PY)} ${args}`
                : `setsid python3 -c ${quoteScript(REQUEST_LOOP_PY)} ${args} </dev/null >>${log} 2>&1 &\necho "$!" >${shellQuote(`${dir}/pid`)}`;
        const script = [
            "set -euo pipefail",
            // A new name each start: mkdir fails rather than reuse anything.
            `mkdir -m 0700 -- ${shellQuote(dir)}`,
            `: >${log}`,
            launch,
            `for ((i = 0; i < ${pollCount(startTimeoutMs)}; i++)); do`,
            // Liveness first: a loop found dead, and without the marker after that, never made its first request.
            `    alive=yes; ${aliveCheck(launcher, unit, dir)} || alive=no`,
            `    if [[ -e ${shellQuote(`${dir}/result.json.started`)} ]]; then exit 0; fi`,
            `    if [[ "$alive" == no ]]; then echo "the request loop ended before its first request:" >&2; cat -- ${log} >&2; exit 1; fi`,
            `    sleep ${POLL_SECONDS}`,
            "done",
            `echo "the request loop made no request within ${startTimeoutMs / 1000} s:" >&2`,
            `cat -- ${log} >&2`,
            killCommand(launcher, unit, dir),
            "exit 1",
            "",
        ].join("\n");
        const r = await run(script);
        if (r.code !== 0) {
            await loop.cleanUp();
            throw new Error(`could not start the request loop (exit ${r.code}):\n${r.stderr}${r.stdout}`);
        }
        return loop;
    }

    /**
     * Asks the loop to end (its stop file), waits for its result and for its
     * process to end, removes its files, and returns the figures. Throws with
     * the loop's output if no result comes in time (the request in flight may
     * take its full 30 s timeout).
     */
    async stop(): Promise<RequestLoopResult> {
        if (this.stopped) throw new Error(`request loop ${this.unit} was already stopped`);
        this.stopped = true;
        const dir = shellQuote(this.dir);
        const result = shellQuote(`${this.dir}/result.json`);
        const alive = aliveCheck(this.launcher, this.unit, this.dir);
        const boundMs = (REQUEST_TIMEOUT_SECONDS + 30) * 1000 + this.intervalMs;
        const script = [
            "set -euo pipefail",
            `touch -- ${shellQuote(`${this.dir}/stop`)}`,
            `for ((i = 0; i < ${pollCount(boundMs)}; i++)); do`,
            `    alive=yes; ${alive} || alive=no`,
            `    if [[ -e ${result} ]]; then break; fi`,
            `    if [[ "$alive" == no ]]; then break; fi`,
            `    sleep ${POLL_SECONDS}`,
            "done",
            `if [[ ! -e ${result} ]]; then`,
            `    echo "the request loop left no result:" >&2`,
            `    cat -- ${shellQuote(`${this.dir}/log`)} >&2 || true`,
            `    ${killCommand(this.launcher, this.unit, this.dir)}`,
            `    rm -rf -- ${dir}`,
            "    exit 1",
            "fi",
            // The result is written last: the process ends right after it.
            `for ((i = 0; i < ${pollCount(10_000)}; i++)); do ${alive} || break; sleep ${POLL_SECONDS}; done`,
            `if ${alive}; then ${killCommand(this.launcher, this.unit, this.dir)}; fi`,
            `cat -- ${result}`,
            `rm -rf -- ${dir}`,
            "",
        ].join("\n");
        const r = await this.run(script);
        if (r.code !== 0) throw new Error(`request loop ${this.unit} failed to stop (exit ${r.code}):\n${r.stderr}${r.stdout}`);
        return parseResult(r.stdout);
    }

    /** Ends the loop and removes its files, for a start that failed. */
    private async cleanUp(): Promise<void> {
        this.stopped = true;
        await this.run(`set -euo pipefail\n${killCommand(this.launcher, this.unit, this.dir)}\nrm -rf -- ${shellQuote(this.dir)}\n`);
    }
}

/** Starts a request loop: the same as {@link RequestLoop.start}. */
export function startRequestLoop(run: RunOnHost, options: RequestLoopOptions): Promise<RequestLoop> {
    return RequestLoop.start(run, options);
}

/** The loop's result JSON, checked for the fields a test reads. */
function parseResult(text: string): RequestLoopResult {
    const value = JSON.parse(text) as RequestLoopResult;
    for (const key of ["requests", "ok", "failed", "maxWaitMs", "p50Ms"] as const) {
        if (typeof value[key] !== "number") throw new Error(`request loop result without a numeric ${key}: ${text}`);
    }
    if (!Array.isArray(value.failures)) throw new Error(`request loop result without failures: ${text}`);
    return value;
}

/** A duration for a reader: `48 ms` below a second, `3.2 s` above. */
function duration(ms: number): string {
    return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/**
 * One line for a test's log: `env change: 412 requests, 0 failed, longest wait 3.2 s`,
 * followed by the first failure when there is one.
 */
export function formatRequestLoop(label: string, result: RequestLoopResult): string {
    const line = `${label}: ${result.requests} requests, ${result.failed} failed, longest wait ${duration(result.maxWaitMs)}`;
    const first = result.failures[0];
    return first ? `${line} (first failure at ${duration(first.atMs)}: ${first.error})` : line;
}

/** A {@link RunOnHost} for a test host: the script runs as root through the harness's SSH (`vmSsh`). */
export function rootShellOn(vm: VmInfo): RunOnHost {
    return (script, stdin) => Promise.resolve(vmSsh(vm, `bash -c ${quoteScript(script)}`, { root: true, input: stdin ?? "" }));
}
