/**
 * The operator command `doctor`: on one host, checks each cause the service
 * notes give for a service that "won't start" or "restarts constantly" (the
 * `.env` missing, the port in use, MongoDB not running, Python dependencies
 * missing), plus the unit's own state, free disk space and the journal's last
 * error, and says which cause holds. The script only looks: it changes
 * nothing on the host, never prints the `.env`'s content, and redacts every
 * text it passes on from the host (journal, import errors, other processes'
 * command lines) with the `.env`'s values masked.
 */
import { OperatedService } from "../model";
import { listenerCheckLines } from "./listener";
import { redactFunction } from "./redact";
import { PRELUDE, bashArray, shellVariables } from "./scripts";
import { quoteScript, shellQuote as q } from "./shell";

/** The checks, in the order the script runs and prints them. */
export const DOCTOR_CHECK_IDS = ["unit", "env", "port", "dependencies", "python", "disk", "journal"] as const;

/** One check of {@link doctorScript}. */
export type DoctorCheckId = (typeof DOCTOR_CHECK_IDS)[number];

/** One line of {@link doctorScript}'s output. */
export interface DoctorCheck {
    readonly check: DoctorCheckId;
    readonly ok: boolean;
    /** What was found, in one line: states, paths, the holder of the port, the error; never a secret value. */
    readonly detail: string;
}

/** Free space under this share of a filesystem fails the `disk` check. */
export const DOCTOR_MIN_FREE_PERCENT = 5;
/** Free space under this many MiB fails the `disk` check, whatever the share. */
export const DOCTOR_MIN_FREE_MIB = 500;

/** The longest detail printed (longer ones are cut on the host). */
const DETAIL_MAX = 1000;

/** How long the import of the app module may take before systemd stops it. */
const IMPORT_TIMEOUT_SEC = 120;

/** Prints one check as a JSON line; argv: id, `true`|`false`, detail (any bytes: invalid UTF-8 becomes U+FFFD). */
const REPORT_PY = [
    "import json, os, sys",
    "check, ok, detail = sys.argv[1:4]",
    "detail = os.fsencode(detail).decode('utf-8', 'replace')",
    `if len(detail) > ${DETAIL_MAX}:`,
    `    detail = detail[:${DETAIL_MAX}] + ' [cut]'`,
    "print(json.dumps({'check': check, 'ok': ok == 'true', 'detail': detail}))",
].join("\n");

/** Imports the modules named by argv (uvicorn, then the app's) from the working directory, as `python -m uvicorn module:app` would. */
const IMPORT_PY = 'import importlib, sys; sys.path.insert(0, ""); [importlib.import_module(m) for m in sys.argv[1:]]';

/** The units the dependencies check looks at (targets are skipped: they are states, not services) and how the unit refers to each. */
function dependencyRows(deps: OperatedService["dependencies"]): { unit: string; kinds: string }[] {
    const kinds = new Map<string, string[]>();
    const lists: [string, readonly string[]][] = [
        ["Requires", deps.requires],
        ["After", deps.after],
        ["Wants", deps.wants],
    ];
    for (const [kind, units] of lists) {
        for (const unit of units) {
            if (unit.endsWith(".target")) continue;
            kinds.set(unit, [...(kinds.get(unit) ?? []), kind]);
        }
    }
    return [...kinds].map(([unit, k]) => ({ unit, kinds: k.join(", ") }));
}

/** `report ID true|false DETAIL`, `run_check ID FUNCTION` and small helpers every check uses. */
function frameworkLines(): string[] {
    return [
        `REPORT_PY=${quoteScript(REPORT_PY)}`,
        "report() {",
        '  if command -v python3 >/dev/null 2>&1 && python3 -c "$REPORT_PY" "$1" "$2" "$3"; then return 0; fi',
        // Without python3: escape by hand; under LC_ALL=C anything but printable ASCII becomes "?".
        '  local d="${3//\\\\/\\\\\\\\}"',
        "  d=\"${d//\\\"/\\\\\\\"}\"",
        '  d="${d//[^[:print:]]/?}"',
        "  printf '{\"check\": \"%s\", \"ok\": %s, \"detail\": \"%s\"}\\n' \"$1\" \"$2\" \"$d\"",
        "}",
        // Runs one check in a subshell with errexit on (a function called after `||` would run with it off):
        // a check that stops half-way is reported, and the next check still runs.
        "run_check() {",
        "  local out rc",
        "  set +e",
        '  out=$(set -e; "$2")',
        "  rc=$?",
        "  set -e",
        '  if [ "$rc" = 0 ] && [ -n "$out" ]; then printf \'%s\\n\' "$out"; else report "$1" false "the check stopped unexpectedly (exit $rc)"; fi',
        "}",
        // Prints the first of the commands that is not installed; fails when all are.
        'missing() { local c; for c in "$@"; do command -v "$c" >/dev/null 2>&1 || { printf \'%s\' "$c"; return 0; }; done; return 1; }',
        // `prop TEXT KEY`: the value of KEY in `systemctl show` output (KEY=VALUE lines, in any order).
        'prop() { local l; while IFS= read -r l; do case "$l" in "$2="*) printf \'%s\' "${l#*=}"; return 0 ;; esac; done <<< "$1"; }',
        'redact() { redact_output "${REDACT_ENV_FILES[@]}" -- "${SECRET_ENV_KEYS[@]}"; }',
        // The last line of the text that is not blank.
        'last_line() { local l last=""; while IFS= read -r l; do [ -z "${l//[[:space:]]/}" ] || last="$l"; done <<< "$1"; printf \'%s\' "$last"; }',
    ];
}

/** `check_unit`: the unit's states; ok only when loaded and active. */
function unitCheckLines(): string[] {
    return [
        "check_unit() {",
        "  local m props load active sub restarts enabled summary",
        '  if m=$(missing systemctl); then report unit false "cannot check $UNIT: $m is not installed"; return 0; fi',
        '  if ! props=$(systemctl show -p LoadState,ActiveState,SubState,NRestarts "$UNIT" 2>&1); then report unit false "systemctl show $UNIT failed: $(last_line "$props")"; return 0; fi',
        '  load=$(prop "$props" LoadState); active=$(prop "$props" ActiveState); sub=$(prop "$props" SubState); restarts=$(prop "$props" NRestarts)',
        '  enabled=$(systemctl is-enabled "$UNIT" 2>/dev/null || true)',
        '  summary="${load:-unknown}, ${active:-unknown} (${sub:-unknown}), ${restarts:-0} restart(s), ${enabled:-no unit file}"',
        '  if [ "$load" != loaded ]; then report unit false "$UNIT is not loaded: $summary"',
        '  elif [ "$active" = failed ]; then report unit false "$UNIT has failed: $summary"',
        '  elif [ "$active" = activating ] && [ "$sub" = auto-restart ]; then report unit false "$UNIT is restarting constantly: $summary"',
        '  elif [ "$active" = activating ]; then report unit false "$UNIT is starting, not active yet: $summary"',
        '  elif [ "$active" = active ] || [ "$active" = reloading ]; then report unit true "$UNIT is $active: $summary"',
        '  else report unit false "$UNIT is not running: $summary"',
        "  fi",
        "}",
    ];
}

/** `check_env`: the `.env` link and the real file it must resolve to, inspected, never opened. */
function envCheckLines(): string[] {
    return [
        "check_env() {",
        '  local m target expected owner group mode problems=() joined',
        '  if m=$(missing readlink stat); then report env false "cannot check $ENV_LINK: $m is not installed"; return 0; fi',
        // The link: only inspected (readlink names targets, stat reads no content), never opened.
        '  if [ -L "$ENV_LINK" ]; then',
        '    owner=$(stat -c %U -- "$ENV_LINK")',
        '    [ "$owner" = root ] || problems+=("$ENV_LINK is a link owned by $owner, not root")',
        '    target=$(readlink -f -- "$ENV_LINK" || true)',
        '    expected=$(readlink -f -- "$ENV_STORE" || printf \'%s\' "$ENV_STORE")',
        '    [ "$target" = "$expected" ] || problems+=("$ENV_LINK points to ${target:-$(readlink -- "$ENV_LINK")}, not $ENV_STORE")',
        '  elif [ -e "$ENV_LINK" ]; then problems+=("$ENV_LINK is a $(stat -c %F -- "$ENV_LINK"), not a link to $ENV_STORE")',
        '  else problems+=("$ENV_LINK is missing")',
        "  fi",
        // The real file, which EnvironmentFile= reads.
        '  if [ -L "$ENV_STORE" ]; then problems+=("$ENV_STORE is a link, not a regular file")',
        '  elif [ ! -e "$ENV_STORE" ]; then problems+=("$ENV_STORE is missing")',
        '  elif [ ! -f "$ENV_STORE" ]; then problems+=("$ENV_STORE is a $(stat -c %F -- "$ENV_STORE"), not a regular file")',
        "  else",
        '    read -r owner group mode <<< "$(stat -c \'%U %G %a\' -- "$ENV_STORE")"',
        '    mode=$(printf \'%04o\' "$((8#$mode))")',
        '    [ "$owner" = root ] || problems+=("$ENV_STORE is owned by $owner, not root")',
        '    [ "$group" = "$SERVICE_GROUP" ] || problems+=("$ENV_STORE has group $group, not $SERVICE_GROUP")',
        '    [ "$mode" = 0640 ] || problems+=("$ENV_STORE has mode $mode, not 0640")',
        "  fi",
        '  if [ "${#problems[@]}" = 0 ]; then report env true "$ENV_LINK -> $ENV_STORE (root:$SERVICE_GROUP 0640)"; return 0; fi',
        '  joined=$(printf \'%s; \' "${problems[@]}")',
        '  report env false "${joined%; }"',
        "}",
    ];
}

/** `check_port`: who holds the health port (see `listenerCheckLines`). */
function portCheckLines(): string[] {
    return [
        ...listenerCheckLines(),
        "check_port() {",
        "  local m holder rc=0",
        '  if m=$(missing python3 systemctl); then report port false "cannot check port $HEALTH_PORT: $m is not installed"; return 0; fi',
        '  holder=$(listener_check 2>&1) || rc=$?',
        '  case "$rc" in',
        '    0) report port true "port $HEALTH_PORT is held by $UNIT" ;;',
        // Nothing listening is the unit's own problem only while it claims to run; otherwise the port is free for it.
        '    2) if [ "$ACTIVE_STATE" = active ]; then report port false "nothing listens on port $HEALTH_PORT although $UNIT is active"',
        // Socket activation: systemd holds the port for the stopped unit and starts it on the next connection.
        '       elif [ -n "$SOCKET" ] && systemctl is-active --quiet "$SOCKET" 2>/dev/null; then report port true "port $HEALTH_PORT is held by $SOCKET for $UNIT (${ACTIVE_STATE:-in an unknown state}; the next connection starts it)"',
        '       else report port true "port $HEALTH_PORT is free ($UNIT is ${ACTIVE_STATE:-in an unknown state})"; fi ;;',
        // Another process's command line may carry a secret (a hand-started uvicorn): redacted.
        '    3) holder=$(redact <<< "$holder"); report port false "port $HEALTH_PORT is held by ${holder//$\'\\n\'/; }, not by $UNIT" ;;',
        '    *) report port false "could not tell who holds port $HEALTH_PORT (exit $rc): $(last_line "$holder" | redact)" ;;',
        "  esac",
        "}",
    ];
}

/** `check_dependencies`: each dependency that is not a target is loaded and active. */
function dependenciesCheckLines(): string[] {
    return [
        "check_dependencies() {",
        '  local m i u why props load active problems=() joined hard=""',
        '  if [ "${#DEP_UNITS[@]}" = 0 ]; then report dependencies true "no dependencies besides targets"; return 0; fi',
        '  if m=$(missing systemctl); then report dependencies false "cannot check ${DEP_UNITS[*]}: $m is not installed"; return 0; fi',
        '  for i in "${!DEP_UNITS[@]}"; do',
        '    u="${DEP_UNITS[$i]}"; why=""',
        '    if ! props=$(systemctl show -p LoadState,ActiveState "$u" 2>&1); then why="state unknown ($(last_line "$props"))"',
        "    else",
        '      load=$(prop "$props" LoadState); active=$(prop "$props" ActiveState)',
        '      if [ "$load" = not-found ]; then why="not found"',
        '      elif [ "$load" != loaded ]; then why="${load:-unknown}"',
        '      elif [ "$active" != active ]; then why="${active:-unknown}"',
        "      fi",
        "    fi",
        '    [ -z "$why" ] || problems+=("$u: $why (${DEP_KINDS[$i]})")',
        '    if [ -n "$why" ] && [[ "${DEP_KINDS[$i]}" == *Requires* ]]; then hard=1; fi',
        "  done",
        '  if [ "${#problems[@]}" = 0 ]; then joined=$(printf \'%s, \' "${DEP_UNITS[@]}"); report dependencies true "active: ${joined%, }"; return 0; fi',
        '  joined=$(printf \'%s; \' "${problems[@]}")',
        // An After=/Wants= unit only orders the start: while the service itself runs, its absence is noted, not a fault.
        '  if [ -z "$hard" ] && [ "$ACTIVE_STATE" = active ]; then report dependencies true "${joined%; }; the service runs without it (After=/Wants= only order its start)"; return 0; fi',
        '  report dependencies false "${joined%; }"',
        "}",
    ];
}

/** `check_python`: the venv's interpreter, then the imports of uvicorn (the unit runs `-m uvicorn`) and the app module as the service's user. */
function pythonCheckLines(): string[] {
    return [
        `IMPORT_PY=${q(IMPORT_PY)}`,
        "check_python() {",
        "  local m out rc=0 last",
        '  if [ -L "$VENV_PYTHON" ] && [ ! -e "$VENV_PYTHON" ]; then report python false "$VENV_PYTHON is a broken link: its interpreter is gone"; return 0; fi',
        '  if [ ! -e "$VENV_PYTHON" ]; then report python false "$VENV_PYTHON is missing"; return 0; fi',
        '  if [ ! -x "$VENV_PYTHON" ]; then report python false "$VENV_PYTHON is not executable"; return 0; fi',
        '  if m=$(missing systemd-run); then report python false "cannot import $APP_MODULE as $SERVICE_USER: $m is not installed"; return 0; fi',
        // As the service runs it: its user, directory and .env, in a transient unit (the venv is never run as root).
        // -B: the import writes no bytecode, so nothing on the host changes.
        "  out=$(systemd-run --wait --pipe --quiet --collect --service-type=exec --expand-environment=no \\",
        '    -p "User=$SERVICE_USER" -p "Group=$SERVICE_GROUP" -p "WorkingDirectory=$WORKDIR" -p "EnvironmentFile=-$ENV_STORE" \\',
        `    -p RuntimeMaxSec=${IMPORT_TIMEOUT_SEC} --description="amarktai-infra doctor: import $APP_MODULE" \\`,
        '    -- "$VENV_PYTHON" -B -c "$IMPORT_PY" uvicorn "$APP_MODULE" < /dev/null 2>&1) || rc=$?',
        '  if [ "$rc" = 0 ]; then report python true "uvicorn and $APP_MODULE import with $VENV_PYTHON as $SERVICE_USER"; return 0; fi',
        '  last=$(last_line "$out")',
        '  if [ -z "$last" ]; then report python false "the imports of uvicorn and $APP_MODULE with $VENV_PYTHON as $SERVICE_USER failed (exit $rc) without output"; return 0; fi',
        '  report python false "the imports of uvicorn and $APP_MODULE failed (exit $rc): $(redact <<< "$last")"',
        "}",
    ];
}

/** `check_disk`: free space on /, the releases directory and /var/log. */
function diskCheckLines(): string[] {
    return [
        "check_disk() {",
        "  local m p line size avail target tenths pct parts=() low=0 joined",
        '  if m=$(missing df); then report disk false "cannot check free space: $m is not installed"; return 0; fi',
        "  local paths=(/)",
        '  [ ! -d "$RELEASES_DIR" ] || paths+=("$RELEASES_DIR")',
        "  [ ! -d /var/log ] || paths+=(/var/log)",
        '  for p in "${paths[@]}"; do',
        // The mount point comes last: it may hold spaces.
        '    line=$(df -B1 --output=size,avail,target -- "$p" 2>&1 | tail -n 1) || true',
        '    read -r size avail target <<< "$line" || true',
        '    case "$size$avail" in ""|*[!0-9]*) parts+=("$p: df gave no figures ($line)"); low=1; continue ;; esac',
        '    pct=0; [ "$size" = 0 ] || pct=$(( avail * 100 / size ))',
        `    if [ "$avail" -ge $((1 << 30)) ]; then tenths=$(( (avail * 10 + (1 << 29)) / (1 << 30) )); line="$((tenths / 10)).$((tenths % 10)) GiB"; else line="$(( avail >> 20 )) MiB"; fi`,
        '    line="$p: $line free ($pct %)"',
        `    if [ "$avail" -lt $((${DOCTOR_MIN_FREE_MIB} << 20)) ] || [ "$(( avail * 100 ))" -lt "$(( size * ${DOCTOR_MIN_FREE_PERCENT} ))" ]; then line="$line: too little (under ${DOCTOR_MIN_FREE_PERCENT} % or ${DOCTOR_MIN_FREE_MIB} MiB)"; low=1; fi`,
        '    parts+=("$line")',
        "  done",
        '  joined=$(printf \'%s; \' "${parts[@]}")',
        '  if [ "$low" = 0 ]; then report disk true "${joined%; }"; else report disk false "${joined%; }"; fi',
        "}",
    ];
}

/** `check_journal`: the unit's last error-priority journal line, redacted. */
function journalCheckLines(): string[] {
    return [
        "check_journal() {",
        "  local m out line",
        '  if m=$(missing journalctl python3); then report journal false "cannot read the journal of $UNIT: $m is not installed"; return 0; fi',
        '  if ! out=$(journalctl -u "$UNIT" -p err -n 1 -o short-iso --no-pager -q 2>&1); then report journal false "journalctl failed: $(last_line "$out" | redact)"; return 0; fi',
        // "-- No entries --" and other informational lines start with "-- ".
        '  out=$(grep -v -e \'^-- \' <<< "$out" || true)',
        '  line=$(last_line "$out")',
        '  if [ -z "$line" ]; then report journal true "no error in the journal of $UNIT"; return 0; fi',
        '  line=$(redact <<< "$line")',
        // An error of an earlier run is shown, but a unit that is active now is not failing because of it.
        '  if [ "$ACTIVE_STATE" = active ]; then report journal true "last error (from before; $UNIT is active now): $line"; else report journal false "$line"; fi',
        "}",
    ];
}

/**
 * The `doctor` script for one host, run as root: prints one JSON line
 * ({@link DoctorCheck}) per check, in the order of {@link DOCTOR_CHECK_IDS},
 * and exits 0 once every check ran. It changes nothing: it reads states,
 * inspects paths without opening what a less privileged user could replace,
 * and imports the app only as the service's user (in a transient unit, with
 * no bytecode written). A check that cannot run (a command missing) reports
 * `ok: false` with the reason; the next check still runs.
 *
 * - `unit`: LoadState, ActiveState, SubState, NRestarts and `is-enabled`; ok
 *   only when loaded and active (or reloading). `activating (auto-restart)`
 *   is reported as restarting constantly.
 * - `env`: the notes' `.env` path is a root-owned link resolving to the real
 *   file, a regular file root:group 0640. Each problem names its path.
 * - `port`: who holds the health port's listening socket; not ok when another
 *   process holds it (named with pid, command line and cgroup), or when
 *   nothing listens while the unit is active. A free port of a unit that is
 *   not active is ok: it is not what keeps the unit from starting.
 * - `dependencies`: each Requires/After/Wants unit that is not a target must
 *   be loaded and active; a missing or stopped After/Wants unit is only noted
 *   while the unit is active (it orders the start, nothing more).
 * - `python`: the venv's interpreter exists, and the app module imports as
 *   the service would import it; the detail carries the error's last line.
 * - `disk`: free space on /, the releases directory and /var/log; not ok
 *   under {@link DOCTOR_MIN_FREE_PERCENT} % or {@link DOCTOR_MIN_FREE_MIB} MiB.
 * - `journal`: the unit's last error-priority line. Not ok while the unit is
 *   not active; when it is active, the line is still shown but the check is
 *   ok (an error from an earlier run does not keep a running unit down).
 *
 * Text from the host (journal, import error, other processes' command lines)
 * is redacted: every value of the service's `.env` becomes `[secret KEY]`.
 */
export function doctorScript(service: OperatedService): string {
    const deps = dependencyRows(service.dependencies);
    const vars = {
        UNIT: service.unitName,
        SOCKET: service.socketUnit ?? "",
        SERVICE_USER: service.user,
        SERVICE_GROUP: service.group,
        HEALTH_PORT: String(service.healthPort),
        ENV_LINK: service.envLink,
        ENV_STORE: service.envStore,
        VENV_PYTHON: service.venvPython,
        WORKDIR: service.workingDirectory,
        APP_MODULE: service.appModule,
        RELEASES_DIR: service.releasesDir,
    };
    const lines = [
        ...PRELUDE,
        ...shellVariables(vars),
        bashArray("DEP_UNITS", deps.map((d) => d.unit)),
        bashArray("DEP_KINDS", deps.map((d) => d.kinds)),
        bashArray("REDACT_ENV_FILES", [service.envStore]),
        bashArray("SECRET_ENV_KEYS", ["*"]),
        ...redactFunction(),
        ...frameworkLines(),
        ...unitCheckLines(),
        ...envCheckLines(),
        ...portCheckLines(),
        ...dependenciesCheckLines(),
        ...pythonCheckLines(),
        ...diskCheckLines(),
        ...journalCheckLines(),
        // The port, dependencies and journal checks judge by whether the unit claims to run.
        'ACTIVE_STATE=""',
        'if command -v systemctl >/dev/null 2>&1; then ACTIVE_STATE=$(systemctl show -p ActiveState --value "$UNIT" 2>/dev/null || true); fi',
        ...DOCTOR_CHECK_IDS.map((id) => `run_check ${id} check_${id}`),
    ];
    return lines.join("\n") + "\n";
}

function isCheckId(value: unknown): value is DoctorCheckId {
    return typeof value === "string" && (DOCTOR_CHECK_IDS as readonly string[]).includes(value);
}

/**
 * Parses {@link doctorScript}'s stdout: one {@link DoctorCheck} per line.
 * Throws an Error naming the first line that is not a check (or repeats
 * one); only the final newline is skipped.
 */
export function parseDoctorOutput(stdout: string): DoctorCheck[] {
    const text = stdout.endsWith("\n") ? stdout.slice(0, -1) : stdout;
    if (text === "") return [];
    const checks: DoctorCheck[] = [];
    for (const line of text.split("\n")) {
        let value: unknown;
        try {
            value = JSON.parse(line);
        } catch {
            value = undefined;
        }
        const v = value as Partial<Record<string, unknown>> | undefined;
        if (typeof v !== "object" || v === null || !isCheckId(v.check) || typeof v.ok !== "boolean" || typeof v.detail !== "string" || Object.keys(v).length !== 3) {
            throw new Error(`doctor: not a check line: ${JSON.stringify(line.slice(0, 300))}`);
        }
        if (checks.some((c) => c.check === v.check)) throw new Error(`doctor: the check ${v.check} came twice: ${JSON.stringify(line.slice(0, 300))}`);
        checks.push({ check: v.check, ok: v.ok, detail: v.detail });
    }
    return checks;
}

/** The notes' causes (and low disk space), in the notes' order: each failing check's part of the verdict. */
const CAUSES: readonly { readonly check: DoctorCheckId; readonly describe: (detail: string) => string }[] = [
    { check: "env", describe: (d) => `.env file: ${d}` },
    { check: "port", describe: (d) => d },
    { check: "dependencies", describe: (d) => `dependency not running: ${d}` },
    {
        check: "python",
        describe: (d) => {
            const missing = /\b(ModuleNotFoundError|ImportError):.*/.exec(d);
            return missing ? `Python dependencies missing: ${missing[0]}` : `Python: ${d}`;
        },
    },
    { check: "disk", describe: (d) => `disk space low: ${d}` },
];

/**
 * One sentence for the operator: `healthy` when every check passed;
 * otherwise what the unit does (`won't start`, `restarts constantly`, or
 * `not healthy` when it runs) and each of the notes' causes that holds,
 * e.g. `won't start: port 8000 is held by pid 123 (python -m uvicorn …) …`,
 * or `no known cause found` with the failing checks' details.
 */
export function doctorVerdict(checks: readonly DoctorCheck[]): string {
    if (checks.length === 0) return "no checks ran";
    const failing = checks.filter((c) => !c.ok);
    if (failing.length === 0) return "healthy";
    const unit = checks.find((c) => c.check === "unit");
    const state = !unit || unit.ok ? "not healthy" : unit.detail.includes("restarting constantly") ? "restarts constantly" : "won't start";
    const causes = CAUSES.flatMap((cause) => failing.filter((c) => c.check === cause.check).map((c) => cause.describe(c.detail)));
    if (causes.length > 0) return `${state}: ${causes.join("; ")}`;
    return `${state}: no known cause found (${failing.map((c) => `${c.check}: ${c.detail}`).join("; ")})`;
}
