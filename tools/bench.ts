/**
 * Benchmark (not a test: it prints figures). For each run, on a fresh test VM
 * with a new throwaway stack, it times the real Pulumi CLI through
 * `scripts/pulumi`:
 *
 *   1. a fresh `up` (checked healthy: `/health` answers 200 inside the VM),
 *   2. a no-op `preview` and a no-op `up --expect-no-changes`,
 *   3. a one-override change (`overrides.workers.workers: 2`, then `up`),
 *   4. a `refresh` that finds no drift, then a hand edit of the unit
 *      (`RestartSec=30`) repaired by `up --refresh`,
 *   5. a requirements-only change (`six==1.17.0` added: a new release, then `up`),
 *
 * and counts, on the host from its journal, what each operation did there:
 * SSH sessions accepted by sshd, remote commands (each `sudo` invocation of
 * the login user logs one `COMMAND=` line), unit starts and daemon-reloads.
 * It also measures the program's startup, once a fresh `up` of one stack with
 * three hosts against the one-host figure, and once steps 1 and 4 with the
 * pip installer (`releases.installer: pip`, how venvs were built before uv:
 * apt's python3-venv, `python3 -m venv`, pip) against uv, on the same machine.
 *
 * With `--hosts N[,N…]` it measures instead how a stack's cost grows with its
 * number of hosts (tools/bench-hosts.ts): first preview of N fake hosts, and
 * on N real container hosts a no-op preview and up and a rolling change; with
 * `--before DIR`, the same for an older built checkout in the same run.
 * Without `--hosts`, `--before DIR` also runs the per-operation steps (but
 * refresh and repair) through that checkout on fresh VMs, for a before/after
 * table on the same machine in one run.
 *
 * Usage (scripts/bench.sh installs and builds everything first):
 *   node dist/tools/bench.js [--runs N] [--no-hosts-compare] [--json FILE]
 *   node dist/tools/bench.js --hosts 1,10,50,100 [--before DIR] [--real-max N] [--json FILE]
 *
 * The report goes to stdout, progress to stderr. Every VM it starts is named
 * `bench-<pid>-…` and stopped by name when the benchmark ends or is
 * interrupted.
 */
import { execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { hostsBenchmark, hostsReport, liveContainers } from "./bench-hosts";
import { CliResult, TestStack } from "./stack";
import { REPO, VmInfo, vmPrivateKey } from "./vm";
import { hostKeyFingerprint } from "../components/model";
import { RequestLoop, RequestLoopResult, rootShellOn } from "../test/support/request-loop";

const VM_SH = path.join(REPO, "tools", "vm", "vm.sh");
const UNIT = "amarktai-api.service";
const HEALTH_URL = "http://127.0.0.1:8000/health";
const T0 = Date.now();
const HEARTBEAT_MS = 30_000;

const USAGE = `Usage: scripts/bench.sh [--runs N] [--hosts-compare | --no-hosts-compare] [--no-installer-compare] [--before DIR] [--json FILE]

  --runs N             runs of the per-operation benchmark, each on a fresh VM (default 3)
  --hosts-compare      also time a fresh up of one stack with 3 hosts (default)
  --no-hosts-compare   skip the 3-host part
  --no-installer-compare  skip the fresh up + requirements change with the pip installer
  --json FILE          also write the raw results as JSON to FILE

  --hosts N[,N...]     instead: cost against the number of hosts in one stack (first preview of
                       N fake hosts; no-op preview, no-op up and a rolling change on N real
                       container hosts for N <= --real-max), with CPU time and peak memory
  --real-max N         largest N measured on real (container) hosts (default 10; 0: none)
  --before DIR         also measure DIR, another built checkout (e.g. an older revision: git
                       archive REV | tar -x -C DIR; cp -al node_modules; bash DIR/scripts/setup.sh),
                       in the same run: per operation, the same steps on fresh VMs through DIR's
                       scripts/pulumi (no refresh/repair step); with --hosts, the N-host figures
  --high-priority      run in a scheduling group of its own at nice -19 (root): other work on a
                       busy machine (test VMs) then gets the CPU only when the benchmark leaves it
                       idle, so wall times approach an unloaded machine's; CPU times are unaffected
`;

// ------------------------------------------------------------------ options

interface Options {
    runs: number;
    hostsCompare: boolean;
    installerCompare: boolean;
    json?: string;
    /** `--hosts`: host counts of the N-host benchmark. */
    hostCounts?: number[];
    realMax: number;
    before?: string;
    highPriority: boolean;
}

function usageError(message: string): never {
    process.stderr.write(`bench: ${message}\n\n${USAGE}`);
    process.exit(2);
}

function parseArgs(argv: string[]): Options {
    const opts: Options = { runs: 3, hostsCompare: true, realMax: 10, installerCompare: true, highPriority: false };
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i]!;
        const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
        const value = (): string => {
            if (inline !== undefined) return inline;
            const next = argv[++i];
            if (next === undefined) usageError(`${flag} needs a value`);
            return next;
        };
        switch (flag) {
            case "--runs": {
                const v = value();
                if (!/^[1-9][0-9]*$/.test(v)) usageError(`--runs must be a positive integer, got ${JSON.stringify(v)}`);
                opts.runs = Number(v);
                break;
            }
            case "--hosts-compare":
                opts.hostsCompare = true;
                break;
            case "--no-hosts-compare":
                opts.hostsCompare = false;
                break;
            case "--no-installer-compare":
                opts.installerCompare = false;
                break;
            case "--json":
                opts.json = path.resolve(value());
                break;
            case "--hosts": {
                const v = value();
                if (!/^[1-9][0-9]*(,[1-9][0-9]*)*$/.test(v)) usageError(`--hosts must be positive integers separated by commas, got ${JSON.stringify(v)}`);
                opts.hostCounts = v.split(",").map(Number);
                break;
            }
            case "--real-max": {
                const v = value();
                if (!/^[0-9]+$/.test(v)) usageError(`--real-max must be a whole number, got ${JSON.stringify(v)}`);
                opts.realMax = Number(v);
                break;
            }
            case "--high-priority":
                opts.highPriority = true;
                break;
            case "--before": {
                const dir = path.resolve(value());
                if (!fs.existsSync(path.join(dir, "scripts", "pulumi")) || !fs.existsSync(path.join(dir, "dist", "index.js"))) usageError(`--before ${dir}: not a built checkout of this project (scripts/pulumi, dist/index.js)`);
                opts.before = dir;
                break;
            }
            case "-h":
            case "--help":
                process.stdout.write(USAGE);
                process.exit(0);
            default:
                usageError(`unknown argument ${JSON.stringify(arg)}`);
        }
    }
    return opts;
}

// ------------------------------------------------------------------ helpers

const elapsed = (since = T0) => (Date.now() - since) / 1000;

function log(message: string): void {
    process.stderr.write(`[${elapsed().toFixed(1).padStart(7)}s] ${message}\n`);
}

interface ExecResult {
    code: number;
    stdout: string;
    stderr: string;
    seconds: number;
}

function exec(command: string, args: string[], options: { cwd?: string } = {}): Promise<ExecResult> {
    const started = Date.now();
    return new Promise((resolve, reject) => {
        const child = spawn(command, args, { cwd: options.cwd ?? REPO, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        child.on("error", reject);
        child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr, seconds: elapsed(started) }));
    });
}

function median(values: number[]): number {
    const s = [...values].sort((a, b) => a - b);
    const mid = Math.floor(s.length / 2);
    return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** "median (min–max)". */
function stat(values: (number | undefined)[], digits: number): string {
    const v = values.filter((x): x is number => typeof x === "number" && Number.isFinite(x));
    if (v.length === 0) return "—";
    const f = (x: number) => x.toFixed(digits);
    return `${f(median(v))} (${f(Math.min(...v))}–${f(Math.max(...v))})`;
}

function table(header: string[], rows: string[][]): string {
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
    return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

const loadSamples: number[] = [];
/** VMs not started by this benchmark (other people's) seen on the machine while it ran: they share the CPU. */
const otherVmsSeen = new Set<string>();

function otherVms(): string[] {
    const r = spawnSync("bash", [VM_SH, "list"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    return (r.stdout ?? "")
        .split("\n")
        .map((l) => l.split(" ")[0] ?? "")
        .filter((n) => n !== "" && !n.startsWith(`bench-${process.pid}-`));
}

function sampleLoad(): void {
    loadSamples.push(os.loadavg()[0]!);
    for (const name of otherVms()) otherVmsSeen.add(name);
}

// ------------------------------------------------------------------ VMs

const startedVms = new Set<string>();
const liveStacks = new Set<TestStack>();

interface BenchVm extends VmInfo {
    /** Seconds `vm.sh start` took (restore from the booted snapshot). */
    readonly startSeconds: number;
}

async function startVm(name: string): Promise<BenchVm> {
    startedVms.add(name);
    const r = await exec("bash", [VM_SH, "start", name]);
    if (r.code !== 0) throw new Error(`vm.sh start ${name} failed (exit ${r.code}):\n${r.stderr}`);
    const info = await exec("bash", [VM_SH, "info", name]);
    if (info.code !== 0) throw new Error(`vm.sh info ${name} failed:\n${info.stderr}`);
    return { name, ...(JSON.parse(info.stdout) as Omit<VmInfo, "name">), startSeconds: r.seconds };
}

/** Stops a VM by name (vm.sh kills its QEMU by its recorded pid). Synchronous so that signal handlers can use it. */
function stopVm(name: string): void {
    spawnSync("bash", [VM_SH, "stop", name], { stdio: ["ignore", "ignore", "pipe"] });
    startedVms.delete(name);
}

function vmExec(vm: VmInfo, command: string, root = false): Promise<ExecResult> {
    return exec("bash", [VM_SH, "ssh", vm.name, ...(root ? ["--root"] : []), "--", command]);
}

/** What the host's journal says happened so far. */
interface Counters {
    /** sshd sessions accepted (including the one reading these counters). */
    sessions: number;
    /** Commands run through `sudo` (one `COMMAND=` line each). */
    commands: number;
    /** Starts of the unit. */
    starts: number;
    /** Completed daemon-reloads. */
    reloads: number;
}

/** One SSH session as root (no sudo involved, so it adds no COMMAND= line). */
const COUNT_SCRIPT = [
    "journalctl -q --no-pager -o cat _COMM=sshd-session _COMM=sshd | grep -c '^Accepted publickey' || true",
    "journalctl -q --no-pager -o cat _COMM=sudo | grep -c ' ; COMMAND=' || true",
    `journalctl -q --no-pager -o cat -u ${UNIT} | grep -c '^Started ${UNIT}' || true`,
    "journalctl -q --no-pager -o cat _PID=1 | grep -c '^Reloading finished' || true",
].join("; ");

async function readCounters(vm: VmInfo): Promise<Counters> {
    const r = await vmExec(vm, COUNT_SCRIPT, true);
    const n = r.stdout.trim().split("\n").map(Number);
    if (r.code !== 0 || n.length !== 4 || n.some((x) => !Number.isInteger(x))) {
        throw new Error(`reading the journal counters in ${vm.name} failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
    }
    return { sessions: n[0]!, commands: n[1]!, starts: n[2]!, reloads: n[3]! };
}

/** What an operation did on the host: the counter delta, minus the counting session itself. */
function hostDelta(before: Counters, after: Counters) {
    return {
        sessions: after.sessions - before.sessions - 1,
        commands: after.commands - before.commands,
        restarts: after.starts - before.starts,
        reloads: after.reloads - before.reloads,
    };
}
type HostDelta = ReturnType<typeof hostDelta>;

/** Checks inside the VM that the unit is active and /health answers 200 (one SSH session as ubuntu, no sudo). */
async function checkHealthy(vm: VmInfo, execStartPattern?: RegExp): Promise<void> {
    const r = await vmExec(vm, `systemctl is-active ${UNIT}; systemctl show -p ExecStart --value ${UNIT}; curl -s -o /dev/null -w '%{http_code}\\n' ${HEALTH_URL}`);
    const lines = r.stdout.trim().split("\n");
    const active = lines[0];
    const status = lines[lines.length - 1];
    if (active !== "active" || status !== "200") {
        throw new Error(`${vm.name}: service not healthy after the up (is-active: ${active}, /health: ${status})\n${r.stderr}`);
    }
    if (execStartPattern && !execStartPattern.test(r.stdout)) {
        throw new Error(`${vm.name}: ExecStart does not match ${execStartPattern}:\n${r.stdout}`);
    }
}

function hostEntry(name: string, vm: VmInfo) {
    return { name, address: vm.host, port: vm.port, user: vm.user, hostKey: vm.hostKey };
}

/** The requirements of step 4: one added to the default's. */
const MORE_REQUIREMENTS = ["uvicorn==0.38.0", "six==1.17.0"];

async function newStack(hosts: { name: string; vm: VmInfo }[], extra: Record<string, unknown> = {}): Promise<TestStack> {
    const stack = await TestStack.create("bench");
    liveStacks.add(stack);
    await stack.setConfig({ hosts: hosts.map((h) => hostEntry(h.name, h.vm)), app: { sourceDir: "demo-app" }, ...extra });
    await stack.setSecret("sshPrivateKey", vmPrivateKey(hosts[0]!.vm));
    return stack;
}

function dropStack(stack: TestStack | undefined): void {
    if (!stack) return;
    stack.cleanup();
    liveStacks.delete(stack);
}

// ------------------------------------------------------------------ CLI runs with line timestamps

interface TimedLine {
    /** Seconds after the CLI process was started, when the line arrived. */
    t: number;
    line: string;
}

/** A resource step line of the CLI's non-interactive display, e.g. ` +  pulumi-nodejs:dynamic/amarktai:HostPrepare x creating (0s)`. */
const STEP_LINE = /^\s*[-+~<>=*]{1,3}\s+(\S+:\S+)\s+(\S+)\s+(creating|updating|deleting|replacing|creating replacement|deleting original|reading|refreshing|importing)\b/;
/** The same line when the step finished. */
const DONE_LINE = /^\s*[-+~<>=*]{1,3}\s+(\S+:\S+)\s+(\S+)\s+(created|updated|deleted|replaced|read|refreshed|imported)\b/;

interface CliRun {
    result: CliResult;
    lines: TimedLine[];
    /** Arrival of the first line of output. */
    firstOutput?: number;
    /** Arrival of the stack resource's registration (the program is running). */
    stackRegistered?: number;
    /** Arrival of the first step of a resource the provider acts on (a dynamic resource). */
    firstProviderOp?: number;
}

async function timedCli(stack: TestStack, label: string, args: string[], checkout?: string): Promise<CliRun> {
    const lines: TimedLine[] = [];
    let partial = "";
    const started = Date.now();
    /** Provider steps started and not yet finished (components only finish at the end), with their start time. */
    const inFlight = new Map<string, number>();
    const onOutput = (chunk: string) => {
        partial += chunk;
        let nl: number;
        while ((nl = partial.indexOf("\n")) >= 0) {
            const line = partial.slice(0, nl).replace(/\r/g, "");
            partial = partial.slice(nl + 1);
            lines.push({ t: elapsed(started), line });
            const step = STEP_LINE.exec(line);
            if (step && step[1]!.startsWith("pulumi-nodejs:dynamic")) inFlight.set(`${step[1]!.replace(/^.*:/, "")} ${step[2]}`, Date.now());
            const done = DONE_LINE.exec(line);
            if (done) inFlight.delete(`${done[1]!.replace(/^.*:/, "")} ${done[2]}`);
        }
    };
    log(`${label}: started (pulumi ${args.join(" ")})`);
    sampleLoad();
    const heartbeat = setInterval(() => {
        sampleLoad();
        const steps = [...inFlight].map(([name, since]) => `${name} ${elapsed(since).toFixed(0)}s`);
        log(`${label}: still running (${elapsed(started).toFixed(0)}s${steps.length ? `; in progress: ${steps.join(", ")}` : ""})`);
    }, HEARTBEAT_MS);
    let result: CliResult;
    try {
        result = await stack.run(args, { onOutput, ...(checkout ? { checkout } : {}) });
    } finally {
        clearInterval(heartbeat);
    }
    if (partial) lines.push({ t: elapsed(started), line: partial });
    sampleLoad();
    log(`${label}: ended in ${result.seconds.toFixed(1)}s (exit ${result.code})`);
    const find = (re: RegExp, pred: (m: RegExpMatchArray) => boolean = () => true) => lines.find((l) => { const m = l.line.match(re); return m !== null && pred(m); })?.t;
    return {
        result,
        lines,
        firstOutput: lines.find((l) => l.line.trim() !== "")?.t,
        stackRegistered: find(STEP_LINE, (m) => m[1] === "pulumi:pulumi:Stack") ?? find(/\spulumi:pulumi:Stack\s+\S+\s+running\b/),
        firstProviderOp: find(STEP_LINE, (m) => m[1]!.startsWith("pulumi-nodejs:dynamic")),
    };
}

// ------------------------------------------------------------------ the per-run operations

const OPERATIONS = ["fresh up", "no-op preview", "no-op up", "one-override up", "no-drift refresh", "repair up", "requirements up"] as const;
type OperationName = (typeof OPERATIONS)[number];

interface OperationResult extends HostDelta {
    operation: OperationName;
    exitCode: number;
    seconds: number;
    firstOutput?: number;
    stackRegistered?: number;
    firstProviderOp?: number;
    /** The CLI's resource step lines with their arrival times. */
    steps: TimedLine[];
    /** What a request loop inside the host saw during the operation (the one-override change). */
    requests?: Pick<RequestLoopResult, "requests" | "failed" | "maxWaitMs">;
}

interface RunResult {
    run: number;
    vm: string;
    vmStartSeconds: number;
    operations: OperationResult[];
}

interface Calibration {
    sessions: number;
    commands: number;
}

async function measure(vm: VmInfo, stack: TestStack, label: string, operation: OperationName, args: string[], before: Counters, checkout?: string): Promise<{ op: OperationResult; after: Counters; output: string }> {
    const cli = await timedCli(stack, `${label}: ${operation}`, args, checkout);
    const after = await readCounters(vm);
    const op: OperationResult = {
        operation,
        exitCode: cli.result.code,
        seconds: cli.result.seconds,
        firstOutput: cli.firstOutput,
        stackRegistered: cli.stackRegistered,
        firstProviderOp: cli.firstProviderOp,
        steps: cli.lines.filter((l) => STEP_LINE.test(l.line) || DONE_LINE.test(l.line)).map((l) => ({ t: l.t, line: l.line.trim().replace(/\s+/g, " ") })),
        ...hostDelta(before, after),
    };
    log(`${label}: ${operation}: ${op.sessions} SSH session(s), ${op.commands} remote command(s), ${op.restarts} start(s), ${op.reloads} daemon-reload(s)`);
    return { op, after, output: cli.result.stdout + cli.result.stderr };
}

/** The CLI's first diagnostic (`error: …` and the two lines after it), for a one-line summary. */
function firstDiagnostic(output: string): string {
    const lines = output.split("\n");
    const i = lines.findIndex((l) => /^\s+error: /.test(l));
    return i < 0 ? "" : lines.slice(i, i + 3).map((l) => l.trim()).join(" | ");
}

function mustSucceed(label: string, m: { op: OperationResult; output: string }): void {
    if (m.op.exitCode !== 0) {
        throw new Error(`${label}: ${m.op.operation} exited ${m.op.exitCode}: ${firstDiagnostic(m.output)}\n${m.output.split("\n").slice(-60).join("\n")}`);
    }
}

/**
 * One run; appends its record to `results` before the first operation so that a failed run still reports what it measured.
 * With `checkout` (`--before`), the operations run through that older checkout's `scripts/pulumi`, and the refresh
 * and repair step is left out (releases before this one could not read a host back).
 */
async function benchRun(run: number, runs: number, calibrate: boolean, results: RunResult[], checkout?: string): Promise<Calibration | undefined> {
    const label = checkout ? `before run ${run}/${runs}` : `run ${run}/${runs}`;
    const name = `bench-${process.pid}-${checkout ? "b" : "r"}${run}`;
    log(`${label}: starting VM ${name}`);
    let stack: TestStack | undefined;
    try {
        const vm = await startVm(name);
        log(`${label}: VM ${name} ready in ${vm.startSeconds.toFixed(1)}s`);
        const operations: OperationResult[] = [];
        results.push({ run, vm: name, vmStartSeconds: vm.startSeconds, operations });
        let calibration: Calibration | undefined;
        let counters = await readCounters(vm);
        if (calibrate) {
            // Two counting sessions back to back: what does the counting itself add?
            const again = await readCounters(vm);
            calibration = { sessions: again.sessions - counters.sessions, commands: again.commands - counters.commands };
            log(`${label}: counter check: one counting session adds ${calibration.sessions} sshd session(s) and ${calibration.commands} sudo command(s)`);
            counters = again;
        }
        log(`${label}: creating the stack`);
        stack = await newStack([{ name: "vm1", vm }]);

        // 1. fresh up → healthy
        const fresh = await measure(vm, stack, label, "fresh up", ["up", "--yes", "--skip-preview"], counters, checkout);
        operations.push(fresh.op);
        mustSucceed(label, fresh);
        await checkHealthy(vm);
        log(`${label}: /health answers 200 in the VM`);
        counters = await readCounters(vm); // the health check was a session of its own

        // 2. no-op preview and no-op up (a non-zero exit means changes were found: recorded and reported, not fatal)
        const preview = await measure(vm, stack, label, "no-op preview", ["preview", "--expect-no-changes"], counters, checkout);
        operations.push(preview.op);
        const noop = await measure(vm, stack, label, "no-op up", ["up", "--yes", "--skip-preview", "--expect-no-changes"], preview.after, checkout);
        operations.push(noop.op);

        // 3. one override
        await stack.setConfig({ overrides: { workers: { workers: 2 } } });
        // With a request loop inside the host (loopback /health, one connection per request, 30 s timeout): does the change
        // drop requests? Its own SSH sessions are outside the counted ones (counters read after it started, before it stops).
        const loop = await RequestLoop.start(rootShellOn(vm), { url: "http://127.0.0.1:8000/health", intervalMs: 50 });
        const override = await measure(vm, stack, label, "one-override up", ["up", "--yes", "--skip-preview"], await readCounters(vm), checkout);
        const requests = await loop.stop();
        override.op.requests = { requests: requests.requests, failed: requests.failed, maxWaitMs: requests.maxWaitMs };
        log(`${label}: one-override up: ${requests.requests} requests during it, ${requests.failed} failed, longest wait ${(requests.maxWaitMs / 1000).toFixed(1)} s`);
        operations.push(override.op);
        mustSucceed(label, override);
        await checkHealthy(vm, /--workers 2\b/);
        log(`${label}: /health answers 200 with --workers 2`);
        counters = await readCounters(vm);

        // 4. a refresh that finds nothing, then a hand edit of the unit repaired by up --refresh
        if (!checkout) {
            const refresh = await measure(vm, stack, label, "no-drift refresh", ["refresh", "--yes", "--skip-preview", "--expect-no-changes"], counters, checkout);
            operations.push(refresh.op);
            mustSucceed(label, refresh);
            const edit = await vmExec(vm, `sed -i 's/^RestartSec=5$/RestartSec=30/' /etc/systemd/system/${UNIT} && systemctl daemon-reload`, true);
            if (edit.code !== 0) throw new Error(`${label}: editing the unit failed: ${edit.stderr}`);
            const repair = await measure(vm, stack, label, "repair up", ["up", "--refresh", "--yes", "--skip-preview"], await readCounters(vm), checkout);
            operations.push(repair.op);
            mustSucceed(label, repair);
            await checkHealthy(vm);
            log(`${label}: the hand edit is repaired and /health answers 200`);
            counters = await readCounters(vm);
        }

        // 5. requirements only: a new release
        await stack.setConfig({ app: { sourceDir: "demo-app", requirements: MORE_REQUIREMENTS } });
        const reqs = await measure(vm, stack, label, "requirements up", ["up", "--yes", "--skip-preview"], counters, checkout);
        operations.push(reqs.op);
        mustSucceed(label, reqs);
        await checkHealthy(vm);
        log(`${label}: /health answers 200 after the requirements change`);

        return calibration;
    } finally {
        dropStack(stack);
        stopVm(name);
        log(`${label}: VM ${name} stopped`);
    }
}

// ------------------------------------------------------------------ installers: pip (before uv) vs uv

interface InstallerCompareResult {
    /** Fresh up and requirements-only up with `releases.installer: pip`, on a fresh VM. */
    pip: OperationResult[];
}

/** Steps 1 and 4 with the pip installer on a fresh VM (the uv figures are the runs above). */
async function installerCompare(): Promise<InstallerCompareResult> {
    const label = "installer pip";
    const name = `bench-${process.pid}-pip`;
    let stack: TestStack | undefined;
    const pip: OperationResult[] = [];
    try {
        const vm = await startVm(name);
        stack = await newStack([{ name: "vm1", vm }], { releases: { installer: "pip" } });
        let counters = await readCounters(vm);
        const fresh = await measure(vm, stack, label, "fresh up", ["up", "--yes", "--skip-preview"], counters);
        pip.push(fresh.op);
        mustSucceed(label, fresh);
        await checkHealthy(vm);
        counters = await readCounters(vm);
        await stack.setConfig({ app: { sourceDir: "demo-app", requirements: MORE_REQUIREMENTS } });
        const reqs = await measure(vm, stack, label, "requirements up", ["up", "--yes", "--skip-preview"], counters);
        pip.push(reqs.op);
        mustSucceed(label, reqs);
        await checkHealthy(vm);
        return { pip };
    } finally {
        dropStack(stack);
        stopVm(name);
        log(`${label}: VM ${name} stopped`);
    }
}

// ------------------------------------------------------------------ 1 host vs 3 hosts

interface HostsCompareResult {
    oneHostSeconds: number;
    oneHostSource: string;
    threeHostSeconds: number;
    ratio: number;
    vmStartSeconds: number;
    exitCode: number;
    firstProviderOp?: number;
    perHost: ({ host: string; prepared?: number; staged?: number; activationStarted?: number; activated?: number } & HostDelta)[];
    steps: TimedLine[];
}

async function hostsCompare(oneHostSeconds: number, oneHostSource: string): Promise<HostsCompareResult> {
    const names = [1, 2, 3].map((i) => `bench-${process.pid}-h${i}`);
    let stack: TestStack | undefined;
    try {
        log(`hosts compare: starting 3 VMs in parallel (${names.join(", ")})`);
        const started = Date.now();
        const settled = await Promise.allSettled(names.map(startVm));
        const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
        if (failed) throw failed.reason;
        const vms = settled.map((s) => (s as PromiseFulfilledResult<BenchVm>).value);
        const vmStartSeconds = elapsed(started);
        log(`hosts compare: 3 VMs ready in ${vmStartSeconds.toFixed(1)}s`);
        stack = await newStack(vms.map((vm, i) => ({ name: `vm${i + 1}`, vm })));
        const before = await Promise.all(vms.map(readCounters));
        const cli = await timedCli(stack, "hosts compare: fresh up, 3 hosts", ["up", "--yes", "--skip-preview"]);
        if (cli.result.code !== 0) {
            throw new Error(`3-host up exited ${cli.result.code}:\n${(cli.result.stdout + cli.result.stderr).split("\n").slice(-60).join("\n")}`);
        }
        const after = await Promise.all(vms.map(readCounters));
        await Promise.all(vms.map((vm) => checkHealthy(vm)));
        log("hosts compare: /health answers 200 in all 3 VMs");
        const perHost = vms.map((_vm, i) => {
            const host = `vm${i + 1}`;
            const stem = `amarktai-api-${hostKeyFingerprint(vms[i]!.hostKey)}-`;
            const at = (re: RegExp, kind: string) => cli.lines.filter((l) => re.test(l.line) && l.line.includes(`:${kind} ${stem}`)).map((l) => l.t);
            const last = (xs: number[]) => (xs.length ? Math.max(...xs) : undefined);
            return {
                host,
                prepared: last(at(DONE_LINE, "HostPrepare")),
                staged: last(at(DONE_LINE, "HostFile")),
                activationStarted: last(at(STEP_LINE, "ServiceActivation")),
                activated: last(at(DONE_LINE, "ServiceActivation")),
                ...hostDelta(before[i]!, after[i]!),
            };
        });
        const threeHostSeconds = cli.result.seconds;
        return {
            oneHostSeconds,
            oneHostSource,
            threeHostSeconds,
            ratio: threeHostSeconds / oneHostSeconds,
            vmStartSeconds,
            exitCode: cli.result.code,
            firstProviderOp: cli.firstProviderOp,
            perHost,
            steps: cli.lines.filter((l) => STEP_LINE.test(l.line) || DONE_LINE.test(l.line)).map((l) => ({ t: l.t, line: l.line.trim().replace(/\s+/g, " ") })),
        };
    } finally {
        dropStack(stack);
        for (const n of names) stopVm(n);
        log(`hosts compare: VMs stopped`);
    }
}

// ------------------------------------------------------------------ machine facts and program load time

interface Machine {
    nproc: number;
    cpuModel: string;
    memoryGiB: number;
    kernel: string;
    accel: string;
    accelSource: string;
    kvmDevice: boolean;
    guest: string;
    node: string;
    pulumi: string;
    programHost: string;
    revision: string;
    otherVmsAtStart: string[];
    loadAtStart: number[];
}

function sh(command: string): string {
    try {
        return execFileSync("bash", ["-c", command], { cwd: REPO, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    } catch {
        return "";
    }
}

function machineFacts(): Machine {
    const cpuinfo = fs.readFileSync("/proc/cpuinfo", "utf8");
    const meminfo = fs.readFileSync("/proc/meminfo", "utf8");
    const memKiB = Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0);
    const paths = Object.fromEntries(
        sh(`bash ${JSON.stringify(VM_SH)} paths`)
            .split("\n")
            .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    ) as Record<string, string>;
    // The QEMU arguments recorded with the image (every VM is started from that very file).
    let accel = "unknown";
    let accelSource = "no recorded QEMU arguments found";
    let guest = "unknown";
    const argsFile = paths.image_dir ? path.join(paths.image_dir, "qemu-args") : "";
    if (argsFile && fs.existsSync(argsFile)) {
        const args = fs.readFileSync(argsFile, "utf8").split("\n");
        const after = (flag: string) => {
            const i = args.indexOf(flag);
            return i >= 0 ? args[i + 1] : undefined;
        };
        const a = after("-accel") ?? (after("-machine") ?? "").match(/accel=([^,]+)/)?.[1] ?? (args.includes("-enable-kvm") ? "kvm" : undefined);
        if (a) accel = a;
        accelSource = `the image's recorded QEMU arguments (vm/${path.basename(paths.image_dir!)}/qemu-args)`;
        guest = `${after("-smp") ?? "?"} vCPU, ${after("-m") ?? "?"} MiB, -cpu ${after("-cpu") ?? "?"}`;
    }
    const others = otherVms();
    return {
        nproc: Number(sh("nproc")) || os.cpus().length,
        cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
        memoryGiB: memKiB / 1024 / 1024,
        kernel: `${os.type()} ${os.release()}`,
        accel,
        accelSource,
        kvmDevice: fs.existsSync("/dev/kvm"),
        guest,
        node: process.version,
        pulumi: sh("pulumi version") || "unknown",
        programHost: sh("command -v pulumi-language-nodejs") && !process.env.AMARKTAI_FORCE_INLINE ? "Node.js language host (pulumi-language-nodejs)" : "served in-process by scripts/pulumi (inline program; no pulumi-language-nodejs)",
        revision: `${sh("git rev-parse --short HEAD") || "unknown"}${sh("git status --porcelain --untracked-files=no") ? " with uncommitted changes in the working tree" : ""}`,
        otherVmsAtStart: others,
        loadAtStart: os.loadavg().map((x) => Number(x.toFixed(2))),
    };
}

async function timeNode(code: string, times: number): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < times; i++) {
        const t = process.hrtime.bigint();
        const r = await exec(process.execPath, ["-e", code]);
        if (r.code !== 0) throw new Error(`node -e ${code} failed:\n${r.stderr}`);
        out.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    return out;
}

// ------------------------------------------------------------------ report

function accelText(m: Machine): string {
    const kind = /\bkvm\b/.test(m.accel) ? "KVM (hardware virtualisation)" : /\btcg\b/.test(m.accel) ? "QEMU software emulation (TCG)" : m.accel;
    return `${kind}: -accel ${m.accel}, read from ${m.accelSource}; /dev/kvm ${m.kvmDevice ? "exists on this machine but is not what the VMs use" : "absent on this machine"}`;
}

function report(opts: Options, m: Machine, importMs: number[], bareNodeMs: number[], runs: RunResult[], calibration: Calibration | undefined, hosts: HostsCompareResult | undefined, installers: InstallerCompareResult | undefined, error?: string, beforeRuns: RunResult[] = []): string {
    const out: string[] = [];
    const p = (s = "") => out.push(s);
    p(`amarktai-infra benchmark (${new Date().toISOString()}, total ${elapsed().toFixed(0)}s)`);
    p();
    p("Machine");
    p(`  cores (nproc)    ${m.nproc}`);
    p(`  CPU              ${m.cpuModel}`);
    p(`  memory           ${m.memoryGiB.toFixed(1)} GiB`);
    p(`  kernel           ${m.kernel}`);
    p(`  test VMs         ${accelText(m)}`);
    p(`  guest            ${m.guest}`);
    p(`  toolchain        node ${m.node}, pulumi ${m.pulumi}; program ${m.programHost}`);
    p(`  revision         ${m.revision}`);
    p(`  other load       ${m.otherVmsAtStart.length ? `other VMs running at start: ${m.otherVmsAtStart.join(", ")}` : "no other VMs running at start"}; ` +
        `seen during the operations: ${otherVmsSeen.size ? [...otherVmsSeen].join(", ") : "none"}`);
    p(`  load average     1-min ${m.loadAtStart[0]} at start; sampled during the operations (every ${HEARTBEAT_MS / 1000}s and at each start/end): ${stat(loadSamples, 1)}`);
    p();

    const n = runs.length;
    const complete = runs.filter((r) => r.operations.length === OPERATIONS.length).length;
    const ops = (name: OperationName) => runs.map((r) => r.operations.find((o) => o.operation === name)).filter((o): o is OperationResult => o !== undefined);
    p(`Per operation: median (min–max) over ${n} run${n === 1 ? "" : "s"}${complete < opts.runs ? ` (${complete} complete, ${opts.runs} requested)` : ""}; each run on a fresh VM with a new stack`);
    p("  wall = CLI process start to exit; host counts from the VM's journal (SSH sessions exclude the counting session)");
    p();
    const rows = OPERATIONS.map((name) => {
        const o = ops(name);
        return [
            name,
            stat(o.map((x) => x.seconds), 1),
            stat(o.map((x) => x.firstProviderOp), 1),
            stat(o.map((x) => x.sessions), 0),
            stat(o.map((x) => x.commands), 0),
            stat(o.map((x) => x.restarts), 0),
            stat(o.map((x) => x.reloads), 0),
        ];
    });
    p(table(["operation", "wall s", "to 1st resource op s", "SSH sessions", "remote commands", "service restarts", "daemon-reloads"], rows).replace(/^/gm, "  "));
    p(`  VM restore (vm.sh start, not part of the operations): ${stat(runs.map((r) => r.vmStartSeconds), 1)} s`);
    p("  remote commands = `sudo` invocations of the login user (journal COMMAND= lines); the counting session runs as root without sudo" +
        (calibration ? ` (checked: a counting session alone added ${calibration.sessions} session and ${calibration.commands} commands)` : ""));
    p();

    if (opts.before) {
        const beforeOps = (name: OperationName) => beforeRuns.map((r) => r.operations.find((o) => o.operation === name)).filter((o): o is OperationResult => o !== undefined);
        const rev = sh(`git -C ${JSON.stringify(opts.before)} rev-parse --short HEAD`) || path.basename(opts.before);
        p(`Before (${rev}, ${opts.before}) and after (${m.revision}): the same steps, same machine, this run; median (min–max) over ${beforeRuns.length} run(s) before`);
        const cell = (o: OperationResult[]) => (o.length ? `${stat(o.map((x) => x.seconds), 1)}  [${stat(o.map((x) => x.sessions), 0)} ssh, ${stat(o.map((x) => x.restarts), 0)} restart]` : "—");
        p(table(["operation", "before s", "after s"], OPERATIONS.map((name) => [name, cell(beforeOps(name)), cell(ops(name))])).replace(/^/gm, "  "));
        p("  (before has no refresh/repair step: releases before this one could not read a host back)");
        const loopCell = (o: OperationResult[]) => {
            const seen = o.map((x) => x.requests).filter((x): x is NonNullable<OperationResult["requests"]> => x !== undefined);
            return seen.length ? seen.map((x) => `${x.failed} failed of ${x.requests}, longest wait ${(x.maxWaitMs / 1000).toFixed(1)} s`).join("; ") : "—";
        };
        p("  requests during the one-override up (a loop inside the host on /health, 50 ms apart, 30 s timeout):");
        p(`    before: ${loopCell(beforeOps("one-override up"))}`);
        p(`    after:  ${loopCell(ops("one-override up"))}`);
        p();
    }

    const fresh = ops("fresh up");
    const override = ops("one-override up");
    const preview = ops("no-op preview");
    p("Program startup");
    p("  reported: `up` process start → arrival of the CLI's first step line for a provider resource (the output is");
    p("  streamed and timestamped as it arrives; the CLI's own \"(0s)\" stamps are whole seconds)");
    p(`    fresh up           ${stat(fresh.map((o) => o.firstProviderOp), 1)} s   (first output ${stat(fresh.map((o) => o.firstOutput), 1)} s, stack registered ${stat(fresh.map((o) => o.stackRegistered), 1)} s)`);
    p(`    one-override up    ${stat(override.map((o) => o.firstProviderOp), 1)} s   (first output ${stat(override.map((o) => o.firstOutput), 1)} s, stack registered ${stat(override.map((o) => o.stackRegistered), 1)} s)`);
    p(`  for comparison, a whole no-op preview (program run and every diff, nothing sent to a host): ${stat(preview.map((o) => o.seconds), 1)} s`);
    p(`  program module load, node -e 'require("./dist/components/pulumi/program")', median of ${importMs.length}: ${median(importMs).toFixed(0)} ms ` +
        `(min–max ${Math.min(...importMs).toFixed(0)}–${Math.max(...importMs).toFixed(0)}); bare \`node -e 0\`: ${median(bareNodeMs).toFixed(0)} ms`);
    p();

    if (hosts) {
        p("Hosts: one stack with 1 host vs one stack with 3 hosts (fresh up; 3-host measured ONCE, runs are expensive)");
        p(`  1 host    ${hosts.oneHostSeconds.toFixed(1)} s   (${hosts.oneHostSource})`);
        p(`  3 hosts   ${hosts.threeHostSeconds.toFixed(1)} s   (VMs vm1..vm3 started in parallel in ${hosts.vmStartSeconds.toFixed(1)}s, not included; first provider step at ${hosts.firstProviderOp?.toFixed(1) ?? "—"} s)`);
        p(`  ratio     ${hosts.ratio.toFixed(2)} (3-host time / 1-host time)`);
        const f = (x?: number) => x?.toFixed(1) ?? "—";
        p("    (seconds from the up's start, from the CLI's step lines)");
        for (const h of hosts.perHost) {
            const idle = h.staged !== undefined && h.activationStarted !== undefined ? ` (waited ${Math.max(0, h.activationStarted - h.staged).toFixed(1)} s after staging)` : "";
            p(`    ${h.host}: prepared ${f(h.prepared)}, files staged ${f(h.staged)}, activation ${f(h.activationStarted)}–${f(h.activated)}${idle}; ` +
                `${h.sessions} SSH session(s), ${h.commands} remote commands, ${h.restarts} start(s), ${h.reloads} daemon-reload(s)`);
        }
        p(`  the 3 VMs share this machine's ${m.nproc} cores, each emulating ${m.guest.split(",")[0]}, so the ratio includes CPU contention between the guests`);
        p();
    } else if (opts.hostsCompare) {
        p("Hosts comparison: not run (the benchmark stopped before it)");
        p();
    }

    if (installers) {
        const uvOps = (name: OperationName) => ops(name).map((o) => o.seconds);
        const pipOp = (name: OperationName) => installers.pip.find((o) => o.operation === name)?.seconds;
        p("Installers: how a release's venv is built, same machine, one run each (fresh VMs)");
        p("  before = `releases.installer: pip` (apt's python3-venv, `python3 -m venv`, pip: how venvs were built before uv)");
        p("  after  = `releases.installer: uv` (default; the runs above)");
        p(table(["operation", "before (pip) s", "after (uv) s"], (["fresh up", "requirements up"] as const).map((name) => [name, pipOp(name)?.toFixed(1) ?? "—", stat(uvOps(name), 1)])).replace(/^/gm, "  "));
        p();
    } else if (opts.installerCompare) {
        p("Installers comparison: not run (the benchmark stopped before it)");
        p();
    }

    // Per-operation findings, grouped across runs: "runs 1, 2, fresh up: …".
    const byFinding = new Map<string, number[]>();
    const finding = (run: number, text: string) => byFinding.set(text, [...(byFinding.get(text) ?? []), run]);
    for (const r of runs) {
        for (const o of r.operations) {
            const f = (text: string) => finding(r.run, `${o.operation}: ${text}`);
            if (o.exitCode !== 0) f(`the CLI exited ${o.exitCode}${o.operation.startsWith("no-op") ? " (--expect-no-changes: it found changes)" : ""}`);
            if (o.operation.startsWith("no-op") && (o.sessions || o.commands || o.restarts || o.reloads)) {
                f(`a no-op touched the host: ${o.sessions} session(s), ${o.commands} command(s), ${o.restarts} start(s), ${o.reloads} reload(s)`);
            }
            if (o.operation === "requirements up" && o.restarts !== 1) f(`${o.restarts} service starts (expected 1: one switch to the new release)`);
            if (o.operation === "one-override up") {
                if (o.sessions > 3) f(`${o.sessions} SSH sessions (more than 3)`);
                if (o.restarts !== 1) f(`${o.restarts} service starts (expected 1)`);
                if (o.reloads !== 1) f(`${o.reloads} daemon-reloads (expected 1)`);
            }
            if (o.operation === "fresh up" && o.sessions !== 1) f(`${o.sessions} SSH sessions for one host (expected one pooled connection)`);
            if (o.operation === "fresh up" && o.reloads !== 1) {
                f(`${o.reloads} daemon-reloads, not 1 (the activation runs one; the first \`systemctl enable\` of the unit makes systemd reload once more)`);
            }
        }
    }
    const notes = [...byFinding].map(([text, rs]) => `run${rs.length > 1 ? "s" : ""} ${rs.join(", ")}, ${text}`);
    if (hosts) {
        for (const h of hosts.perHost) {
            if (h.sessions !== 1) {
                const idle = h.staged !== undefined && h.activationStarted !== undefined ? `; it waited ${Math.max(0, h.activationStarted - h.staged).toFixed(1)} s between staging and activation` : "";
                notes.push(`hosts compare, ${h.host}: ${h.sessions} SSH sessions (expected 1)${idle}`);
            }
        }
        const reloads = [...new Set(hosts.perHost.map((h) => h.reloads))];
        if (reloads.some((x) => x !== 1)) notes.push(`hosts compare: ${reloads.join("/")} daemon-reloads per host in the 3-host fresh up (as in the 1-host fresh up)`);
    }
    if (calibration && (calibration.sessions !== 1 || calibration.commands !== 0)) {
        notes.push(`counter check: the counting session added ${calibration.sessions} sessions and ${calibration.commands} commands (expected 1 and 0): the figures above are off by that`);
    }
    const others = new Set([...m.otherVmsAtStart, ...otherVmsSeen]);
    if (others.size) notes.push(`other VMs ran on this machine during the benchmark (${[...others].join(", ")}); wall times include that contention`);
    if (error) notes.push(`the benchmark FAILED: ${error.split("\n")[0]} (details on stderr)`);
    p("Observations");
    for (const note of notes.length ? notes : ["nothing unexpected in the counts"]) p(`  - ${note}`);
    return out.join("\n") + "\n";
}

// ------------------------------------------------------------------ main

/** This process's descendants (the CLI runs it started), by pid from /proc, deepest first. */
function descendants(root: number): number[] {
    const children = new Map<number, number[]>();
    for (const entry of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        try {
            const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
            const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
            children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
        } catch {
            // the process exited meanwhile
        }
    }
    const out: number[] = [];
    const walk = (pid: number) => {
        for (const c of children.get(pid) ?? []) {
            walk(c);
            out.push(c);
        }
    };
    walk(root);
    return out;
}

function cleanupAll(): void {
    for (const s of [...liveStacks]) dropStack(s);
    for (const name of [...startedVms]) stopVm(name);
    for (const name of [...liveContainers]) spawnSync("bash", [path.join(REPO, "tools", "vm", "ct.sh"), "stop", name], { stdio: ["ignore", "ignore", "pipe"] });
}

async function main(): Promise<number> {
    const opts = parseArgs(process.argv.slice(2));
    for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
        process.on(sig, () => {
            log(`${sig}: stopping the benchmark's CLI runs and VMs (${[...startedVms].join(", ") || "none"})`);
            const pids = descendants(process.pid);
            for (const pid of pids) {
                try {
                    process.kill(pid, "SIGTERM");
                } catch {
                    // already gone
                }
            }
            // Let them exit (a cancelled update still writes its state) before the stack directories go.
            const alive = (pid: number) => fs.existsSync(`/proc/${pid}`) && !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
            const deadline = Date.now() + 10_000;
            while (Date.now() < deadline && pids.some((pid) => { try { return alive(pid); } catch { return false; } })) spawnSync("sleep", ["0.2"]);
            cleanupAll();
            process.exit(code);
        });
    }
    if (opts.highPriority) favour();
    const machine = machineFacts();
    if (opts.hostCounts) return hostsMain(opts, opts.hostCounts, machine);
    log(`benchmark: ${opts.runs} run(s)${opts.hostsCompare ? " + 1-vs-3-host comparison" : ""}`);
    if (machine.otherVmsAtStart.length) log(`note: other VMs are running (${machine.otherVmsAtStart.join(", ")}); they share the CPU`);

    log("timing the program's module load (5 times)");
    const bareNodeMs = await timeNode("0", 5);
    const importMs = await timeNode('require("./dist/components/pulumi/program")', 5);

    const runs: RunResult[] = [];
    const beforeRuns: RunResult[] = [];
    let calibration: Calibration | undefined;
    let hosts: HostsCompareResult | undefined;
    let installers: InstallerCompareResult | undefined;
    let error: string | undefined;
    try {
        for (let r = 1; r <= opts.runs; r++) {
            const c = await benchRun(r, opts.runs, r === 1, runs);
            calibration ??= c;
        }
        if (opts.before) {
            for (let r = 1; r <= opts.runs; r++) await benchRun(r, opts.runs, false, beforeRuns, opts.before);
        }
        if (opts.hostsCompare) {
            const fresh = runs.map((r) => r.operations[0]!.seconds);
            // (every run got here complete: a failed operation stops the benchmark)
            const source = runs.length === 1
                ? "the fresh up of run 1 above: one stack, one host vm1, fresh VM"
                : `median of the ${runs.length} fresh ups above: each one stack, one host vm1, fresh VM`;
            hosts = await hostsCompare(median(fresh), source);
        }
        if (opts.installerCompare) installers = await installerCompare();
    } catch (e) {
        error = e instanceof Error ? e.message : String(e);
        log(`FAILED: ${error}`);
    } finally {
        cleanupAll();
    }

    process.stdout.write(report(opts, machine, importMs, bareNodeMs, runs, calibration, hosts, installers, error, beforeRuns));
    if (opts.json) {
        fs.writeFileSync(opts.json, JSON.stringify({ options: opts, machine, loadSamples, otherVmsSeen: [...otherVmsSeen], programLoadMs: importMs, bareNodeMs, calibration, runs, beforeRuns, hostsCompare: hosts, installerCompare: installers, error }, null, 2) + "\n");
        log(`raw results written to ${opts.json}`);
    }
    return error ? 1 : 0;
}

/**
 * `--high-priority`: nice -19 for this process and what it starts, in a
 * scheduling group (autogroup) of its own; without the group, nice only ranks
 * processes within their own session's group, and the test VMs run in others.
 */
function favour(): void {
    try {
        fs.writeFileSync("/proc/self/autogroup", "-19");
        os.setPriority(0, -19);
        log("running at nice -19 in a scheduling group of its own (--high-priority)");
    } catch (e) {
        usageError(`--high-priority needs root (CAP_SYS_NICE) and /proc/self/autogroup: ${(e as Error).message}`);
    }
}

/** `--hosts`: the N-host benchmark, this checkout (and `--before`) in one run. */
async function hostsMain(opts: Options, counts: number[], m: Machine): Promise<number> {
    const trees = [
        ...(opts.before ? [{ label: `before (${sh(`git -C ${JSON.stringify(opts.before)} rev-parse --short HEAD`) || path.basename(opts.before)})`, repo: opts.before }] : []),
        { label: `after (${m.revision})`, repo: REPO },
    ];
    log(`N-host benchmark: ${counts.join(", ")} hosts; ${trees.map((t) => t.label).join(" vs ")}`);
    sampleLoad();
    const heartbeat = setInterval(sampleLoad, HEARTBEAT_MS);
    let rows;
    try {
        rows = await hostsBenchmark({ counts, realMax: opts.realMax, trees, log });
    } finally {
        clearInterval(heartbeat);
    }
    sampleLoad();
    const out = [
        `amarktai-infra N-host benchmark (${new Date().toISOString()}, total ${elapsed().toFixed(0)}s)`,
        `  machine: ${m.nproc} cores (${m.cpuModel}), ${m.memoryGiB.toFixed(1)} GiB; node ${m.node}, pulumi ${m.pulumi}; program ${m.programHost}`,
        `  priority: ${opts.highPriority ? "nice -19 in a scheduling group of its own (--high-priority)" : "normal"}; load average (1-min) at start ${m.loadAtStart[0]}, during the run ${stat(loadSamples, 1)}; other VMs: ${[...new Set([...m.otherVmsAtStart, ...otherVmsSeen])].join(", ") || "none"}`,
        "",
        hostsReport(rows, opts.realMax),
    ];
    process.stdout.write(out.join("\n"));
    if (opts.json) {
        fs.writeFileSync(opts.json, JSON.stringify({ options: opts, machine: m, loadSamples, rows }, null, 2) + "\n");
        log(`raw results written to ${opts.json}`);
    }
    return rows.some((r) => r.error) ? 1 : 0;
}

main().then(
    (code) => process.exit(code),
    (e: Error) => {
        cleanupAll();
        process.stderr.write(`bench: ${e.stack ?? e.message}\n`);
        process.exit(1);
    },
);
