/**
 * The operator command's scripts (`status`, `logs`, `restart`): read-only
 * but for `restart`, run as root on each host. What they print is JSON the
 * command formats; no `.env` value ever leaves the host (journal messages
 * are masked on the host, as the activation's journal excerpt is).
 */
import { OperatedService } from "../model";
import { ENV_SECRETS_PY, redactFunction } from "./redact";
import { JOURNAL_EXCERPT_FUNCTION, PRELUDE, bashArray, healthGateLines, shellVariables } from "./scripts";
import { quoteScript, shellWords } from "./shell";

/** The service notes' restart-loop warnings: lines that must never appear in the journal after a restart. */
export const RESTART_WARNINGS: readonly string[] = ["never awaited", "SchedulerNotRunningError", "Application shutdown failed", "Unclosed client session"];

/** The status of the service on one host, as `statusScript` prints it. */
export interface HostStatus {
    readonly load: string;
    readonly active: string;
    readonly sub: string;
    /** `enabled`, `disabled`, … (`systemctl is-enabled`). */
    readonly enabled: string;
    readonly failed: boolean;
    /** 0 when no main process runs. */
    readonly mainPid: number;
    /** Seconds since the unit became active, or null when it is not. */
    readonly uptimeSec: number | null;
    /** Automatic restarts by systemd since the unit was last started by hand or by a deploy. */
    readonly restarts: number;
    /** The unit's cgroup memory use in bytes, or null when not accounted. */
    readonly memoryBytes: number | null;
    /** CPU time used by the unit since it started, in seconds, or null. */
    readonly cpuSec: number | null;
    /** The live release's id (its directory under the releases directory), or null. */
    readonly release: string | null;
    /** The host's last activation (audit log), or null. */
    readonly lastActivation: { readonly time: string; readonly outcome: string; readonly release: string | null; readonly owner: string } | null;
    /** `/health` answered 200. */
    readonly healthy: boolean;
    /** Who listens on the health port: the unit itself, nobody, or another process (named). */
    readonly listener: { readonly state: "unit" | "none" | "other"; readonly detail: string };
}

/** Gathers the status as JSON: argv is the listener check's result (rc, text), health (0/1), then the paths. */
const STATUS_PY = String.raw`
import json, os, subprocess, sys, time
listener_rc, listener_text, health_rc, unit, releases, audit_log = sys.argv[1:7]
props = {}
out = subprocess.run(['systemctl', 'show', unit, '-p', 'LoadState,ActiveState,SubState,MainPID,NRestarts,ActiveEnterTimestampMonotonic,MemoryCurrent,CPUUsageNSec'],
                     capture_output=True, text=True).stdout
for line in out.splitlines():
    k, _, v = line.partition('=')
    props[k] = v
def number(v):
    try:
        n = int(v)
    except ValueError:
        return None
    return None if n >= 2**64 - 1 else n
enabled = subprocess.run(['systemctl', 'is-enabled', unit], capture_output=True, text=True).stdout.strip() or 'unknown'
failed = subprocess.run(['systemctl', 'is-failed', '--quiet', unit]).returncode == 0
entered = number(props.get('ActiveEnterTimestampMonotonic', ''))
active = props.get('ActiveState', 'unknown')
uptime = round(time.monotonic() - entered / 1e6, 1) if active == 'active' and entered else None
cpu = number(props.get('CPUUsageNSec', ''))
memory = number(props.get('MemoryCurrent', ''))
if active == 'active' and (memory is None or cpu is None):
    # No accounting by systemd (a legacy or hybrid cgroup layout): add up the unit's live processes instead.
    group = subprocess.run(['systemctl', 'show', unit, '-p', 'ControlGroup', '--value'], capture_output=True, text=True).stdout.strip()
    pids = set()
    for root in ('/sys/fs/cgroup', '/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified'):
        if not group:
            break
        for d, _, files in os.walk(root + group):
            if 'cgroup.procs' in files:
                with open(os.path.join(d, 'cgroup.procs')) as f:
                    pids.update(int(p) for p in f.read().split())
    rss, ticks = 0, 0
    page, hz = os.sysconf('SC_PAGE_SIZE'), os.sysconf('SC_CLK_TCK')
    for pid in pids:
        try:
            with open('/proc/%d/statm' % pid) as f:
                rss += int(f.read().split()[1]) * page
            with open('/proc/%d/stat' % pid) as f:
                fields = f.read().rsplit(')', 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    if pids:
        memory = memory if memory is not None else rss
        cpu = cpu if cpu is not None else ticks * 10**9 // hz
release = None
try:
    target = os.readlink(os.path.join(releases, 'current'))
    release = os.path.basename(target.rstrip('/'))
except OSError:
    pass
last = None
try:
    fd = os.open(audit_log, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, 'rb') as f:
        lines = [l for l in f.read().decode('utf-8', 'replace').splitlines() if l.strip()]
    if lines:
        r = json.loads(lines[-1])
        last = {'time': r.get('time', ''), 'outcome': r.get('outcome', ''), 'release': r.get('release'), 'owner': r.get('owner', '')}
except (OSError, ValueError):
    pass
state = {'0': 'unit', '2': 'none'}.get(listener_rc, 'other')
print(json.dumps({
    'load': props.get('LoadState', 'unknown'), 'active': active, 'sub': props.get('SubState', 'unknown'),
    'enabled': enabled, 'failed': failed, 'mainPid': number(props.get('MainPID', '0')) or 0,
    'uptimeSec': uptime, 'restarts': number(props.get('NRestarts', '0')) or 0,
    'memoryBytes': memory, 'cpuSec': None if cpu is None else round(cpu / 1e9, 2),
    'release': release, 'lastActivation': last, 'healthy': health_rc == '0',
    'listener': {'state': state, 'detail': listener_text.strip()},
}, sort_keys=True))
`;

function serviceVariables(service: OperatedService): string[] {
    return [...PRELUDE, ...healthGateLines(service), ...shellVariables({ RELEASES: service.releasesDir, AUDIT_LOG: service.auditLog })];
}

/** Prints one {@link HostStatus} as JSON. Changes nothing. */
export function statusScript(service: OperatedService): string {
    return [
        ...serviceVariables(service),
        // Probed only while the unit runs: with socket activation a request to a stopped service would start it.
        'health=1; if systemctl is-active --quiet "$UNIT"; then health=0; health_ok || health=1; fi',
        "listener_rc=0; listener=$(listener_check 2>&1) || listener_rc=$?",
        `python3 -c ${quoteScript(STATUS_PY)} "$listener_rc" "$listener" "$health" "$UNIT" "$RELEASES" "$AUDIT_LOG"`,
    ].join("\n") + "\n";
}

/** Which journal lines `logs` reads. */
export interface JournalQuery {
    /** The newest N lines (`-n`); with `follow`, where following starts. */
    readonly lines?: number;
    /** journalctl's `--since` (e.g. `10 minutes ago`, `2026-12-06 10:00`). */
    readonly since?: string;
    /** journalctl's `--until`. */
    readonly until?: string;
    /** Keep printing new lines until stopped (`-f`). */
    readonly follow?: boolean;
}

/** One journal line as `logs` gets it from a host: its message masked. */
export interface JournalRecord {
    /** Microseconds since the epoch. */
    readonly realtimeUsec: number;
    readonly identifier: string;
    readonly pid: number | null;
    /** syslog priority, 0 (emerg) to 7 (debug). */
    readonly priority: number | null;
    readonly message: string;
}

/**
 * Runs journalctl (argv after `--`) with JSON output and prints one compact
 * {@link JournalRecord} per line, flushed at once (for `-f`), every `.env`
 * value of the env file (argv[1]) in a message masked as `[secret KEY]`.
 */
const JOURNAL_PY = [
    "import json, os, subprocess, sys, threading",
    ...ENV_SECRETS_PY.split("\n"),
    "env_file, args = sys.argv[1], sys.argv[3:]",
    "ordered = env_secrets([env_file], ['*'])",
    "def text(v):",
    "    if isinstance(v, list):",
    "        return bytes(v).decode('utf-8', 'replace')",
    "    return '' if v is None else str(v)",
    "def num(v):",
    "    try:",
    "        return int(text(v))",
    "    except ValueError:",
    "        return None",
    "proc = subprocess.Popen(['journalctl', '--no-pager', '-o', 'json'] + args, stdout=subprocess.PIPE)",
    // Following: the operator stopping (the SSH channel, our stdin, closes) ends journalctl at once, not at its next line.
    "if '-f' in args:",
    "    def watch():",
    "        sys.stdin.buffer.read()",
    "        proc.terminate()",
    "        os._exit(0)",
    "    threading.Thread(target=watch, daemon=True).start()",
    "try:",
    "    for raw in proc.stdout:",
    "        try:",
    "            e = json.loads(raw)",
    "        except ValueError:",
    "            continue",
    "        message = mask(text(e.get('MESSAGE')), ordered)",
    "        sys.stdout.write(json.dumps({'realtimeUsec': num(e.get('__REALTIME_TIMESTAMP')) or 0, 'identifier': text(e.get('SYSLOG_IDENTIFIER') or e.get('_COMM')),",
    "                                     'pid': num(e.get('_PID')), 'priority': num(e.get('PRIORITY')), 'message': message}) + '\\n')",
    "        sys.stdout.flush()",
    "except (BrokenPipeError, KeyboardInterrupt):",
    "    proc.terminate()",
    "    os._exit(0)",
    "sys.exit(proc.wait())",
].join("\n");

/** journalctl's arguments for `query` (the unit's own lines). */
export function journalArgs(unitName: string, query: JournalQuery): string[] {
    return [
        "-u",
        unitName,
        ...(query.lines !== undefined ? ["-n", String(query.lines)] : []),
        ...(query.since !== undefined ? [`--since=${query.since}`] : []),
        ...(query.until !== undefined ? [`--until=${query.until}`] : []),
        ...(query.follow ? ["-f"] : []),
    ];
}

/** Prints the unit's journal lines as {@link JournalRecord}s, one JSON object per line. Changes nothing. */
export function journalScript(service: OperatedService, query: JournalQuery): string {
    return [
        ...PRELUDE,
        `exec python3 -u -c ${quoteScript(JOURNAL_PY)} ${shellWords([service.envStore, "--", ...journalArgs(service.unitName, query)])}`,
    ].join("\n") + "\n";
}

/** What `restartScript` reports. */
export interface RestartReport {
    /** Each restart's time until healthy, in seconds. */
    readonly seconds: readonly number[];
    /** The notes' warnings found in the journal since the first restart, with how often and one (masked) line. */
    readonly warnings: readonly { readonly pattern: string; readonly count: number; readonly example: string }[];
}

/** Counts each of the warnings (argv) in the masked journal on stdin and prints the JSON. */
const WARNINGS_PY = String.raw`
import json, sys
times = [float(t) for t in sys.argv[1].split()]
patterns = sys.argv[2:]
found = {p: {'pattern': p, 'count': 0, 'example': ''} for p in patterns}
for line in sys.stdin.read().splitlines():
    for p in patterns:
        if p in line:
            found[p]['count'] += 1
            found[p]['example'] = found[p]['example'] or line
print(json.dumps({'seconds': times, 'warnings': [f for f in found.values() if f['count']]}))
`;

/**
 * The seconds between two restarts' starts that keep `StartLimitBurst` (argv 1) starts within
 * `StartLimitIntervalUSec` (argv 2, as `systemctl show` prints it: `10s`, `1min 30s`, `infinity`, `0`).
 */
const SPACING_PY = String.raw`
import re, sys
burst, interval = sys.argv[1], sys.argv[2].strip()
units = {'us': 1e-6, 'ms': 1e-3, 's': 1, 'min': 60, 'h': 3600, 'd': 86400}
seconds = sum(float(n) * units[u] for n, u in re.findall(r'([\d.]+)\s*(us|ms|min|s|h|d)', interval))
if interval == 'infinity' or not burst.isdigit() or int(burst) == 0 or seconds == 0:
    print(0.0)
else:
    print(round(seconds / max(1, int(burst) - 1) * 1.1, 2))
`;

/**
 * Restarts the unit `count` times (the notes' restart loop when more than
 * one), each time waiting until it is healthy (the activation's gate: active,
 * `/health` answers, the listener is the unit's own process) and spacing the
 * restarts so that the unit's start limit is never hit, then searches
 * its journal since the first restart for the notes' warnings. Logs each
 * restart as it happens; prints a {@link RestartReport} as its last line. A
 * restart that does not become healthy fails the script with the journal's
 * last lines (masked) on stderr.
 */
export function restartScript(service: OperatedService, count: number): string {
    if (!Number.isInteger(count) || count < 1) throw new Error(`restart count must be a whole number of at least 1, not ${count}`);
    return [
        ...serviceVariables(service),
        ...redactFunction(),
        bashArray("REDACT_ENV_FILES", [service.envStore]),
        bashArray("SECRET_ENV_KEYS", ["*"]),
        bashArray("WARNINGS", RESTART_WARNINGS),
        `COUNT=${count}`,
        "START=$(date +%s)",
        JOURNAL_EXCERPT_FUNCTION,
        'times=""',
        // Restarts count against the unit's start limit (systemd's default: 5 starts in 10 s, then it refuses):
        // the loop spaces them so that it never trips the limit it is testing the service under.
        'burst=$(systemctl show -p StartLimitBurst --value "$UNIT" 2>/dev/null || echo 5)',
        'interval_us=$(systemctl show -p StartLimitIntervalUSec --value "$UNIT" 2>/dev/null || echo 10s)',
        `spacing=$(python3 -c ${quoteScript(SPACING_PY)} "$burst" "$interval_us")`,
        'last=""',
        'for i in $(seq 1 "$COUNT"); do',
        '  if [ -n "$last" ]; then sleep "$(python3 -c \'import sys, time; print(max(0.0, float(sys.argv[1]) - (time.time() - float(sys.argv[2]))))\' "$spacing" "$last")"; fi',
        "  t0=$(date +%s.%N); last=$t0",
        '  systemctl restart "$UNIT" || { journal_excerpt >&2; fail "systemctl restart $UNIT failed (restart $i of $COUNT)"; }',
        '  wait_healthy || { journal_excerpt >&2; fail "$UNIT did not become healthy after restart $i of $COUNT"; }',
        '  took=$(python3 -c \'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))\' "$t0" "$(date +%s.%N)")',
        '  times="$times $took"',
        '  log "restart $i of $COUNT: healthy after ${took} s"',
        "done",
        `{ journalctl -u "$UNIT" --since "@$START" --no-pager -o cat 2>&1 || true; } | redact_output "\${REDACT_ENV_FILES[@]}" -- "\${SECRET_ENV_KEYS[@]}" | python3 -c ${quoteScript(WARNINGS_PY)} "$times" "\${WARNINGS[@]}"`,
    ].join("\n") + "\n";
}
