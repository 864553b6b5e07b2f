/**
 * Generators of every shell script this library sends to a host. Each script
 * is idempotent, runs under `set -euo pipefail`, quotes every value with
 * {@link shellQuote}, and never carries a secret: secret content comes on stdin.
 */
import { FileEffect, HostAction, HostWaits, LinkSpec, MANAGED_MARKER, ManagedFile, PrepareSpec, PurgeSpec, ReleaseSpec, backupDir, createdRecordPath, envStorePath, fileIdForPath, ownerRecordPath, serviceStateDir, stagingDir, triggers } from "../model";
import { aptGetLines } from "./apt";
import { dropInSummaryFunction } from "./dropin";
import { bootWaitLines, osReleaseFunctions, pythonVersionLines, saferDirectory, supportedOsLines, systemdLines, unsafeParentFunction } from "./preflight";
import { redactFunction } from "./redact";
import { listenerCheckLines } from "./listener";
import { auditLines } from "./audit";
import { releaseActivationLines } from "./release";
import { portHandoverFunctions } from "./handover";
import { safeFsFunction, safeFsServeFunctions } from "./safe-fs";
import { quoteScript, shellQuote as q, shellWords } from "./shell";

/** The first lines of every script: strict mode, C locale, private umask, `log` and `fail`. */
export const PRELUDE: readonly string[] = ["set -euo pipefail", "export LC_ALL=C", "umask 077", "log() { printf '[amarktai-infra] %s\\n' \"$*\" || true; }", "fail() { printf '[amarktai-infra] error: %s\\n' \"$*\" >&2; exit 1; }"];

/** The prelude of a script that runs detached (a transient service): it must outlive a dropped SSH connection. */
export const DETACHED_PRELUDE: readonly string[] = [...PRELUDE, "trap '' HUP PIPE"];

/** `1` when a change to a file of kind `effect` triggers `action`, else `0` (a flag for the generated scripts). */
function flag(effect: FileEffect, action: HostAction): string {
    return triggers(effect, action) ? "1" : "0";
}

/** The `<prefix>RELOADS`, `<prefix>RESTARTS` and `<prefix>JOURNALDS` flag arrays of `files`, from {@link triggers}. */
function triggerArrays(prefix: string, files: readonly Pick<ManagedFile, "effect">[]): string[] {
    return [
        bashArray(`${prefix}RELOADS`, files.map((f) => flag(f.effect, "daemon-reload"))),
        bashArray(`${prefix}RESTARTS`, files.map((f) => flag(f.effect, "restart-service"))),
        bashArray(`${prefix}JOURNALDS`, files.map((f) => flag(f.effect, "restart-journald"))),
    ];
}

/** `NAME='value'` lines, every value quoted: the variables a script starts from. */
export function shellVariables(vars: Readonly<Record<string, string>>): string[] {
    return Object.entries(vars).map(([name, value]) => `${name}=${q(value)}`);
}

/** One bash array per column of `rows`, named `<prefix><COLUMN>`, every element quoted. */
function bashColumns<T>(prefix: string, rows: readonly T[], columns: Readonly<Record<string, (row: T) => string>>): string[] {
    return Object.entries(columns).map(([name, get]) => bashArray(`${prefix}${name}`, rows.map(get)));
}

/** A bash array literal with every element quoted. */
export function bashArray(name: string, values: readonly string[]): string {
    return `${name}=(${shellWords(values)})`;
}

/**
 * Shell lines defining `foreign_unit UNIT`: prints the unit file (or alias)
 * of UNIT that the library did not write (no managed-file marker in
 * /etc/systemd/system, or any vendor, runtime or generated unit) and
 * succeeds; fails when UNIT is free or ours. Nothing is changed. A plain
 * file in /etc/systemd/system that an adoption took over (`hosts[i].adopt`)
 * counts as ours while its bytes are those the adoption recorded in
 * `$ADOPTED_RECORD` (`adopted unit PATH SHA256`).
 */
export function foreignUnitFunction(serviceName: string): string[] {
    return [
        `MANAGED_FIRST_LINE=${q(`# ${MANAGED_MARKER}`)}`,
        `ADOPTED_RECORD=${q(createdRecordPath(serviceName))}`,
        // adopted KIND FILE: FILE is the plain file an adoption recorded as KIND (unit, dropin), unchanged since.
        'adopted() { [ -f "$ADOPTED_RECORD" ] && [ -f "$2" ] && [ ! -L "$2" ] && grep -qxF -- "adopted $1 $2 $(sha256sum < "$2" | cut -d" " -f1)" "$ADOPTED_RECORD"; }',
        'adopted_unit() { adopted unit "$1" && [ "$(stat -c %u "$1")" = 0 ]; }',
        "foreign_unit() {",
        '  local unit="$1" d f frag',
        "  for d in /etc/systemd/system /run/systemd/system /run/systemd/transient /run/systemd/generator /usr/local/lib/systemd/system /usr/lib/systemd/system /lib/systemd/system; do",
        '    f="$d/$unit"',
        '    [ -e "$f" ] || [ -L "$f" ] || continue',
        '    if [ "$d" = /etc/systemd/system ] && [ -f "$f" ] && [ ! -L "$f" ] && [ "$(head -n 1 "$f")" = "$MANAGED_FIRST_LINE" ]; then continue; fi',
        '    if [ "$d" = /etc/systemd/system ] && adopted_unit "$f"; then continue; fi',
        '    printf \'%s\\n\' "$f"; return 0',
        "  done",
        '  frag=$(systemctl show -p FragmentPath --value "$unit" 2>/dev/null || true)',
        '  if [ -n "$frag" ] && [ "$frag" != "/etc/systemd/system/$unit" ]; then printf \'%s\\n\' "$frag"; return 0; fi',
        "  return 1",
        "}",
        'refuse_foreign_unit() {',
        '  local f; f=$(foreign_unit "$1") || return 0',
        // Only the notes' own layout can be adopted: a plain file of that name in /etc/systemd/system.
        '  if [ "$f" = "/etc/systemd/system/$1" ] && [ -f "$f" ] && [ ! -L "$f" ] && [ "${1##*.}" = service ]; then',
        '    fail "serviceName: $1 already exists on this host ($f) and was not written by amarktai-infra; refusing to replace it. If it is a hand-made install of the service notes, set adopt: true on this host (hosts[i].adopt) to take it over (pulumi preview --diff shows what changes); else choose another serviceName"',
        "  fi",
        '  fail "serviceName: $1 already exists on this host ($f) and was not written by amarktai-infra; refusing to replace it. Choose another serviceName"',
        "}",
    ];
}

/**
 * Prepares a host. Before changing anything: refuses an OS other than
 * Debian/Ubuntu, waits (at most `waits.bootSec`) for boot and cloud-init to
 * finish, checks the privilege boundary (no existing unit of that name the
 * library did not write; no existing user or group it did not create unless
 * `allowExistingUser`) and refuses a directory whose existing parents someone
 * besides root could write. Then installs python3 when missing (apt waiting
 * at most `waits.aptLockSec` for its locks), refuses a python3 older than
 * 3.11, creates the user and directories (through the safe helper: no link
 * followed, no foreign directory re-owned) and records what it created.
 * Venvs come with releases (`buildReleaseScript`). systemd's version is
 * checked by `detachedScript`, which every prepare runs in.
 */
export function prepareScript(spec: PrepareSpec, waits: Pick<HostWaits, "bootSec" | "aptLockSec">): string {
    const lines = [
        ...DETACHED_PRELUDE,
        ...shellVariables({
            USER_NAME: spec.user,
            GROUP_NAME: spec.group,
            UNIT: `${spec.serviceName}.service`,
            STATE: serviceStateDir(spec.serviceName),
            RECORD: createdRecordPath(spec.serviceName),
            ALLOW_EXISTING: spec.allowExistingUser ? "1" : "0",
        }),
        ...bashColumns("DIR_", spec.directories, { KEYS: (d) => d.key, PATHS: (d) => d.path, OWNERS: (d) => d.owner, GROUPS: (d) => d.group, MODES: (d) => d.mode, SAFER: saferDirectory }),
        ...safeFsFunction(),
        ...foreignUnitFunction(spec.serviceName),
        ...osReleaseFunctions(),
        ...unsafeParentFunction(),
        // Refusals and waits only, up to the first change (python3, below).
        ...supportedOsLines(),
        // A host in its first minute: cloud-init may still be creating users and writing files.
        ...bootWaitLines(waits.bootSec),
        // The boundary.
        'recorded() { [ -f "$RECORD" ] && grep -qxF -- "$1" "$RECORD"; }',
        // A state directory without a record: prepared by a release that kept no record; what exists is adopted, never recorded as created.
        'legacy=""; if [ -d "$STATE" ] && [ ! -f "$RECORD" ]; then legacy=1; fi',
        'refuse_foreign_unit "$UNIT"',
        // A socket unit of the same name would hand its listener to the service: never someone else's.
        'refuse_foreign_unit "${UNIT%.service}.socket"',
        'if id -u "$USER_NAME" >/dev/null 2>&1; then',
        '  [ "$(id -u "$USER_NAME")" != 0 ] || fail "user: $USER_NAME has uid 0 on this host; the service never runs as root"',
        '  if ! recorded "user $USER_NAME" && ! recorded "adopted user $USER_NAME" && [ "$ALLOW_EXISTING" != 1 ] && [ -z "$legacy" ]; then fail "user: $USER_NAME already exists on this host and was not created by amarktai-infra; set adopt: true on this host (hosts[i].adopt) to take over a hand-made install of the service notes, or allowExistingUser: true to only run as it (it is then never removed), or choose another user"; fi',
        "fi",
        'if getent group "$GROUP_NAME" >/dev/null; then',
        '  [ "$(getent group "$GROUP_NAME" | cut -d: -f3)" != 0 ] || fail "group: $GROUP_NAME has gid 0 on this host; refusing it"',
        '  if ! recorded "group $GROUP_NAME" && ! recorded "adopted group $GROUP_NAME" && [ "$ALLOW_EXISTING" != 1 ] && [ -z "$legacy" ]; then fail "group: $GROUP_NAME already exists on this host and was not created by amarktai-infra; set adopt: true on this host (hosts[i].adopt) to take over a hand-made install of the service notes, or allowExistingUser: true to only use it (it is then never removed), or choose another group"; fi',
        "fi",
        'for i in "${!DIR_PATHS[@]}"; do refuse_unsafe_parents "${DIR_KEYS[$i]}" "${DIR_PATHS[$i]}" "${DIR_SAFER[$i]}"; done',
        // The first change: python3 where it is missing; its version is checked either way.
        "if ! command -v python3 >/dev/null; then",
        '  log "installing python3"',
        ...aptGetLines([{ op: "update" }, { op: "install", packages: ["python3"] }], waits.aptLockSec).map((l) => `  ${l}`),
        "fi",
        ...pythonVersionLines(),
        'install -d -m 0755 -o root -g root "${STATE%/*}"',
        'install -d -m 0700 -o root -g root "$STATE"',
        '[ -f "$RECORD" ] || : > "$RECORD"',
        'record() { recorded "$1" || printf \'%s\\n\' "$1" >> "$RECORD"; }',
        'if ! getent group "$GROUP_NAME" >/dev/null; then log "creating group $GROUP_NAME"; groupadd --system "$GROUP_NAME"; record "group $GROUP_NAME"; fi',
        'if ! id -u "$USER_NAME" >/dev/null 2>&1; then',
        '  log "creating user $USER_NAME"',
        '  useradd --system --gid "$GROUP_NAME" --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$USER_NAME"',
        '  record "user $USER_NAME"',
        "fi",
        // Nothing secret is created here, and operators must be able to read what is installed.
        "umask 022",
        'for i in "${!DIR_PATHS[@]}"; do',
        '  p="${DIR_PATHS[$i]}"',
        '  adopt=no; if recorded "dir $p" || recorded "adopted dir $p" || [ -n "$legacy" ]; then adopt=adopt; fi',
        '  if ! out=$(safe_fs --trust "$USER_NAME:$GROUP_NAME" mkdir "$p" "${DIR_OWNERS[$i]}" "${DIR_GROUPS[$i]}" "${DIR_MODES[$i]}" "$adopt" 2>&1); then fail "${DIR_KEYS[$i]}: $p: ${out#*refused: }"; fi',
        '  while read -r kind path; do case "$kind" in parent) record "parent $path" ;; created) record "dir $path" ;; esac; done <<< "$out"',
        "done",
        'log "host prepared"',
    ];
    return lines.join("\n") + "\n";
}

/** The service account the safe file helper trusts besides root (`--trust USER:GROUP`). */
export interface TrustedAccount {
    readonly user: string;
    readonly group: string;
}

/** `--trust 'USER:GROUP' ` for `account`, quoted; "" without one (root only is trusted). */
function trustWords(account?: TrustedAccount): string {
    return account ? `--trust ${q(`${account.user}:${account.group}`)} ` : "";
}

/**
 * Prints the value of `name` from the first of `envFiles` that is a regular
 * file holding it (the library's root-owned `.env`, then a hand-made one at
 * the notes' path), never following a link; prints nothing when none has it.
 * An absent file is skipped; one that exists but is refused (a link on the
 * way or as the file, a directory owned by an account not trusted, not a
 * regular file) fails the script, naming the path and why. With `account`
 * (which must exist on the host), directories the service account owns are
 * trusted too: a hand-made install's app directory is the service's.
 * The output is a secret: the caller never puts it in a message.
 */
export function readEnvValueScript(envFiles: readonly string[], name: string, account?: TrustedAccount): string {
    return [...PRELUDE, ...safeFsFunction(), `safe_fs ${trustWords(account)}env-value ${q(name)} ${shellWords(envFiles)}`].join("\n") + "\n";
}

/**
 * Prints one JSON line describing the `.env` at `path` (read it with
 * {@link parseEnvRead}): `{"state":"absent"}`, or its owner, group, mode,
 * sha256 and every assignment as systemd's `EnvironmentFile=` reads it.
 * Refused (the script fails with a `refused: …` message naming the path and
 * why, never a value): a link on the way or as the file, a directory owned by
 * an account other than root or `account`, not a regular file, a second name
 * (hard link), an owner other than root or `account`, more than 64 KiB, text
 * that is not UTF-8, a control character other than tab in a name or value.
 * `account` must exist on the host. The output is a secret: it must never
 * reach a message, a log or an error.
 */
export function envReadScript(path: string, account: TrustedAccount): string {
    return [...PRELUDE, ...safeFsFunction(), `safe_fs ${trustWords(account)}env-read ${q(path)}`].join("\n") + "\n";
}

/** Who owns a service on a host (see `ownerRecordPath`): the owning resource and its activation count. */
export interface Ownership {
    /** `<project>/<stack>/<resource>`; "" for state written before owners were recorded. */
    readonly owner: string;
    /** The owner's activation count; 0 when unknown. */
    readonly generation: number;
}

/**
 * Shell lines that exit 0 (doing nothing more) when the host's owner record
 * names another owner or a newer generation than `ownership`: a stale
 * resource's delete must never remove what a newer one wrote. No record: the
 * caller proceeds.
 */
function ownershipGuard(serviceName: string, ownership: Ownership, what: string): string[] {
    return [
        ...shellVariables({ OWNER_RECORD: ownerRecordPath(serviceName), MY_OWNER: ownership.owner, MY_GENERATION: String(ownership.generation) }),
        'if [ -f "$OWNER_RECORD" ] && [ ! -L "$OWNER_RECORD" ]; then',
        '  rec_owner=""; rec_gen=0',
        '  read -r rec_owner rec_gen < "$OWNER_RECORD" || true',
        '  case "$rec_gen" in ""|*[!0-9]*) rec_gen=0 ;; esac',
        '  if [ "$rec_owner" != "$MY_OWNER" ] || [ "$rec_gen" -gt "$MY_GENERATION" ]; then',
        `    log ${q(`leaving ${what} alone: `)}"owned by \${rec_owner:-an unknown owner} (generation $rec_gen)"`,
        "    exit 0",
        "  fi",
        "fi",
    ];
}

/** Writes stdin to the staging copy of one managed file, atomically, readable by root only. */
export function stageFileScript(serviceName: string, file: Pick<ManagedFile, "path">): string {
    const dir = stagingDir(serviceName);
    return (
        [
            ...PRELUDE,
            `DIR=${q(dir)}`,
            `ID=${q(fileIdForPath(file.path))}`,
            'install -d -m 0700 -o root -g root "$DIR"',
            // umask 077: the copy is 0600 root from its first byte, whatever it holds.
            'tmp=$(mktemp "$DIR/.incoming.XXXXXX")',
            'cat > "$tmp"',
            'mv -f "$tmp" "$DIR/$ID"',
        ].join("\n") + "\n"
    );
}

/**
 * Removes the staging copy of one managed file (the live file is the
 * activation's business), unless the service now belongs to another owner.
 */
export function unstageFileScript(serviceName: string, file: Pick<ManagedFile, "path">, ownership: Ownership = { owner: "", generation: Number.MAX_SAFE_INTEGER }): string {
    return [...PRELUDE, ...ownershipGuard(serviceName, ownership, `the staged copy of ${file.path}`), `rm -f ${q(`${stagingDir(serviceName)}/${fileIdForPath(file.path)}`)}`].join("\n") + "\n";
}

/** What the activation needs to know. */
export interface ActivationSpec {
    readonly serviceName: string;
    /** `<serviceName>.service`. */
    readonly unitName: string;
    /** The files that must be live after activation. */
    readonly files: readonly ManagedFile[];
    /** Files the previous activation owned that are no longer in config: removed if they carry the marker. */
    readonly removed: readonly Pick<ManagedFile, "path" | "effect">[];
    /** The first line of every managed file. */
    readonly marker: string;
    /** Root-owned links kept in place (the notes' `.env` path to the real file). */
    readonly links: readonly LinkSpec[];
    /** The service's account: the only one besides root trusted to own directories the activation works in. */
    readonly account: { readonly user: string; readonly group: string };
    /** The health URL probed inside the host. */
    readonly healthUrl: string;
    /** How long to wait for active + healthy, in seconds. */
    readonly healthTimeoutSec: number;
    /** Recorded on the host once the service is healthy: from then on it owns the service. */
    readonly ownership?: Ownership;
    /** What to do with unmanaged `*.conf` files in the unit's drop-in directory (default `refuse`). */
    readonly foreignDropIns?: ForeignDropInPolicy;
    /**
     * The `.env` keys holding secrets (names only): their values, read from the `.env` on the host, are
     * redacted from the journal excerpt of a failed start. Absent: every key's value is redacted.
     */
    readonly secretEnvKeys?: readonly string[];
    /** The release to switch to (built beforehand by `buildReleaseScript`), if the service runs from releases. */
    readonly release?: Pick<ReleaseSpec, "id" | "releasesDir" | "venvLink" | "appLink" | "keep">;
}

/**
 * What an activation does with unmanaged drop-ins of its unit (such as the
 * `override.conf` of `systemctl edit`), which would silently override the
 * managed settings: `refuse` fails before changing anything, naming each
 * file with its hash and directive names (never its text, which may hold
 * secrets); `remove` backs them up and removes them (and
 * puts them back if the new state is not healthy).
 */
export type ForeignDropInPolicy = "refuse" | "remove";

/** The TCP port of a health URL (its scheme's default when it names none). */
export function healthPortOf(healthUrl: string): string {
    const url = new URL(healthUrl);
    return url.port !== "" ? url.port : url.protocol === "https:" ? "443" : "80";
}

/**
 * `journal_excerpt`: the unit's journal since `$START` (epoch seconds), its last 40 lines, with the values of
 * `SECRET_ENV_KEYS` in `REDACT_ENV_FILES` masked (needs `redactFunction()`): what a failed start shows.
 */
export const JOURNAL_EXCERPT_FUNCTION =
    'journal_excerpt() { { journalctl -u "$UNIT" --since "@$START" -n 40 --no-pager -o short-iso 2>&1 || true; } | redact_output "${REDACT_ENV_FILES[@]}" -- "${SECRET_ENV_KEYS[@]}"; }';

/** What the health gate checks: the unit, its socket unit (with socket activation), the URL and how long to wait. */
export interface HealthGateSpec {
    readonly unitName: string;
    /** The socket unit holding the listener, `<service>.socket`, when the service is socket-activated. */
    readonly socketUnit?: string;
    readonly healthUrl: string;
    readonly healthTimeoutSec: number;
}

/** The socket unit among an activation's files (`<service>.socket` beside the unit), if the service is socket-activated. */
export function socketUnitOf(spec: Pick<ActivationSpec, "unitName" | "files">): string | undefined {
    const name = spec.unitName.replace(/\.service$/, ".socket");
    return spec.files.some((f) => f.path === `/etc/systemd/system/${name}`) ? name : undefined;
}

/**
 * The health gate, shared by the activation and the operator's `restart`: sets `UNIT`, `HEALTH_URL`,
 * `HEALTH_PORT` and `HEALTH_TIMEOUT`, and defines `health_ok`, `restarts`, `listener_check`,
 * `port_holder_note` and `wait_healthy` (which logs with the prelude's `log`).
 */
export function healthGateLines(spec: HealthGateSpec): string[] {
    return [
        ...shellVariables({
            UNIT: spec.unitName,
            SOCKET: spec.socketUnit ?? "",
            HEALTH_URL: spec.healthUrl,
            HEALTH_PORT: healthPortOf(spec.healthUrl),
            HEALTH_TIMEOUT: String(spec.healthTimeoutSec),
        }),
        "health_ok() {",
        "  python3 -c 'import sys, urllib.request\ntry:\n    r = urllib.request.urlopen(sys.argv[1], timeout=5)\n    sys.exit(0 if r.status == 200 else 1)\nexcept Exception:\n    sys.exit(1)' \"$HEALTH_URL\"",
        "}",
        "restarts() { systemctl show -p NRestarts --value \"$UNIT\" 2>/dev/null || echo 0; }",
        // uvicorn's supervisor (--workers 2+) outlives workers that fail to start and keeps replacing them: the unit stays
        // active, holding the listener, while no process accepts. Its own log lines of this start (this invocation) say so.
        // startup_failed SINCE: only lines since SINCE (epoch seconds), so a worker that died hours ago in a run that is
        // healthy now does not fail a check that restarts nothing.
        "startup_failed() {",
        '  local id',
        '  id=$(systemctl show -p InvocationID --value "$UNIT" 2>/dev/null || true)',
        '  [ -n "$id" ] || return 1',
        "  journalctl -q --no-pager -o cat --since \"@$1\" \"_SYSTEMD_INVOCATION_ID=$id\" 2>/dev/null | grep -e 'Application startup failed' -e 'Child process \\[[0-9]*\\] died' >/dev/null",
        "}",
        ...listenerCheckLines(),
        // "; port N is held by …" when a process outside the unit listens on the health port (else nothing).
        "port_holder_note() {",
        '  local holder rc=0',
        '  holder=$(listener_check) || rc=$?',
        '  if [ "$rc" = 3 ]; then printf \'; port %s is held by %s, not by %s\' "$HEALTH_PORT" "${holder//$\'\\n\'/; }" "$UNIT"; fi',
        "}",
        // Waits until the unit is active, the health URL answers 200 and the port's listener is the unit's own process
        // (whoever else answers is named, never taken for the service); fails early if the unit fails or restarts.
        "wait_healthy() {",
        '  local since deadline base state holder rc unseen=""',
        '  since=$(date +%s); deadline=$(( since + HEALTH_TIMEOUT ))',
        "  base=$(restarts)",
        "  while :; do",
        '    state=$(systemctl is-active "$UNIT" 2>/dev/null || true)',
        // Before the probe, which would wait its whole timeout on a listener nobody accepts from.
        '    if [ "$state" = active ] && startup_failed "$since"; then workers_failed=1; log "$UNIT is active, but its workers fail to start (uvicorn: Application startup failed)$(port_holder_note)"; return 1; fi',
        '    if [ "$state" = active ] && health_ok; then',
        '      rc=0; holder=$(listener_check) || rc=$?',
        '      if [ "$rc" = 0 ]; then return 0; fi',
        '      if [ "$rc" = 3 ]; then log "$HEALTH_URL answered, but not from $UNIT: port $HEALTH_PORT is held by ${holder//$\'\\n\'/; }"; return 1; fi',
        '      unseen="; $HEALTH_URL answered, but no process of $UNIT was seen listening on port $HEALTH_PORT"',
        "    fi",
        '    if [ "$state" = failed ]; then log "$UNIT failed$(port_holder_note)"; return 1; fi',
        '    if [ "$(restarts)" != "$base" ]; then log "$UNIT exited and was restarted by systemd$(port_holder_note)"; return 1; fi',
        '    if [ "$(date +%s)" -ge "$deadline" ]; then log "$UNIT not healthy after ${HEALTH_TIMEOUT}s ($state)${unseen}$(port_holder_note)"; return 1; fi',
        "    sleep 1",
        "  done",
        "}",
    ];
}

/**
 * Shared shell functions for activation and rollback: health probing and the journal excerpt. The excerpt
 * reaches error messages (and CI logs), so it is redacted on the host: each secret `.env` value (the live
 * `.env` and its backup, the previous one) becomes `[secret KEY]`, URL credentials `[redacted]`, and every
 * line is cut to a bounded length.
 */
function healthFunctions(spec: ActivationSpec): string[] {
    const envFile = envStorePath(spec.serviceName);
    const socketUnit = socketUnitOf(spec);
    return [
        ...healthGateLines({ ...spec, ...(socketUnit !== undefined ? { socketUnit } : {}) }),
        ...redactFunction(),
        bashArray("REDACT_ENV_FILES", [envFile, `${backupDir(spec.serviceName)}/${fileIdForPath(envFile)}`]),
        bashArray("SECRET_ENV_KEYS", spec.secretEnvKeys ?? ["*"]),
        JOURNAL_EXCERPT_FUNCTION,
    ];
}

/**
 * The activation: verifies the staged unit and drop-ins under their real
 * names, swaps changed files into place (keeping backups), removes files that
 * left the config, reloads systemd once, enables the unit, restarts it only if
 * something it reads changed (or it is not running), and waits until it is
 * active and healthy. On failure it restores the previous files, reloads,
 * restarts, and exits non-zero with the journal excerpt on stderr.
 */
export function activationScript(spec: ActivationSpec): string {
    const lines = [
        // Survive a dropped SSH connection: finish (or roll back) instead of stopping half-way.
        ...DETACHED_PRELUDE,
        ...shellVariables({ SERVICE: spec.serviceName, STAGE: stagingDir(spec.serviceName), BACKUP: backupDir(spec.serviceName), MARKER: `# ${spec.marker}` }),
        ...bashColumns("", spec.files, { IDS: (f) => fileIdForPath(f.path), PATHS: (f) => f.path, MODES: (f) => f.mode, OWNERS: (f) => f.owner, GROUPS_: (f) => f.group, EFFECTS: (f) => f.effect }),
        bashArray("REMOVED_PATHS", spec.removed.map((f) => f.path)),
        bashArray("REMOVED_IDS", spec.removed.map((f) => fileIdForPath(f.path))),
        bashArray("LINK_PATHS", spec.links.map((l) => l.path)),
        bashArray("LINK_TARGETS", spec.links.map((l) => l.target)),
        `ACCOUNT=${q(`${spec.account.user}:${spec.account.group}`)}`,
        ...safeFsFunction(),
        ...safeFsServeFunctions(),
        // safe OP ARGS…: the helper (one interpreter for the whole activation, see safe_fs_serve), trusting root and the
        // service's account (nobody else) to own the directories it walks.
        'safe() { safe_fs_call --trust "$ACCOUNT" "$@"; }',
        ...foreignUnitFunction(spec.serviceName),
        ...dropInSummaryFunction(),
        // What a change to each file triggers (model/triggers.ts), one 0/1 flag per file and action.
        ...triggerArrays("", spec.files),
        ...triggerArrays("REMOVED_", spec.removed),
        ...healthFunctions(spec),
        ...portHandoverFunctions(),
        ...auditLines(spec.serviceName, spec.ownership?.owner ?? ""),
        ...(spec.release ? releaseActivationLines(spec.release) : ["release_check() { :; }", "release_switch() { :; }", "release_rollback() { :; }", "release_prune() { :; }"]),
        "START=$(date +%s)",
        // Everything goes to a root-only log replayed at exit (stdout on success, stderr on failure), so a
        // dropped connection (a broken pipe) cannot stop the activation half-way.
        'verify_dir=""',
        'RUNLOG=$(mktemp /run/amarktai-infra-activation.XXXXXX)',
        'exec 3>&1 4>&2 >"$RUNLOG" 2>&1',
        "safe_fs_serve",
        'finish() { local rc=$?; rm -rf "$verify_dir"; { if [ "$rc" -eq 0 ]; then cat "$RUNLOG" >&3; else cat "$RUNLOG" >&4; fi; } 2>/dev/null || true; rm -f "$RUNLOG"; exit "$rc"; }',
        "trap finish EXIT",
        'exec 9>"/run/amarktai-infra-$SERVICE.lock"',
        "flock -w 600 9 || fail 'another activation is still running'",
        // Never replace a unit the library did not write (a system unit, a package's, a hand-made one).
        'refuse_foreign_unit "$UNIT"',
        // A socket unit of the same name would hand its listener to the service: never someone else's. Socket activation
        // on or off, this is the socket unit's one path (a previous activation may have written it).
        'SOCKET_FILE="/etc/systemd/system/${UNIT%.service}.socket"',
        'refuse_foreign_unit "${SOCKET_FILE##*/}"',
        // A file not readable by others (the .env) keeps no staged copy once it is live: no second copy of a secret.
        'sensitive() { [ $(( 8#${MODES[$1]} & 4 )) -eq 0 ]; }',
        'for i in "${!IDS[@]}"; do',
        '  [ -f "$STAGE/${IDS[$i]}" ] && continue',
        '  if sensitive "$i" && [ -f "${PATHS[$i]}" ]; then continue; fi',
        '  fail "staged copy of ${PATHS[$i]} is missing; run pulumi up again"',
        "done",
        // Unmanaged drop-ins would override the managed settings unseen: refused, or removed (see ForeignDropInPolicy).
        `FOREIGN_POLICY=${q(spec.foreignDropIns ?? "refuse")}`,
        'DROPIN_DIR="/etc/systemd/system/$UNIT.d"',
        // A hand-made drop-in an adoption took over (hosts[i].adopt) is removed like one of foreignDropIns: remove, while
        // its bytes are those the adoption recorded (and backed up for good): its settings are in the config.
        "foreign=(); unadopted=()",
        'if [ -d "$DROPIN_DIR" ] && [ ! -L "$DROPIN_DIR" ]; then',
        '  for f in "$DROPIN_DIR"/*.conf; do',
        '    [ -e "$f" ] || [ -L "$f" ] || continue',
        '    if [ -L "$f" ] || [ ! -f "$f" ] || [ "$(head -n 1 "$f")" != "$MARKER" ]; then foreign+=("$f"); adopted dropin "$f" || unadopted+=("$f"); fi',
        "  done",
        "fi",
        'if [ "${#foreign[@]}" -gt 0 ]; then',
        '  if [ "${#unadopted[@]}" -gt 0 ] && [ "$FOREIGN_POLICY" != remove ]; then',
        // Named with their hash and directive names, never their text (an `Environment=TOKEN=…` must not reach a log).
        '    summarise_dropin text "${unadopted[@]}" >&2 || true',
        '    fail "unmanaged drop-in(s) ${unadopted[*]} would override the managed settings of $UNIT: remove them, put their settings in overrides in the stack config (with adopt: true on the host, a hand-made install is then taken over), or set foreignDropIns: remove. Nothing was changed."',
        "  fi",
        "  need_reload=1; need_restart=1",
        "fi",
        "release_check",
        // The first release switches before verification: the unit's ExecStart= (the venv's python) lives in it.
        'if [ -n "${RELEASES:-}" ] && [ ! -e "$RELEASES/current" ]; then release_switch; fi',
        // Verify the unit and its drop-ins together, under their real names, before anything goes live.
        'verify_dir=$(mktemp -d /run/amarktai-infra-verify.XXXXXX)',
        'mkdir -p "$verify_dir/$UNIT.d"',
        'unit_staged=""',
        'for i in "${!IDS[@]}"; do',
        '  [ "${EFFECTS[$i]}" = systemd ] || continue',
        '  case "${PATHS[$i]}" in',
        '    */"$UNIT") cp "$STAGE/${IDS[$i]}" "$verify_dir/$UNIT"; unit_staged=1 ;;',
        '    "$SOCKET_FILE") cp "$STAGE/${IDS[$i]}" "$verify_dir/${SOCKET_FILE##*/}" ;;',
        '    */"$UNIT.d"/*) cp "$STAGE/${IDS[$i]}" "$verify_dir/$UNIT.d/${PATHS[$i]##*/}" ;;',
        "  esac",
        "done",
        'if [ -n "$unit_staged" ]; then',
        '  verify_units=("$verify_dir/$UNIT"); if [ -n "$SOCKET" ] && [ -f "$verify_dir/$SOCKET" ]; then verify_units+=("$verify_dir/$SOCKET"); fi',
        '  if ! SYSTEMD_UNIT_PATH="$verify_dir:" systemd-analyze verify "${verify_units[@]}" > "$verify_dir/verify.log" 2>&1; then',
        // Its messages may quote a value read from a drop-in: redacted like the journal.
        '    redact_output "${REDACT_ENV_FILES[@]}" -- "${SECRET_ENV_KEYS[@]}" < "$verify_dir/verify.log" >&2',
        "    release_rollback",
        '    fail "systemd-analyze verify refused the new $UNIT; nothing was changed"',
        "  fi",
        "fi",
        // Work out what changes (the helper compares bytes, owner, mode and that the live file is a plain file with one name).
        'changed=(); need_journald=""; socket_changed=""; socket_removed=""',
        'need_reload="${need_reload:-}"; need_restart="${need_restart:-}"',
        // Set need_* for what changing (removing) file $1 triggers.
        'note_change() { [ "${RELOADS[$1]}" = 1 ] && need_reload=1; [ "${RESTARTS[$1]}" = 1 ] && need_restart=1; [ "${JOURNALDS[$1]}" = 1 ] && need_journald=1; return 0; }',
        'note_removal() { [ "${REMOVED_RELOADS[$1]}" = 1 ] && need_reload=1; [ "${REMOVED_RESTARTS[$1]}" = 1 ] && need_restart=1; [ "${REMOVED_JOURNALDS[$1]}" = 1 ] && need_journald=1; return 0; }',
        'for i in "${!IDS[@]}"; do',
        '  [ -f "$STAGE/${IDS[$i]}" ] || continue',
        '  rc=0; safe same "$STAGE/${IDS[$i]}" "${PATHS[$i]}" "${OWNERS[$i]}" "${GROUPS_[$i]}" "${MODES[$i]}" || rc=$?',
        '  [ "$rc" -eq 0 ] && continue',
        '  changed+=("$i")',
        '  [ "${PATHS[$i]}" = "$SOCKET_FILE" ] && socket_changed=1',
        '  note_change "$i"',
        "done",
        'relink=()',
        'for i in "${!LINK_PATHS[@]}"; do',
        '  if [ -L "${LINK_PATHS[$i]}" ] && [ "$(stat -c %u "${LINK_PATHS[$i]}")" = 0 ] && [ "$(readlink "${LINK_PATHS[$i]}")" = "${LINK_TARGETS[$i]}" ]; then continue; fi',
        '  relink+=("$i")',
        "done",
        "removing=()",
        'for i in "${!REMOVED_PATHS[@]}"; do',
        '  p="${REMOVED_PATHS[$i]}"',
        '  [ -f "$p" ] && [ ! -L "$p" ] || continue',
        '  if [ "$(head -n 1 "$p")" != "$MARKER" ]; then log "leaving $p alone: not written by amarktai-infra"; continue; fi',
        '  removing+=("$i")',
        '  [ "$p" = "$SOCKET_FILE" ] && socket_removed=1',
        '  note_removal "$i"',
        "done",
        // Back up what is about to change (in root's state directory), so a failed start can be undone.
        'rm -rf "$BACKUP"; install -d -m 0700 -o root -g root "$BACKUP"',
        ': > "$BACKUP/entries"',
        // backup PATH KEY: the helper keeps a plain file (or a root-owned link) under KEY, without following anything.
        'backup() { safe backup "$1" "$BACKUP" "$2" >/dev/null; printf \'%s\\t%s\\n\' "$2" "$1" >> "$BACKUP/entries"; }',
        'for i in "${changed[@]}"; do backup "${PATHS[$i]}" "${IDS[$i]}"; done',
        'for i in "${removing[@]}"; do backup "${REMOVED_PATHS[$i]}" "${REMOVED_IDS[$i]}"; done',
        'for f in "${foreign[@]}"; do backup "$f" "foreign_${f##*/}"; done',
        'for i in "${relink[@]}"; do backup "${LINK_PATHS[$i]}" "link-$i"; done',
        'restore_files() { while IFS=$\'\\t\' read -r key p; do [ -n "$p" ] && { safe restore "$BACKUP" "$key" "$p" || log "could not restore $p"; }; done < "$BACKUP/entries"; }',
        // A refused step (a link or a foreign directory on the way) puts back what was already swapped and fails with the helper's message.
        'swap_failed() {',
        '  local what="$1"; audit refused; restore_files; release_rollback; systemctl daemon-reload || true',
        // A socket stopped for its removal listens again, and the service it stopped runs again.
        '  if [ -n "$socket_removed" ]; then systemctl enable --quiet "${SOCKET_FILE##*/}" || true; systemctl start "${SOCKET_FILE##*/}" "$UNIT" || true; fi',
        '  rm -rf "$BACKUP"; fail "$what; nothing was changed (the files already swapped were restored)"',
        "}",
        // Swap in through the helper: a fresh temporary file beside the target, owner and mode set on its fd, renamed over the target.
        'for i in "${changed[@]}"; do',
        '  p="${PATHS[$i]}"',
        '  safe install "$STAGE/${IDS[$i]}" "$p" "${OWNERS[$i]}" "${GROUPS_[$i]}" "${MODES[$i]}" || swap_failed "could not install $p safely"',
        '  log "installed $p"',
        "done",
        // Socket activation turned off: the socket lets go of the port (and, by Requires=, stops the service) while its
        // unit file still exists, so that systemctl can disable it; the restart below starts the service on the port itself.
        'if [ -n "$socket_removed" ]; then log "stopping ${SOCKET_FILE##*/} (socket activation turned off)"; systemctl disable --now --quiet "${SOCKET_FILE##*/}" || true; fi',
        'for i in "${removing[@]}"; do safe remove "${REMOVED_PATHS[$i]}" "$MARKER" || swap_failed "could not remove ${REMOVED_PATHS[$i]} safely"; done',
        'for i in "${relink[@]}"; do safe symlink "${LINK_TARGETS[$i]}" "${LINK_PATHS[$i]}" || swap_failed "could not link ${LINK_PATHS[$i]} safely"; done',
        'for f in "${foreign[@]}"; do',
        '  if adopted dropin "$f"; then why="adopted: its settings are in the config; the adoption kept a copy"; else why="foreignDropIns: remove"; fi',
        '  rm -f "$f"; log "removed the unmanaged drop-in $f ($why)"',
        "done",
        'rmdir "/etc/systemd/system/$UNIT.d" 2>/dev/null || true',
        // The release: fixed paths linked to `current`, `current` renamed to the new release (a restart if it changed).
        "release_switch",
        // The restart; a held listener is let go once the old process has closed its own (restart returned): what waits
        // in its queue moves to the socket's.
        // Stopped for the move to the socket, the service may already run again, started by a connection to the socket
        // with today's files: started then, not restarted (a second start for nothing).
        'restart_unit() { local rc=0; if [ -n "${unit_stopped:-}" ]; then systemctl start "$UNIT" || rc=$?; else systemctl restart "$UNIT" || rc=$?; fi; handover_release; return "$rc"; }',
        "rollback() {",
        '  log "rolling back to the previous files"',
        "  handover_release",
        "  restore_files",
        "  release_rollback",
        "  systemctl daemon-reload",
        '  if [ -n "$need_journald" ]; then systemctl restart systemd-journald || true; fi',
        // The socket as it was: gone (the service binds the port itself again), or back on its previous address.
        '  if [ -n "$socket_changed$socket_removed" ]; then',
        '    if [ -f "$SOCKET_FILE" ]; then systemctl enable --quiet "${SOCKET_FILE##*/}" || true; systemctl stop "$UNIT" || true; systemctl restart "${SOCKET_FILE##*/}" || true',
        '    else systemctl disable --now --quiet "${SOCKET_FILE##*/}" 2>/dev/null || true; fi',
        "  fi",
        // A supervisor whose workers never started serves nothing, and can take up to its worker health-check timeout to
        // notice a stop (it waits for the newest worker to answer): killed, so that the previous version starts at once.
        '  if [ -n "${workers_failed:-}" ]; then systemctl kill --signal=SIGKILL "$UNIT" 2>/dev/null || true; fi',
        '  if systemctl cat "$UNIT" >/dev/null 2>&1; then systemctl restart "$UNIT" || true; wait_healthy || log "the previous version is not healthy either"; fi',
        "}",
        // Enable without enable's own reload (--no-reload): the one daemon-reload below covers it.
        'if ! systemctl is-enabled --quiet "$UNIT" 2>/dev/null; then systemctl enable --no-reload --quiet "$UNIT"; need_reload=1; fi',
        'if [ -n "$SOCKET" ] && ! systemctl is-enabled --quiet "$SOCKET" 2>/dev/null; then systemctl enable --no-reload --quiet "$SOCKET"; need_reload=1; fi',
        // A running service that binds the port itself (the notes' layout: an adopted install, or socket activation just
        // turned on) hands its listener over instead of letting go first: the socket joins it with ReusePort= (a runtime
        // drop-in, gone at reboot) while a root helper holds the old listener open (see handover.ts).
        'handover=""',
        'if [ -n "$SOCKET" ] && ! systemctl is-active --quiet "$SOCKET" && systemctl is-active --quiet "$UNIT"; then',
        '  HANDOVER_DROPIN="/run/systemd/system/$SOCKET.d/50-amarktai-infra-handover.conf"',
        '  install -d -m 0755 -o root -g root "${HANDOVER_DROPIN%/*}"',
        "  printf '[Socket]\\nReusePort=yes\\n' > \"$HANDOVER_DROPIN\"",
        "  need_reload=1; handover=1",
        "fi",
        'if [ -n "$need_reload" ]; then log "systemctl daemon-reload"; systemctl daemon-reload; fi',
        'if [ -n "$need_journald" ]; then log "restarting systemd-journald"; systemctl restart systemd-journald; fi',
        'if [ -z "$need_restart" ] && ! systemctl is-active --quiet "$UNIT"; then need_restart=1; fi',
        'socket_ok=1',
        'if [ -n "$SOCKET" ] && { [ -n "$socket_changed" ] || ! systemctl is-active --quiet "$SOCKET"; }; then',
        // A service that binds the port itself (before socket activation) hands its listener over, or else lets go of it
        // first (one gap). Either way it is stopped before the socket starts: starting (restarting) a socket whose service
        // runs restarts that service too (Requires=), which would be a second start. Held, the old listener keeps
        // queueing connections while nothing serves; once the socket listens beside it, it is let go and its queue
        // moves to the socket's (tcp_migrate_req), where the new process takes it.
        '  if ! systemctl is-active --quiet "$SOCKET"; then',
        '    listen=$(systemctl show -p Listen --value "$SOCKET" | head -n 1); listen="${listen% (*}"; listen_host="${listen%:*}"; listen_host="${listen_host#[}"; listen_host="${listen_host%]}"',
        '    HANDOVER_WHY="the service was not running"',
        '    if [ -n "$handover" ] && handover_hold "$listen_host" "$HEALTH_PORT" "$(systemctl show -p ControlGroup --value "$UNIT")"; then',
        '      log "holding port $HEALTH_PORT open while $SOCKET takes it over from pid $HANDOVER_PID (no connection refused)"',
        "    else",
        '      log "moving port $HEALTH_PORT to $SOCKET: the service lets go of it first, a short gap ($HANDOVER_WHY)"',
        "    fi",
        '    systemctl stop "$UNIT" || true; unit_stopped=1',
        "  fi",
        '  log "starting $SOCKET"',
        '  if ! systemctl restart "$SOCKET" && [ -n "${HANDOVER_PID:-}" ]; then',
        '    log "$SOCKET could not join the held listener; letting it go first (a short gap)"',
        '    handover_release; systemctl restart "$SOCKET" || socket_ok=""',
        '  elif ! systemctl is-active --quiet "$SOCKET"; then socket_ok=""; fi',
        "  handover_release",
        "  need_restart=1",
        "fi",
        'if [ -n "$need_restart" ]; then',
        '  log "restarting $UNIT"',
        '  if [ -z "$socket_ok" ]; then log "$SOCKET could not listen on port $HEALTH_PORT$(port_holder_note)"; fi',
        '  if [ -z "$socket_ok" ] || ! restart_unit || ! wait_healthy; then',
        '    excerpt=$(journal_excerpt)',
        "    rollback",
        '    audit "rolled back"',
        '    rm -rf "$BACKUP"',
        '    printf \'%s did not become healthy; the previous files were restored.\\n--- journal of %s ---\\n%s\\n\' "$UNIT" "$UNIT" "$excerpt" >&2',
        "    exit 1",
        "  fi",
        "else",
        '  wait_healthy || { audit unhealthy; printf \'%s is not healthy.\\n--- journal of %s ---\\n%s\\n\' "$UNIT" "$UNIT" "$(journal_excerpt)" >&2; exit 1; }',
        "fi",
        'rm -rf "$BACKUP"',
        "release_prune",
        'for i in "${!IDS[@]}"; do if sensitive "$i"; then rm -f "$STAGE/${IDS[$i]}"; fi; done',
        ...ownerRecordLines(spec),
        "audit healthy",
        'log "$UNIT active and healthy (${#changed[@]} file(s) changed, ${#removing[@]} removed, restart: ${need_restart:-no})"',
    ];
    return lines.join("\n") + "\n";
}

/** Records the activation's owner and generation on the host (root-only, written atomically). */
function ownerRecordLines(spec: ActivationSpec): string[] {
    if (!spec.ownership) return [];
    const record = ownerRecordPath(spec.serviceName);
    return [
        `install -d -m 0700 -o root -g root ${q(serviceStateDir(spec.serviceName))}`,
        `printf '%s %s\\n' ${q(spec.ownership.owner)} ${q(String(spec.ownership.generation))} > ${q(`${record}.tmp`)}`,
        `mv -f ${q(`${record}.tmp`)} ${q(record)}`,
    ];
}

/**
 * Runs `script` as a transient systemd service and waits for it, so the work
 * belongs to systemd, not to the SSH session: a dropped connection cannot
 * stop it half-way (apt, a swap of files, a restart). Its exit code and
 * output come back as if it had run in place. `--expand-environment=no`
 * (systemd 254+; Ubuntu 24.04 has 255) keeps systemd from expanding `$…`
 * in the script; a host whose systemd is older, or not PID 1, is refused
 * before `systemd-run` is reached, naming the version found and the one
 * needed.
 */
export function detachedScript(description: string, script: string): string {
    return (
        [
            ...PRELUDE,
            ...osReleaseFunctions(),
            ...systemdLines(),
            `exec systemd-run --quiet --wait --pipe --collect --service-type=exec --expand-environment=no --description=${q(`amarktai-infra: ${description}`)} -- /bin/bash -c ${quoteScript(script)}`,
        ].join("\n") + "\n"
    );
}

/** What removal needs: the files to remove (only if marked) and whether to purge data. */
export interface RemovalSpec {
    readonly serviceName: string;
    readonly unitName: string;
    /** Unit files, drop-ins and journald drop-ins: removed when they carry the marker. */
    readonly files: readonly Pick<ManagedFile, "path" | "effect">[];
    readonly marker: string;
    /** When set, also remove these data paths and the user and group. */
    readonly purge?: PurgeSpec;
    /** The removing resource: nothing is removed when the host's owner record names another owner or a newer generation. */
    readonly ownership?: Ownership;
}

/** Stops and disables the service, removes the systemd files it owns, reloads, and (only with purge) removes data and the user. */
export function removalScript(spec: RemovalSpec): string {
    const lines = [
        ...DETACHED_PRELUDE,
        `UNIT=${q(spec.unitName)}`,
        `MARKER=${q(`# ${spec.marker}`)}`,
        bashArray("PATHS", spec.files.map((f) => f.path)),
        bashArray("JOURNALDS", spec.files.map((f) => flag(f.effect, "restart-journald"))),
        ...ownershipGuard(spec.serviceName, spec.ownership ?? { owner: "", generation: Number.MAX_SAFE_INTEGER }, spec.unitName),
        // The socket first, with the unit in one transaction: a connection in between would start the service again.
        'SOCKET_UNIT="${UNIT%.service}.socket"; socket_file="/etc/systemd/system/$SOCKET_UNIT"',
        'if [ -f "$socket_file" ] && [ ! -L "$socket_file" ] && [ "$(head -n 1 "$socket_file")" = "$MARKER" ]; then log "stopping and disabling $SOCKET_UNIT"; systemctl disable --now --quiet "$SOCKET_UNIT" "$UNIT" || true; fi',
        'if systemctl cat "$UNIT" >/dev/null 2>&1; then log "stopping and disabling $UNIT"; systemctl disable --now --quiet "$UNIT" || true; fi',
        'journald=""',
        'for i in "${!PATHS[@]}"; do',
        '  p="${PATHS[$i]}"',
        '  [ -f "$p" ] || continue',
        '  if [ "$(head -n 1 "$p")" != "$MARKER" ]; then log "leaving $p alone: not written by amarktai-infra"; continue; fi',
        '  rm -f "$p"; log "removed $p"',
        '  [ "${JOURNALDS[$i]}" = 1 ] && journald=1',
        "done",
        'rmdir "/etc/systemd/system/$UNIT.d" 2>/dev/null || true',
        "systemctl daemon-reload",
        'systemctl reset-failed "$UNIT" "$SOCKET_UNIT" 2>/dev/null || true',
        'if [ -n "$journald" ]; then systemctl restart systemd-journald; fi',
        `STATE=${q(serviceStateDir(spec.serviceName))}`,
        `RECORD=${q(createdRecordPath(spec.serviceName))}`,
        'recorded() { [ -f "$RECORD" ] && grep -qxF -- "$1" "$RECORD"; }',
    ];
    if (spec.purge) {
        lines.push(
            ...safeFsFunction(),
            `USER_NAME=${q(spec.purge.user)}`,
            `GROUP_NAME=${q(spec.purge.group)}`,
            `ENV_LINK=${q(spec.purge.envLink)}`,
            `ENV_STORE=${q(envStorePath(spec.serviceName).replace(/\/[^/]+$/, ""))}`,
            // Only what the record lists as created by the library goes; what existed before stays.
            'trust=(); if id -u "$USER_NAME" >/dev/null 2>&1 && getent group "$GROUP_NAME" >/dev/null; then trust=(--trust "$USER_NAME:$GROUP_NAME"); fi',
            'if [ -L "$ENV_LINK" ] && [ "$(stat -c %u "$ENV_LINK")" = 0 ]; then safe_fs "${trust[@]}" remove "$ENV_LINK" || true; fi',
            'safe_fs rmtree "$ENV_STORE"',
            bashArray("RELEASE_LINKS", spec.purge.releaseLinks ?? []),
            'for l in "${RELEASE_LINKS[@]}"; do if [ -L "$l" ] && [ "$(stat -c %u "$l")" = 0 ]; then safe_fs "${trust[@]}" remove "$l" || true; fi; done',
            // Directories it created, shortest first (a directory takes the ones inside it along); then the parents it created, deepest first, if empty.
            // An adopted install's own files (its venv and app, moved aside into the releases directory) stay, like its backup.
            'adopted=""; if [ -f "$RECORD" ] && grep -q "^adopted backup " "$RECORD"; then adopted=1; fi',
            'purge_dir() {',
            '  local p="$1" e',
            '  if [ -n "$adopted" ] && [ -d "$p" ] && [ ! -L "$p" ] && compgen -G "$p/before-releases-*" >/dev/null; then',
            '    for e in "$p"/* "$p"/.[!.]*; do [ -e "$e" ] || [ -L "$e" ] || continue; case "${e##*/}" in before-releases-*) ;; *) safe_fs rmtree "$e" ;; esac; done',
            '    log "kept $p/before-releases-* (files of the adopted install)"',
            '  else safe_fs rmtree "$p"; fi',
            '}',
            'if [ -f "$RECORD" ]; then',
            "  sed -n 's/^dir //p' \"$RECORD\" | awk '{ print length($0) \"\\t\" $0 }' | sort -n | cut -f2- | while IFS= read -r p; do purge_dir \"$p\"; done",
            "  sed -n 's/^parent //p' \"$RECORD\" | awk '{ print length($0) \"\\t\" $0 }' | sort -rn | cut -f2- | while IFS= read -r p; do safe_fs rmdir \"$p\"; done",
            "fi",
            'if recorded "user $USER_NAME" && id -u "$USER_NAME" >/dev/null 2>&1; then userdel "$USER_NAME"; log "removed user $USER_NAME"; elif id -u "$USER_NAME" >/dev/null 2>&1; then log "kept user $USER_NAME: not created by amarktai-infra"; fi',
            'if recorded "group $GROUP_NAME" && getent group "$GROUP_NAME" >/dev/null; then groupdel "$GROUP_NAME" || true; fi',
            // The adoption's backup (and the record that says what was adopted) outlive a purge: the hand-made install's only copy.
            'if [ -n "$adopted" ]; then find "$STATE" -mindepth 1 -maxdepth 1 ! -name created ! -name "adopted-*" -exec rm -rf {} +; log "kept the backup of the adopted install in $STATE"; else rm -rf "$STATE"; fi',
        );
    } else {
        // The record of what the library created stays, so a later up or purge still knows what is the library's;
        // everything else in the state directory (staged copies, backups) goes.
        lines.push(
            'if [ -d "$STATE" ]; then find "$STATE" -mindepth 1 -maxdepth 1 ! -name created ! -name "adopted-*" -exec rm -rf {} +; fi',
            'log "kept the user, app, venv, releases, logs and .env (purgeOnDestroy is off)"',
        );
    }
    return lines.join("\n") + "\n";
}
