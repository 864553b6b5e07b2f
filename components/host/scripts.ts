/**
 * Generators of every shell script this library sends to a host. Each script
 * is idempotent, runs under `set -euo pipefail`, quotes every value with
 * {@link shellQuote}, and never carries a secret: secret content comes on stdin.
 */
import { FileEffect, HostAction, ManagedFile, PrepareSpec, PurgeSpec, backupDir, fileIdForPath, ownerRecordPath, serviceStateDir, stagingDir, triggers } from "../model";
import { quoteScript, shellQuote as q, shellWords } from "./shell";

const PRELUDE = ["set -euo pipefail", "export LC_ALL=C", "umask 077", "log() { printf '[amarktai-infra] %s\\n' \"$*\" || true; }", "fail() { printf '[amarktai-infra] error: %s\\n' \"$*\" >&2; exit 1; }"];

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

/** A bash array literal with every element quoted. */
function bashArray(name: string, values: readonly string[]): string {
    return `${name}=(${shellWords(values)})`;
}

/** Prepares a host: checks prerequisites (systemd as PID 1, python3, Debian/Ubuntu), installs python3-venv when missing, creates the user, directories and venv, and installs requirements when they changed. */
export function prepareScript(spec: PrepareSpec): string {
    const lines = [
        ...PRELUDE,
        "trap '' HUP PIPE",
        // Nothing secret is created here, and operators must be able to read the venv (the notes `source` it to debug).
        "umask 022",
        `USER_NAME=${q(spec.user)}`,
        `GROUP_NAME=${q(spec.group)}`,
        `VENV=${q(spec.venv)}`,
        bashArray("REQUIREMENTS", spec.requirements),
        bashArray("DIR_PATHS", spec.directories.map((d) => d.path)),
        bashArray("DIR_OWNERS", spec.directories.map((d) => d.owner)),
        bashArray("DIR_GROUPS", spec.directories.map((d) => d.group)),
        bashArray("DIR_MODES", spec.directories.map((d) => d.mode)),
        "[ -r /etc/os-release ] || fail 'cannot read /etc/os-release'",
        ". /etc/os-release",
        'case " ${ID:-} ${ID_LIKE:-} " in *" debian "*|*" ubuntu "*) ;; *) fail "unsupported OS ${PRETTY_NAME:-unknown}: Ubuntu 24.04 (or Debian) is required";; esac',
        "[ -d /run/systemd/system ] || fail 'systemd is not running as PID 1'",
        "command -v systemctl >/dev/null || fail 'systemctl not found'",
        "need=()",
        "command -v python3 >/dev/null || need+=(python3)",
        // Ubuntu cloud images ship python3 without venv/ensurepip.
        "if command -v python3 >/dev/null && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then need+=(python3-venv); fi",
        'if [ "${#need[@]}" -gt 0 ]; then',
        '  log "installing ${need[*]}"',
        "  export DEBIAN_FRONTEND=noninteractive",
        "  apt-get update -q >/dev/null",
        '  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null',
        "fi",
        'getent group "$GROUP_NAME" >/dev/null || { log "creating group $GROUP_NAME"; groupadd --system "$GROUP_NAME"; }',
        'if ! id -u "$USER_NAME" >/dev/null 2>&1; then',
        '  log "creating user $USER_NAME"',
        '  useradd --system --gid "$GROUP_NAME" --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$USER_NAME"',
        "fi",
        'for i in "${!DIR_PATHS[@]}"; do',
        '  install -d -o "${DIR_OWNERS[$i]}" -g "${DIR_GROUPS[$i]}" -m "${DIR_MODES[$i]}" "${DIR_PATHS[$i]}"',
        "done",
        'if [ ! -x "$VENV/bin/python" ]; then',
        '  log "creating the virtualenv $VENV"',
        '  runuser -u "$USER_NAME" -- python3 -m venv "$VENV"',
        "fi",
        'wanted=$(printf \'%s\\n\' "${REQUIREMENTS[@]}")',
        'marker="$VENV/.amarktai-infra-requirements"',
        'if [ "${#REQUIREMENTS[@]}" -gt 0 ] && [ "$(cat "$marker" 2>/dev/null || true)" != "$wanted" ]; then',
        '  log "installing requirements: ${REQUIREMENTS[*]}"',
        '  runuser -u "$USER_NAME" -- env HOME=/tmp PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/pip" install -q "${REQUIREMENTS[@]}"',
        '  printf \'%s\\n\' "$wanted" > "$marker.tmp" && chown "$USER_NAME:$GROUP_NAME" "$marker.tmp" && mv -f "$marker.tmp" "$marker"',
        "fi",
        'log "host prepared"',
    ];
    return lines.join("\n") + "\n";
}

/** Python that prints one key's value from an env file, undoing the quoting `renderEnvLine` (and a hand-written .env) uses. */
const READ_ENV_VALUE_PY = [
    "import sys",
    "path, wanted = sys.argv[1], sys.argv[2]",
    "for line in open(path, encoding='utf-8'):",
    "    line = line.rstrip('\\n')",
    "    if not line.startswith(wanted + '='):",
    "        continue",
    "    value = line[len(wanted) + 1:]",
    "    if len(value) >= 2 and value[0] == value[-1] == '\"':",
    "        out, i, body = [], 0, value[1:-1]",
    "        while i < len(body):",
    "            if body[i] == '\\\\' and i + 1 < len(body) and body[i + 1] in '\"\\\\`$':",
    "                out.append(body[i + 1])",
    "                i += 2",
    "            else:",
    "                out.append(body[i])",
    "                i += 1",
    "        value = ''.join(out)",
    "    elif len(value) >= 2 and value[0] == value[-1] == \"'\":",
    "        value = value[1:-1]",
    "    sys.stdout.write(value)",
].join("\n");

/**
 * Prints the value of `name` in an env file (ours, or a hand-written one in
 * the same `NAME=value` form); prints nothing when the file or the key is
 * absent. The output is a secret: the caller never puts it in a message.
 */
export function readEnvValueScript(envFile: string, name: string): string {
    return [...PRELUDE, `FILE=${q(envFile)}`, `NAME=${q(name)}`, '[ -f "$FILE" ] || exit 0', `python3 -c ${quoteScript(READ_ENV_VALUE_PY)} "$FILE" "$NAME"`].join("\n") + "\n";
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
        `OWNER_RECORD=${q(ownerRecordPath(serviceName))}`,
        `MY_OWNER=${q(ownership.owner)}`,
        `MY_GENERATION=${q(String(ownership.generation))}`,
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
    /** The health URL probed inside the host. */
    readonly healthUrl: string;
    /** How long to wait for active + healthy, in seconds. */
    readonly healthTimeoutSec: number;
    /** Recorded on the host once the service is healthy: from then on it owns the service. */
    readonly ownership?: Ownership;
}

/** Shared shell functions for activation and rollback: health probing and the journal excerpt. */
function healthFunctions(spec: ActivationSpec): string[] {
    return [
        `UNIT=${q(spec.unitName)}`,
        `HEALTH_URL=${q(spec.healthUrl)}`,
        `HEALTH_TIMEOUT=${q(String(spec.healthTimeoutSec))}`,
        "health_ok() {",
        "  python3 -c 'import sys, urllib.request\ntry:\n    r = urllib.request.urlopen(sys.argv[1], timeout=5)\n    sys.exit(0 if r.status == 200 else 1)\nexcept Exception:\n    sys.exit(1)' \"$HEALTH_URL\"",
        "}",
        "restarts() { systemctl show -p NRestarts --value \"$UNIT\" 2>/dev/null || echo 0; }",
        // Waits until the unit is active and the health URL answers 200; fails early if the unit fails or restarts.
        "wait_healthy() {",
        '  local deadline=$(( $(date +%s) + HEALTH_TIMEOUT )) base state',
        "  base=$(restarts)",
        "  while :; do",
        '    state=$(systemctl is-active "$UNIT" 2>/dev/null || true)',
        '    if [ "$state" = active ] && health_ok; then return 0; fi',
        '    if [ "$state" = failed ]; then log "$UNIT failed"; return 1; fi',
        '    if [ "$(restarts)" != "$base" ]; then log "$UNIT exited and was restarted by systemd"; return 1; fi',
        '    if [ "$(date +%s)" -ge "$deadline" ]; then log "$UNIT not healthy after ${HEALTH_TIMEOUT}s ($state)"; return 1; fi',
        "    sleep 1",
        "  done",
        "}",
        'journal_excerpt() { journalctl -u "$UNIT" --since "@$START" -n 40 --no-pager -o short-iso 2>&1 || true; }',
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
        ...PRELUDE,
        // Survive a dropped SSH connection: finish (or roll back) instead of stopping half-way.
        "trap '' HUP PIPE",
        `SERVICE=${q(spec.serviceName)}`,
        `STAGE=${q(stagingDir(spec.serviceName))}`,
        `BACKUP=${q(backupDir(spec.serviceName))}`,
        `MARKER=${q(`# ${spec.marker}`)}`,
        bashArray("IDS", spec.files.map((f) => fileIdForPath(f.path))),
        bashArray("PATHS", spec.files.map((f) => f.path)),
        bashArray("MODES", spec.files.map((f) => f.mode)),
        bashArray("OWNERS", spec.files.map((f) => f.owner)),
        bashArray("GROUPS_", spec.files.map((f) => f.group)),
        bashArray("EFFECTS", spec.files.map((f) => f.effect)),
        bashArray("REMOVED_PATHS", spec.removed.map((f) => f.path)),
        bashArray("REMOVED_IDS", spec.removed.map((f) => fileIdForPath(f.path))),
        // What a change to each file triggers (model/triggers.ts), one 0/1 flag per file and action.
        ...triggerArrays("", spec.files),
        ...triggerArrays("REMOVED_", spec.removed),
        ...healthFunctions(spec),
        "START=$(date +%s)",
        // Everything goes to a root-only log replayed at exit (stdout on success, stderr on failure), so a
        // dropped connection (a broken pipe) cannot stop the activation half-way.
        'verify_dir=""',
        'RUNLOG=$(mktemp /run/amarktai-infra-activation.XXXXXX)',
        'exec 3>&1 4>&2 >"$RUNLOG" 2>&1',
        'finish() { local rc=$?; rm -rf "$verify_dir"; { if [ "$rc" -eq 0 ]; then cat "$RUNLOG" >&3; else cat "$RUNLOG" >&4; fi; } 2>/dev/null || true; rm -f "$RUNLOG"; exit "$rc"; }',
        "trap finish EXIT",
        'exec 9>"/run/amarktai-infra-$SERVICE.lock"',
        "flock -w 600 9 || fail 'another activation is still running'",
        // A file not readable by others (the .env) keeps no staged copy once it is live: no second copy of a secret.
        'sensitive() { [ $(( 8#${MODES[$1]} & 4 )) -eq 0 ]; }',
        'for i in "${!IDS[@]}"; do',
        '  [ -f "$STAGE/${IDS[$i]}" ] && continue',
        '  if sensitive "$i" && [ -f "${PATHS[$i]}" ]; then continue; fi',
        '  fail "staged copy of ${PATHS[$i]} is missing; run pulumi up again"',
        "done",
        // Verify the unit and its drop-ins together, under their real names, before anything goes live.
        'verify_dir=$(mktemp -d /run/amarktai-infra-verify.XXXXXX)',
        'mkdir -p "$verify_dir/$UNIT.d"',
        'unit_staged=""',
        'for i in "${!IDS[@]}"; do',
        '  [ "${EFFECTS[$i]}" = systemd ] || continue',
        '  case "${PATHS[$i]}" in',
        '    */"$UNIT") cp "$STAGE/${IDS[$i]}" "$verify_dir/$UNIT"; unit_staged=1 ;;',
        '    */"$UNIT.d"/*) cp "$STAGE/${IDS[$i]}" "$verify_dir/$UNIT.d/${PATHS[$i]##*/}" ;;',
        "  esac",
        "done",
        'if [ -n "$unit_staged" ]; then',
        '  if ! SYSTEMD_UNIT_PATH="$verify_dir:" systemd-analyze verify "$verify_dir/$UNIT" > "$verify_dir/verify.log" 2>&1; then',
        '    cat "$verify_dir/verify.log" >&2',
        '    fail "systemd-analyze verify refused the new $UNIT; nothing was changed"',
        "  fi",
        "fi",
        // Work out what changes.
        'changed=(); need_reload=""; need_restart=""; need_journald=""',
        // Set need_* for what changing (removing) file $1 triggers.
        'note_change() { [ "${RELOADS[$1]}" = 1 ] && need_reload=1; [ "${RESTARTS[$1]}" = 1 ] && need_restart=1; [ "${JOURNALDS[$1]}" = 1 ] && need_journald=1; return 0; }',
        'note_removal() { [ "${REMOVED_RELOADS[$1]}" = 1 ] && need_reload=1; [ "${REMOVED_RESTARTS[$1]}" = 1 ] && need_restart=1; [ "${REMOVED_JOURNALDS[$1]}" = 1 ] && need_journald=1; return 0; }',
        'for i in "${!IDS[@]}"; do',
        '  p="${PATHS[$i]}"',
        '  [ -f "$STAGE/${IDS[$i]}" ] || continue',
        '  if [ -f "$p" ] && cmp -s "$STAGE/${IDS[$i]}" "$p" && [ "$(stat -c \'%a %U %G\' "$p")" = "$(printf \'%o\' "$((8#${MODES[$i]}))") ${OWNERS[$i]} ${GROUPS_[$i]}" ]; then continue; fi',
        '  changed+=("$i")',
        '  note_change "$i"',
        "done",
        "removing=()",
        'for i in "${!REMOVED_PATHS[@]}"; do',
        '  p="${REMOVED_PATHS[$i]}"',
        '  [ -f "$p" ] || continue',
        '  if [ "$(head -n 1 "$p")" != "$MARKER" ]; then log "leaving $p alone: not written by amarktai-infra"; continue; fi',
        '  removing+=("$i")',
        '  note_removal "$i"',
        "done",
        // Back up what is about to change, so a failed start can be undone.
        'rm -rf "$BACKUP"; install -d -m 0700 "$BACKUP"',
        ': > "$BACKUP/absent"',
        // backup PATH ID: keeps a copy under the file's id (see model/files.ts), or records that it was absent.
        "backup() {",
        '  local p="$1" name="$2"',
        '  if [ -e "$p" ]; then cp -a "$p" "$BACKUP/$name"; printf \'%s\\t%s\\n\' "$name" "$p" >> "$BACKUP/present"; else printf \'%s\\n\' "$p" >> "$BACKUP/absent"; fi',
        "}",
        'for i in "${changed[@]}"; do backup "${PATHS[$i]}" "${IDS[$i]}"; done',
        'for i in "${removing[@]}"; do backup "${REMOVED_PATHS[$i]}" "${REMOVED_IDS[$i]}"; done',
        // Swap in: write next to the target, set mode and owner, then rename over it.
        'for i in "${changed[@]}"; do',
        '  p="${PATHS[$i]}"',
        '  install -d -m 0755 "$(dirname "$p")"',
        '  tmp="$p.amarktai-infra.tmp"',
        '  cp "$STAGE/${IDS[$i]}" "$tmp"',
        '  chown "${OWNERS[$i]}:${GROUPS_[$i]}" "$tmp"',
        '  chmod "${MODES[$i]}" "$tmp"',
        '  mv -f "$tmp" "$p"',
        '  log "installed $p"',
        "done",
        'for i in "${removing[@]}"; do rm -f "${REMOVED_PATHS[$i]}"; log "removed ${REMOVED_PATHS[$i]}"; done',
        'rmdir "/etc/systemd/system/$UNIT.d" 2>/dev/null || true',
        "rollback() {",
        '  log "rolling back to the previous files"',
        '  if [ -f "$BACKUP/present" ]; then while IFS=$\'\\t\' read -r name p; do cp -a "$BACKUP/$name" "$p.amarktai-infra.tmp" && mv -f "$p.amarktai-infra.tmp" "$p"; done < "$BACKUP/present"; fi',
        '  while IFS= read -r p; do [ -n "$p" ] && rm -f "$p"; done < "$BACKUP/absent"',
        "  systemctl daemon-reload",
        '  if [ -n "$need_journald" ]; then systemctl restart systemd-journald || true; fi',
        '  if systemctl cat "$UNIT" >/dev/null 2>&1; then systemctl restart "$UNIT" || true; wait_healthy || log "the previous version is not healthy either"; fi',
        "}",
        // Enable without enable's own reload (--no-reload): the one daemon-reload below covers it.
        'if ! systemctl is-enabled --quiet "$UNIT" 2>/dev/null; then systemctl enable --no-reload --quiet "$UNIT"; need_reload=1; fi',
        'if [ -n "$need_reload" ]; then log "systemctl daemon-reload"; systemctl daemon-reload; fi',
        'if [ -n "$need_journald" ]; then log "restarting systemd-journald"; systemctl restart systemd-journald; fi',
        'if [ -z "$need_restart" ] && ! systemctl is-active --quiet "$UNIT"; then need_restart=1; fi',
        'if [ -n "$need_restart" ]; then',
        '  log "restarting $UNIT"',
        '  if ! systemctl restart "$UNIT" || ! wait_healthy; then',
        '    excerpt=$(journal_excerpt)',
        "    rollback",
        '    rm -rf "$BACKUP"',
        '    printf \'%s did not become healthy; the previous files were restored.\\n--- journal of %s ---\\n%s\\n\' "$UNIT" "$UNIT" "$excerpt" >&2',
        "    exit 1",
        "  fi",
        "else",
        '  wait_healthy || { printf \'%s is not healthy.\\n--- journal of %s ---\\n%s\\n\' "$UNIT" "$UNIT" "$(journal_excerpt)" >&2; exit 1; }',
        "fi",
        'rm -rf "$BACKUP"',
        'for i in "${!IDS[@]}"; do if sensitive "$i"; then rm -f "$STAGE/${IDS[$i]}"; fi; done',
        ...ownerRecordLines(spec),
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
 * in the script.
 */
export function detachedScript(description: string, script: string): string {
    return (
        [
            ...PRELUDE,
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
        ...PRELUDE,
        "trap '' HUP PIPE",
        `UNIT=${q(spec.unitName)}`,
        `MARKER=${q(`# ${spec.marker}`)}`,
        bashArray("PATHS", spec.files.map((f) => f.path)),
        bashArray("JOURNALDS", spec.files.map((f) => flag(f.effect, "restart-journald"))),
        ...ownershipGuard(spec.serviceName, spec.ownership ?? { owner: "", generation: Number.MAX_SAFE_INTEGER }, spec.unitName),
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
        'systemctl reset-failed "$UNIT" 2>/dev/null || true',
        'if [ -n "$journald" ]; then systemctl restart systemd-journald; fi',
        `rm -rf ${q(serviceStateDir(spec.serviceName))}`,
    ];
    if (spec.purge) {
        lines.push(
            bashArray("PURGE_PATHS", spec.purge.paths),
            'for p in "${PURGE_PATHS[@]}"; do rm -rf -- "$p"; log "purged $p"; done',
            `if id -u ${q(spec.purge.user)} >/dev/null 2>&1; then userdel ${q(spec.purge.user)}; log ${q(`removed user ${spec.purge.user}`)}; fi`,
            `if getent group ${q(spec.purge.group)} >/dev/null; then groupdel ${q(spec.purge.group)} || true; fi`,
        );
    } else {
        lines.push('log "kept the user, app, venv, logs and .env (purgeOnDestroy is off)"');
    }
    return lines.join("\n") + "\n";
}
