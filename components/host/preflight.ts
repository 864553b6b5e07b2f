/**
 * What a host must pass before the library changes anything on it, as shell
 * lines for the generated scripts: the OS, systemd and Python it needs
 * (refused clearly, naming what was found and what is needed), the end of
 * boot and of cloud-init on a host in its first minute (bounded by
 * `timeouts.bootSec`), and service directories that would be created where
 * someone besides root could replace them. On a booted, suitable host every
 * check costs next to nothing: no wait, no Python started for cloud-init.
 * The lines need the prelude's `log` and `fail`.
 */
import { DirectorySpec } from "../model";
import { shellQuote as q } from "./shell";

/** The oldest systemd the scripts run on: each step runs through `systemd-run --expand-environment=no` (added in 254). */
export const MIN_SYSTEMD_VERSION = 254;

/** The oldest Python 3 the scripts and the service's venv are built for. */
export const MIN_PYTHON_VERSION = { major: 3, minor: 11 } as const;

/**
 * Shell functions `os_field KEY` (a value from /etc/os-release, unquoted,
 * read without sourcing the file) and `os_name` (its PRETTY_NAME, for
 * messages).
 */
export function osReleaseFunctions(): string[] {
    return [
        "os_field() {",
        "  local k v",
        "  [ -r /etc/os-release ] || return 0",
        '  while IFS="=" read -r k v || [ -n "$k" ]; do',
        '    [ "$k" = "$1" ] || continue',
        '    case "$v" in \\"*\\"|\\\'*\\\') v="${v:1:${#v}-2}" ;; esac',
        '    printf \'%s\' "$v"; return 0',
        "  done < /etc/os-release",
        "}",
        'os_name() { local n; n=$(os_field PRETTY_NAME); printf \'%s\' "${n:-an unknown OS (no PRETTY_NAME in /etc/os-release)}"; }',
    ];
}

/** Refuses an OS that is neither Ubuntu nor Debian nor derived from them (by ID and ID_LIKE in /etc/os-release). */
export function supportedOsLines(): string[] {
    return [
        'case " $(os_field ID) $(os_field ID_LIKE) " in',
        '  *" debian "*|*" ubuntu "*) ;;',
        '  *) fail "unsupported OS: $(os_name) (ID=$(os_field ID), ID_LIKE=$(os_field ID_LIKE)); amarktai-infra needs Ubuntu (24.04 or newer) or Debian (13 or newer), or a system derived from them" ;;',
        "esac",
    ];
}

/**
 * Refuses a host whose systemd is older than {@link MIN_SYSTEMD_VERSION} or
 * not running as PID 1: one `systemctl --version`. Runs in the outer part of
 * every detached script, before `systemd-run` is reached.
 */
export function systemdLines(): string[] {
    return [
        `MIN_SYSTEMD=${MIN_SYSTEMD_VERSION}`,
        'systemd_version=$(systemctl --version 2>/dev/null) || fail "systemctl is missing or does not run on $(os_name): amarktai-infra needs systemd $MIN_SYSTEMD or newer as the init system"',
        'read -r _ systemd_major systemd_rest <<< "$systemd_version" || true',
        'systemd_major="${systemd_major%%[!0-9]*}"',
        'if [ -z "$systemd_major" ] || [ "$systemd_major" -lt "$MIN_SYSTEMD" ]; then',
        '  fail "$(os_name) has systemd ${systemd_major:-of unknown version} ${systemd_rest:-}: amarktai-infra needs systemd $MIN_SYSTEMD or newer (it runs each step through systemd-run --expand-environment=no, new in $MIN_SYSTEMD); Ubuntu 24.04 has 255, Debian 13 has 257"',
        "fi",
        '[ -d /run/systemd/system ] || fail "systemd $systemd_major is installed but is not the init system (PID 1) on $(os_name): amarktai-infra runs each step as a systemd service"',
    ];
}

/**
 * Refuses a `python3` older than {@link MIN_PYTHON_VERSION}: one
 * `python3 --version`. Runs after python3 is installed where it was missing.
 */
export function pythonVersionLines(): string[] {
    const { major, minor } = MIN_PYTHON_VERSION;
    return [
        'python_version=$(python3 --version 2>&1) || fail "python3 does not run on $(os_name): $python_version"',
        'python_major="${python_version#Python }"; python_minor="${python_major#*.}"',
        'python_major="${python_major%%.*}"; python_minor="${python_minor%%[!0-9]*}"',
        `if ! [[ "$python_major" =~ ^[0-9]+$ && "$python_minor" =~ ^[0-9]+$ ]] || [ "$python_major" -lt ${major} ] || { [ "$python_major" -eq ${major} ] && [ "$python_minor" -lt ${minor} ]; }; then`,
        `  fail "python3 on $(os_name) is \${python_version} ($(command -v python3)): amarktai-infra needs Python ${major}.${minor} or newer (Ubuntu 24.04 has 3.12, Debian 13 has 3.13)"`,
        "fi",
    ];
}

/**
 * Waits, at most `bootSec` seconds in all, for boot to finish
 * (`systemctl is-system-running --wait`: `running` or `degraded`) and, where
 * cloud-init is installed and has not finished, for cloud-init
 * (`cloud-init status --wait`: exit 0, or 2 for recoverable errors). Each wait
 * says what it waits for; a timeout fails naming `timeouts.bootSec`, the
 * state and the jobs still running; cloud-init's errors fail with what it
 * reported. A booted host costs one `systemctl is-system-running`, and
 * cloud-init (a Python program) is not started when
 * /run/cloud-init/result.json already says it finished without errors, or
 * when it is disabled. Goes before anything on the host changes.
 */
export function bootWaitLines(bootSec: number): string[] {
    if (!Number.isInteger(bootSec) || bootSec < 0) throw new Error(`bootSec must be a whole number of seconds, not ${bootSec}`);
    return [
        `BOOT_SEC=${q(String(bootSec))}`,
        "boot_deadline=$(( $(date +%s) + BOOT_SEC ))",
        'boot_left() { local left=$(( boot_deadline - $(date +%s) )); if [ "$left" -lt 0 ]; then left=0; fi; printf \'%s\\n\' "$left"; }',
        // The jobs systemd still runs (what a boot waits for), on one line.
        "boot_jobs() { local jobs; jobs=$(systemctl list-jobs --no-pager --no-legend 2>/dev/null | awk 'NR <= 15 { printf \"%s%s (%s, %s)\", sep, $2, $3, $4; sep = \", \" }') || true; printf '%s' \"${jobs:-no jobs}\"; }",
        'boot_state=$(systemctl is-system-running 2>/dev/null || true)',
        'case "$boot_state" in',
        "  running|degraded) ;;",
        "  *)",
        '    log "waiting for boot to finish, up to $(boot_left)s (timeouts.bootSec): systemd is ${boot_state:-not answering}"',
        '    if [ "$(boot_left)" -gt 0 ]; then boot_state=$(timeout -k 5 "$(boot_left)" systemctl is-system-running --wait 2>/dev/null || true); fi',
        '    case "$boot_state" in running|degraded) ;; *) boot_state=$(systemctl is-system-running 2>/dev/null || true) ;; esac',
        '    case "$boot_state" in',
        '      running|degraded) log "boot finished (systemd: $boot_state)" ;;',
        '      initializing|starting|"") fail "the host did not finish booting within ${BOOT_SEC}s (timeouts.bootSec): systemd is ${boot_state:-not answering}; still running: $(boot_jobs)" ;;',
        '      *) fail "the host is not ready for changes: systemd is $boot_state (wanted running or degraded); jobs: $(boot_jobs)" ;;',
        "    esac",
        "    ;;",
        "esac",
        // cloud-init: result.json is written when it has finished this boot; "errors": [] means without (unrecoverable) errors.
        "if command -v cloud-init >/dev/null; then",
        "  if [ -f /run/cloud-init/result.json ] && grep -qF '\"errors\": []' /run/cloud-init/result.json; then",
        "    :",
        "  elif [ -e /run/cloud-init/disabled ] || [ -e /etc/cloud/cloud-init.disabled ]; then",
        "    :",
        "  else",
        '    if [ -f /run/cloud-init/result.json ]; then log "cloud-init finished with errors; asking it what it reported"; else log "waiting for cloud-init to finish, up to $(boot_left)s (timeouts.bootSec)"; fi',
        '    ci_rc=0; ci_out=""',
        '    if [ "$(boot_left)" -gt 0 ]; then ci_out=$(timeout -k 5 "$(boot_left)" cloud-init status --wait --long 2>&1) || ci_rc=$?; else ci_out=$(cloud-init status --long 2>&1) || ci_rc=$?; fi',
        // What it reported, on one line: its status lines without the dots --wait prints.
        '    ci_status=""; ci_report=""',
        '    while IFS= read -r line; do',
        '      line="${line//$\'\\t\'/ }"; line="${line#"${line%%[!. ]*}"}"',
        '      [ -n "$line" ] || continue',
        '      case "$line" in "status: "*) ci_status="${line#status: }" ;; esac',
        '      ci_report="${ci_report:+$ci_report; }$line"',
        '    done <<< "$ci_out"',
        '    if [ "$ci_rc" = 124 ] || [ "$ci_rc" = 137 ] || [ "$ci_status" = running ] || [ "$ci_status" = "not started" ] || [ "$ci_status" = "not run" ]; then',
        '      fail "cloud-init did not finish within ${BOOT_SEC}s (timeouts.bootSec): status ${ci_status:-running}; still running: $(boot_jobs)"',
        "    fi",
        '    case "$ci_rc" in',
        '      0) log "cloud-init status: ${ci_status:-done}" ;;',
        '      2) log "cloud-init finished with recoverable errors: ${ci_report:0:1500}" ;;',
        '      *) fail "cloud-init reported ${ci_report:0:1500} (exit $ci_rc): fix the host\'s first boot (cloud-init status --long on the host shows why) before deploying to it" ;;',
        "    esac",
        "  fi",
        "fi",
    ];
}

/**
 * Where to suggest a service directory instead of an unsafe one: the
 * default's place, `/var/amarktai/<name>`, named after the config key
 * (`paths.logs` → /var/amarktai/logs) or else the path's last component.
 */
export function saferDirectory(dir: Pick<DirectorySpec, "key" | "path">): string {
    const keyName = /^paths\.([a-z]+)$/.exec(dir.key)?.[1];
    const last = dir.path.split("/").filter(Boolean).pop() ?? "data";
    return `/var/amarktai/${keyName ?? last}`;
}

/**
 * `refuse_unsafe_parents KEY PATH SUGGESTION`: fails, naming KEY, PATH, the
 * directory and why, when a directory that already exists on PATH's way
 * (from `/` down to its parent) is a link, is not owned by root (or the
 * service user `$USER_NAME`), or is writable by everyone or by a group other
 * than root's or the service's `$GROUP_NAME`: whoever can write there could
 * replace what the library creates inside it (such as Ubuntu's /var/log,
 * root:syslog 0775). Reads only (`stat`), so it runs before anything changes;
 * the safe file helper enforces the same rule when it creates the directory.
 */
export function unsafeParentFunction(): string[] {
    return [
        "refuse_unsafe_parents() {",
        '  local key="$1" path="$2" suggestion="$3" parent d=/ rest name info kind uid gid mode owner group m where why',
        '  parent="${path%/*}"; parent="${parent:-/}"',
        '  rest="${path#/}"',
        "  while :; do",
        '    info=$(stat -c \'%F:%u:%g:%a:%U:%G\' -- "$d" 2>/dev/null) || return 0',
        '    IFS=: read -r kind uid gid mode owner group <<< "$info"',
        '    m=$(printf \'%04o\' "$(( 8#$mode ))")',
        '    if [ "$d" = "$parent" ]; then where="its parent $d"; else where="$d (on its way)"; fi',
        '    why=""',
        '    case "$kind" in',
        "      directory) ;;",
        '      "symbolic link") fail "$key: $path: $where is a symbolic link (to $(readlink -- "$d")); amarktai-infra never follows a link on the way to a service directory, since whoever can change the link could redirect it: use the real path" ;;',
        '      *) fail "$key: $path: $where is not a directory ($kind)" ;;',
        "    esac",
        '    if [ "$uid" != 0 ] && [ "$owner" != "$USER_NAME" ]; then',
        '      why="is owned by $owner ($owner:$group $m), not root, so $owner could replace what is created inside it"',
        "    elif (( 8#$mode & 8#002 )); then",
        '      why="is writable by everyone ($owner:$group $m), so anyone could replace what is created inside it"',
        '    elif (( 8#$mode & 8#020 )) && [ "$gid" != 0 ] && [ "$group" != "$GROUP_NAME" ]; then',
        '      why="is writable by group $group ($owner:$group $m"',
        '      if [ "$d" = /var/log ] && [ "$owner:$group $m" = "root:syslog 0775" ]; then why="$why, as on stock Ubuntu"; fi',
        '      why="$why), whose members could replace what is created inside it"',
        "    fi",
        '    if [ -n "$why" ]; then fail "$key: $path: $where $why; choose a directory whose parents only root can write, such as $suggestion"; fi',
        '    name="${rest%%/*}"; rest="${rest#"$name"}"; rest="${rest#/}"',
        // The last component is the directory itself: the helper creates it, keeps it or refuses it.
        '    [ -n "$rest" ] || return 0',
        '    d="${d%/}/$name"',
        // Missing from here down: root creates the rest (0755).
        '    [ -e "$d" ] || [ -L "$d" ] || return 0',
        "  done",
        "}",
    ];
}
