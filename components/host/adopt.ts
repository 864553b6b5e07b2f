/**
 * Adopting a hand-made install of the service notes: the read-only survey a
 * preview runs (what is there, with the `.env`'s key names but never its
 * values, drop-ins summarised, never their text), its parser, and the
 * takeover an `up` runs first (a lasting backup, and record lines the
 * preparation and activation then accept). See `AdoptionSurvey` and
 * `AdoptionTake` in the model.
 */
import { ADOPTION_BACKUP_PREFIX, AdoptionDir, AdoptionDropIn, AdoptionEnvFile, AdoptionSocketUnit, AdoptionSurvey, AdoptionTake, AdoptionUnit, MANAGED_MARKER, createdRecordPath, envStorePath, serviceStateDir, sha256 } from "../model";
import { dropInSummaryFunction } from "./dropin";
import { READ_TEXT_LIMIT, unitDropInDir } from "./read";
import { DETACHED_PRELUDE, PRELUDE, bashArray, shellVariables } from "./scripts";
import { safeFsFunction } from "./safe-fs";
import { quoteScript } from "./shell";

/** What the survey looks at: the service's names and the paths of the notes' layout. */
export interface AdoptionSurveySpec {
    readonly serviceName: string;
    readonly user: string;
    readonly group: string;
    /** The directories to report (the preparation's, and `paths.venv`), each with the config key it comes from. */
    readonly directories: readonly { readonly key: string; readonly path: string }[];
    /** The notes' `.env` path (`paths.envFile`). */
    readonly envFile: string;
}

/**
 * Python looking at paths without following any link, on the way or at the end (each directory
 * is opened with O_NOFOLLOW relative to the one before): `dirs KEY PATH…` prints
 * `dir KEY PATH absent|link|other` or `dir KEY PATH present OWNER GROUP MODE` per pair; `file PATH`
 * prints `absent`, `link`, `other` or `present` (a regular file); `sha PATH` prints the same, a
 * regular file as `present SHA256 OWNER GROUP MODE` (read through an O_NOFOLLOW fd). Tab-separated.
 */
const PATHS_PY = [
    "import errno, grp, hashlib, os, pwd, stat, sys",
    "O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC",
    "def name_of(get, n):",
    "    try:",
    "        return get(n)[0]",
    "    except KeyError:",
    "        return str(n)",
    "def describe(st):",
    "    return [name_of(pwd.getpwuid, st.st_uid), name_of(grp.getgrgid, st.st_gid), '%04o' % stat.S_IMODE(st.st_mode)]",
    "def kind(st):",
    "    return 'link' if stat.S_ISLNK(st.st_mode) else 'dir' if stat.S_ISDIR(st.st_mode) else 'file' if stat.S_ISREG(st.st_mode) else 'other'",
    "def walk(path):",
    "    '''(parent fd, last name), or (None, state) when the path cannot exist as given.'''",
    "    parts = [p for p in path.split('/') if p]",
    "    if not path.startswith('/') or not parts or any(p in ('.', '..') for p in parts):",
    "        return None, 'other'",
    "    fd = os.open('/', O_DIR)",
    "    for name in parts[:-1]:",
    "        try:",
    "            nfd = os.open(name, O_DIR, dir_fd=fd)",
    "        except FileNotFoundError:",
    "            os.close(fd)",
    "            return None, 'absent'",
    "        except OSError as e:",
    "            if e.errno not in (errno.ELOOP, errno.ENOTDIR):",
    "                raise",
    "            st = os.stat(name, dir_fd=fd, follow_symlinks=False)",
    "            os.close(fd)",
    "            return None, 'link' if stat.S_ISLNK(st.st_mode) else 'other'",
    "        os.close(fd)",
    "        fd = nfd",
    "    return fd, parts[-1]",
    "def look(path):",
    "    '''(kind, stat) of path: kind absent, link, dir, file or other.'''",
    "    fd, name = walk(path)",
    "    if fd is None:",
    "        return name, None",
    "    try:",
    "        st = os.stat(name, dir_fd=fd, follow_symlinks=False)",
    "    except FileNotFoundError:",
    "        return 'absent', None",
    "    finally:",
    "        os.close(fd)",
    "    return kind(st), st",
    "def file_sha(path):",
    "    fd, name = walk(path)",
    "    if fd is None:",
    "        return [name]",
    "    try:",
    "        try:",
    "            ffd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)",
    "        except FileNotFoundError:",
    "            return ['absent']",
    "        except OSError as e:",
    "            if e.errno in (errno.ELOOP, errno.ENXIO):",
    "                return ['link' if e.errno == errno.ELOOP else 'other']",
    "            raise",
    "    finally:",
    "        os.close(fd)",
    "    with os.fdopen(ffd, 'rb') as f:",
    "        st = os.fstat(f.fileno())",
    "        if not stat.S_ISREG(st.st_mode):",
    "            return ['other']",
    "        digest = hashlib.sha256()",
    "        for chunk in iter(lambda: f.read(65536), b''):",
    "            digest.update(chunk)",
    "    return ['present', digest.hexdigest()] + describe(st)",
    "mode, args = sys.argv[1], sys.argv[2:]",
    "if mode == 'dirs':",
    "    for key, path in zip(args[0::2], args[1::2]):",
    "        k, st = look(path)",
    "        state = 'present' if k == 'dir' else 'absent' if k == 'absent' else 'link' if k == 'link' else 'other'",
    "        print('\\t'.join(['dir', key, path, state] + (describe(st) if state == 'present' else [])))",
    "elif mode == 'file':",
    "    k, _ = look(args[0])",
    "    print('present' if k == 'file' else k if k in ('absent', 'link') else 'other')",
    "elif mode == 'sha':",
    "    print('\\t'.join(file_sha(args[0])))",
    "else:",
    "    sys.exit('usage: dirs KEY PATH... | file PATH | sha PATH')",
].join("\n");

/**
 * Python reading the file helper's `env-read` answer (which holds the values) on stdin and printing
 * `envfile PATH absent` or `envfile PATH present OWNER GROUP MODE SHA256` and one `envkey NAME` per
 * variable: the values never leave the host. Prints nothing for an empty answer (a refusal).
 */
const ENV_NAMES_PY = [
    "import json, sys",
    "path, raw = sys.argv[1], sys.stdin.read()",
    "if not raw.strip():",
    "    sys.exit(0)",
    "try:",
    "    answer = json.loads(raw)",
    "    if answer['state'] == 'absent':",
    "        lines = ['envfile\\t%s\\tabsent' % path]",
    "    elif answer['state'] == 'present':",
    "        lines = ['\\t'.join(['envfile', path, 'present', answer['owner'], answer['group'], answer['mode'], answer['sha256']])]",
    "        lines += ['envkey\\t%s' % name for name in answer['values']]",
    "    else:",
    "        raise ValueError()",
    "except Exception:",
    "    sys.exit('the file helper gave an answer of another shape')",
    "print('\\n'.join(lines))",
].join("\n");

/** Where unit files live, by priority (as systemd searches them; the generators' directories included). */
const UNIT_DIRS = [
    "/etc/systemd/system",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/run/systemd/system",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
    "/run/systemd/generator.late",
];

/** Values that end up in tab-separated records or record-file lines: no tab, no newline, no space where a record line splits on it. */
function plainValue(what: string, value: string, spaces = true): string {
    if (value === "" || /[\t\n\r]/.test(value) || (!spaces && / /.test(value))) throw new Error(`${what} must be non-empty, without tabs, newlines${spaces ? "" : " or spaces"}`);
    return value;
}

function checkSurveySpec(spec: AdoptionSurveySpec): void {
    plainValue("serviceName", spec.serviceName, false);
    plainValue("user", spec.user, false);
    plainValue("group", spec.group, false);
    plainValue("paths.envFile", spec.envFile, false);
    for (const d of spec.directories) {
        plainValue("a directory's key", d.key, false);
        plainValue(d.key, d.path, false);
    }
}

/** Shell lines for `unit_survey UNIT`: prints `absent`, `managed`, `hand-made<TAB>PATH` or `foreign<TAB>PATH<TAB>WHY`. */
function unitSurveyLines(): string[] {
    return [
        bashArray("UNIT_DIRS", UNIT_DIRS),
        // A value for a record: tabs and newlines become spaces.
        "clean() { local v=\"${1//$'\\t'/ }\"; printf '%s' \"${v//$'\\n'/ }\"; }",
        "place_why() {",
        '  case "${1%/*}" in',
        '    /run/systemd/transient) echo "a transient unit (made by systemd-run)" ;;',
        '    /run/systemd/generator*) echo "a unit made by a systemd generator" ;;',
        '    /run/systemd/system) echo "a runtime unit (in /run, gone at the next boot)" ;;',
        '    /usr/local/lib/systemd/system) echo "a unit installed outside the package manager" ;;',
        '    *) echo "a package\'s unit" ;;',
        "  esac",
        "}",
        "unit_survey() {",
        '  local unit="$1" found=() d f frag',
        '  for d in "${UNIT_DIRS[@]}"; do if [ -e "$d/$unit" ] || [ -L "$d/$unit" ]; then found+=("$d/$unit"); fi; done',
        // Unknown (no systemd running): empty, and only the files decide.
        '  frag=$(systemctl show -p FragmentPath --value "$unit" 2>/dev/null || true); frag=$(clean "$frag")',
        '  if [ "${#found[@]}" -eq 0 ]; then',
        '    if [ -n "$frag" ]; then printf \'foreign\\t%s\\t%s\\n\' "$frag" "systemd loads $unit from $frag"; else echo absent; fi',
        "    return 0",
        "  fi",
        '  f="${found[0]}"',
        '  if [ "${f%/*}" != /etc/systemd/system ]; then printf \'foreign\\t%s\\t%s\\n\' "$f" "$(place_why "$f")"; return 0; fi',
        '  if [ -L "$f" ]; then printf \'foreign\\t%s\\t%s\\n\' "$f" "it is a symbolic link to $(clean "$(readlink "$f")")"; return 0; fi',
        '  if [ ! -f "$f" ]; then printf \'foreign\\t%s\\t%s\\n\' "$f" "it is not a regular file"; return 0; fi',
        '  if [ "${#found[@]}" -gt 1 ]; then printf \'foreign\\t%s\\t%s\\n\' "$f" "${found[1]} defines $unit too ($(place_why "${found[1]}"))"; return 0; fi',
        '  if [ "$(head -n 1 "$f")" = "$MARKER" ]; then echo managed; return 0; fi',
        '  if [ "$(stat -c %u "$f")" != 0 ]; then printf \'foreign\\t%s\\t%s\\n\' "$f" "it is owned by $(stat -c %U "$f"), not root"; return 0; fi',
        '  if [ -n "$frag" ] && [ "$frag" != "$f" ]; then printf \'foreign\\t%s\\t%s\\n\' "$f" "systemd loads $unit from $frag"; return 0; fi',
        '  if [ "$(stat -c %s "$f")" -gt "$TEXT_LIMIT" ]; then printf \'foreign\\t%s\\t%s\\n\' "$f" "it is larger than $TEXT_LIMIT bytes"; return 0; fi',
        '  printf \'hand-made\\t%s\\n\' "$f"',
        "}",
    ];
}

/**
 * The read-only survey of a host before adopting it, run as root. Output, one record per line,
 * tab-separated (see {@link parseAdoptionSurvey}): `unit absent|managed`, `unit foreign PATH WHY`,
 * `unit hand-made PATH SHA256 OWNER GROUP MODE ACTIVE(0|1) MAINPID` followed by `unittext BASE64`,
 * `socket absent|managed`, `socket foreign PATH WHY`, `foreign PATH link`, `foreign PATH file SHA256
 * SUMMARY_JSON` (as `summarise_dropin record` prints it), `otherdropin PATH`, `user UID GID
 * PRIMARYGROUP`, `group GID`, `dir KEY PATH absent|link|other`, `dir KEY PATH present OWNER GROUP MODE`,
 * `envfile PATH absent|link|other`, `envfile PATH refused WHY`, `envfile PATH present OWNER GROUP MODE
 * SHA256` followed by `envkey NAME` per variable, `recorded 0|1`, `handover 1` or `handover 0 WHY`.
 * It changes nothing, follows no link a less privileged user could plant (the `.env` is read by the
 * file helper, whose answer is reduced to key names on the host), and works where systemd is not
 * running (the unit then counts as inactive).
 */
export function adoptionSurveyScript(spec: AdoptionSurveySpec): string {
    checkSurveySpec(spec);
    const unit = `${spec.serviceName}.service`;
    return (
        [
            ...PRELUDE,
            ...shellVariables({
                UNIT: unit,
                SOCKET_UNIT: `${spec.serviceName}.socket`,
                DROPIN_DIR: unitDropInDir(unit),
                MARKER: `# ${MANAGED_MARKER}`,
                USER_NAME: spec.user,
                GROUP_NAME: spec.group,
                ENV_FILE: spec.envFile,
                RECORD: createdRecordPath(spec.serviceName),
                TEXT_LIMIT: String(READ_TEXT_LIMIT),
            }),
            `PATHS_PY=${quoteScript(PATHS_PY)}`,
            `ENV_NAMES_PY=${quoteScript(ENV_NAMES_PY)}`,
            bashArray("DIR_KEYS", spec.directories.map((d) => d.key)),
            bashArray("DIR_PATHS", spec.directories.map((d) => d.path)),
            ...safeFsFunction(),
            ...dropInSummaryFunction(),
            'paths_py() { python3 -c "$PATHS_PY" "$@"; }',
            ...unitSurveyLines(),
            "exec 3>&1",
            // The unit: read once; its hash is of the bytes sent.
            'us=$(unit_survey "$UNIT")',
            'if [ "${us%%$\'\\t\'*}" = hand-made ]; then',
            '  f="${us#*$\'\\t\'}"',
            '  b64=$(base64 -w0 < "$f")',
            "  sum=$(printf '%s' \"$b64\" | base64 -d | sha256sum); sum=${sum%% *}",
            "  read -r mode owner group < <(stat -c '%a %U %G' \"$f\")",
            "  mode=$(printf '%04o' \"$((8#$mode))\")",
            '  active=0; if [ "$(systemctl show -p ActiveState --value "$UNIT" 2>/dev/null || true)" = active ]; then active=1; fi',
            '  pid=$(systemctl show -p MainPID --value "$UNIT" 2>/dev/null || true); case "$pid" in ""|*[!0-9]*) pid=0 ;; esac',
            '  printf \'unit\\thand-made\\t%s\\t%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n\' "$f" "$sum" "$owner" "$group" "$mode" "$active" "$pid"',
            "  printf 'unittext\\t%s\\n' \"$b64\"",
            "else",
            "  printf 'unit\\t%s\\n' \"$us\"",
            "fi",
            // A socket unit of the same name that the library did not write, hand-made or not, is not taken over.
            'ss=$(unit_survey "$SOCKET_UNIT")',
            'case "${ss%%$\'\\t\'*}" in',
            "  absent|managed) printf 'socket\\t%s\\n' \"$ss\" ;;",
            "  hand-made) printf 'socket\\tforeign\\t%s\\t%s\\n' \"${ss#*$'\\t'}\" \"it was not written by amarktai-infra\" ;;",
            "  *) printf 'socket\\t%s\\n' \"$ss\" ;;",
            "esac",
            // Unmanaged drop-ins, summarised here: their text (which may hold Environment=TOKEN=…) never leaves the host.
            'if [ -L "$DROPIN_DIR" ]; then printf \'foreign\\t%s\\tlink\\n\' "$DROPIN_DIR"',
            'elif [ -d "$DROPIN_DIR" ]; then',
            '  for f in "$DROPIN_DIR"/*.conf; do',
            '    [ -e "$f" ] || [ -L "$f" ] || continue',
            '    if [ -L "$f" ] || [ ! -f "$f" ]; then printf \'foreign\\t%s\\tlink\\n\' "$f"; continue; fi',
            '    [ "$(head -n 1 "$f")" = "$MARKER" ] && continue',
            '    summarise_dropin record "$f"',
            "  done",
            "fi",
            // Drop-ins from elsewhere (systemctl set-property, /run): named only; the vendor's are the system's business.
            'read -r -a dropin_paths <<< "$(systemctl show -p DropInPaths --value "$UNIT" 2>/dev/null || true)"',
            'for p in "${dropin_paths[@]}"; do',
            '  case "$p" in "$DROPIN_DIR"/*|/usr/lib/*|/lib/*|/usr/local/lib/*) continue ;; esac',
            "  printf 'otherdropin\\t%s\\n' \"$(clean \"$p\")\"",
            "done",
            'uid=""; gid=""',
            'if uid=$(id -u "$USER_NAME" 2>/dev/null); then',
            '  gid=$(id -g "$USER_NAME")',
            '  pg=$(getent group "$gid" | cut -d: -f1 || true)',
            "  printf 'user\\t%s\\t%s\\t%s\\n' \"$uid\" \"$gid\" \"${pg:-$gid}\"",
            "else",
            '  uid=""',
            "fi",
            'group_gid=$(getent group "$GROUP_NAME" | cut -d: -f3 || true)',
            "if [ -n \"$group_gid\" ]; then printf 'group\\t%s\\n' \"$group_gid\"; fi",
            "pairs=()",
            'for i in "${!DIR_PATHS[@]}"; do pairs+=("${DIR_KEYS[$i]}" "${DIR_PATHS[$i]}"); done',
            'if [ "${#pairs[@]}" -gt 0 ]; then paths_py dirs "${pairs[@]}"; fi',
            // The .env: the file helper reads it (trusting the service account, never root, to own the directories on the
            // way) and its answer, which holds the values, is reduced to key names before anything is printed.
            "trust=()",
            'if [ -n "$uid" ] && [ "$uid" != 0 ] && [ -n "$group_gid" ] && [ "$group_gid" != 0 ]; then trust=(--trust "$USER_NAME:$GROUP_NAME"); fi',
            'env_state=$(paths_py file "$ENV_FILE")',
            'if [ "$env_state" != present ]; then',
            "  printf 'envfile\\t%s\\t%s\\n' \"$ENV_FILE\" \"$env_state\"",
            "else",
            "  rc=0",
            '  err=$( { safe_fs "${trust[@]}" env-read "$ENV_FILE" | python3 -c "$ENV_NAMES_PY" "$ENV_FILE" >&3; } 2>&1 ) || rc=$?',
            '  if [ "$rc" != 0 ]; then',
            // Only the helper's refusal line is shown (it names paths and owners, never a value).
            "    why=$(printf '%s\\n' \"$err\" | sed -n 's/^.*refused: //p' | head -n 1)",
            "    printf 'envfile\\t%s\\trefused\\t%s\\n' \"$ENV_FILE\" \"$(clean \"${why:-the file helper could not read it}\")\"",
            "  fi",
            "fi",
            'if [ -f "$RECORD" ] && [ ! -L "$RECORD" ]; then printf \'recorded\\t1\\n\'; else printf \'recorded\\t0\\n\'; fi',
            // Moving the listening socket without a refused connection needs pidfd (to take the fd) and tcp_migrate_req.
            "if ! python3 -c 'import os, sys; sys.exit(0 if hasattr(os, \"pidfd_open\") else 1)' 2>/dev/null; then",
            "  printf 'handover\\t0\\t%s\\n' \"python3 on this host has no os.pidfd_open\"",
            "elif [ ! -e /proc/sys/net/ipv4/tcp_migrate_req ]; then",
            "  printf 'handover\\t0\\t%s\\n' \"the kernel has no net.ipv4.tcp_migrate_req (Linux 5.14 or newer has it)\"",
            "elif [ ! -w /proc/sys/net/ipv4/tcp_migrate_req ]; then",
            "  printf 'handover\\t0\\t%s\\n' \"net.ipv4.tcp_migrate_req cannot be set here (a container?)\"",
            "else",
            "  printf 'handover\\t1\\n'",
            "fi",
        ].join("\n") + "\n"
    );
}

const SHA256 = /^[0-9a-f]{64}$/;
const MODE = /^[0-7]{4}$/;
const NUMBER = /^[0-9]+$/;

/** A malformed survey output: names the record kind and line, never a value. */
function malformed(kind: string, line: number, why = "malformed"): Error {
    return new Error(`adoption survey: ${why} ${JSON.stringify(kind.slice(0, 20).replace(/[^A-Za-z0-9_-]/g, "?"))} record on line ${line}`);
}

/** A strict drop-in summary from `summarise_dropin record`'s JSON. */
function dropInSummaryOf(json: string): { sections: Record<string, Record<string, string | null>>; unparsedLines: number } | undefined {
    let parsed: unknown;
    try {
        parsed = JSON.parse(json);
    } catch {
        return undefined;
    }
    if (!parsed || typeof parsed !== "object") return undefined;
    const { sections, unparsedLines } = parsed as { sections?: unknown; unparsedLines?: unknown };
    if (!sections || typeof sections !== "object" || Array.isArray(sections) || typeof unparsedLines !== "number" || !Number.isInteger(unparsedLines) || unparsedLines < 0) return undefined;
    const out: Record<string, Record<string, string | null>> = {};
    for (const [section, directives] of Object.entries(sections)) {
        if (!directives || typeof directives !== "object" || Array.isArray(directives)) return undefined;
        const kept: Record<string, string | null> = {};
        for (const [name, value] of Object.entries(directives as Record<string, unknown>)) {
            if (value !== null && typeof value !== "string") return undefined;
            kept[name] = value;
        }
        out[section] = kept;
    }
    return { sections: out, unparsedLines };
}

/**
 * Parses {@link adoptionSurveyScript}'s output. Strict: an unknown record, a record with the wrong
 * fields, a record that must appear once and is missing or repeated, or a unit text whose hash is
 * not the one reported, throws an Error naming the record kind (never a value).
 */
export function parseAdoptionSurvey(stdout: string): AdoptionSurvey {
    let unit: AdoptionUnit | undefined;
    let unitText: { text: string; sha256: string } | undefined;
    let socketUnit: AdoptionSocketUnit | undefined;
    const dropIns: AdoptionDropIn[] = [];
    const otherDropIns: string[] = [];
    let user: AdoptionSurvey["user"];
    let group: AdoptionSurvey["group"];
    const dirs: AdoptionDir[] = [];
    let envFile: AdoptionEnvFile | undefined;
    const envKeys: string[] = [];
    let recorded: boolean | undefined;
    let handover: AdoptionSurvey["handover"] | undefined;
    const lines = stdout.split("\n");
    if (lines[lines.length - 1] === "") lines.pop();
    lines.forEach((line, index) => {
        const n = index + 1;
        const [kind = "", ...f] = line.split("\t");
        const once = <T>(seen: T | undefined) => {
            if (seen !== undefined) throw malformed(kind, n, "repeated");
        };
        const nonEmpty = f.every((v) => v !== "");
        switch (kind) {
            case "unit": {
                once(unit);
                if ((f[0] === "absent" || f[0] === "managed") && f.length === 1) unit = { state: f[0] };
                else if (f[0] === "foreign" && f.length === 3 && nonEmpty) unit = { state: "foreign", path: f[1]!, why: f[2]! };
                else if (f[0] === "hand-made" && f.length === 8 && nonEmpty && SHA256.test(f[2]!) && MODE.test(f[5]!) && (f[6] === "0" || f[6] === "1") && NUMBER.test(f[7]!)) {
                    unit = { state: "hand-made", path: f[1]!, sha256: f[2]!, owner: f[3]!, group: f[4]!, mode: f[5]!, text: "", active: f[6] === "1", mainPid: Number(f[7]) };
                } else throw malformed(kind, n);
                break;
            }
            case "unittext": {
                once(unitText);
                if (f.length !== 1 || !/^[A-Za-z0-9+/]*={0,2}$/.test(f[0]!)) throw malformed(kind, n);
                const bytes = Buffer.from(f[0]!, "base64");
                unitText = { text: bytes.toString("utf8"), sha256: sha256(bytes) };
                break;
            }
            case "socket":
                once(socketUnit);
                if ((f[0] === "absent" || f[0] === "managed") && f.length === 1) socketUnit = { state: f[0] };
                else if (f[0] === "foreign" && f.length === 3 && nonEmpty) socketUnit = { state: "foreign", path: f[1]!, why: f[2]! };
                else throw malformed(kind, n);
                break;
            case "foreign": {
                if (f[1] === "link" && f.length === 2 && nonEmpty) {
                    dropIns.push({ path: f[0]!, kind: "link" });
                    break;
                }
                const summary = f[1] === "file" && f.length === 4 && nonEmpty && SHA256.test(f[2]!) ? dropInSummaryOf(f[3]!) : undefined;
                if (!summary) throw malformed(kind, n);
                dropIns.push({ path: f[0]!, kind: "file", sha256: f[2]!, ...summary });
                break;
            }
            case "otherdropin":
                if (f.length !== 1 || !nonEmpty) throw malformed(kind, n);
                otherDropIns.push(f[0]!);
                break;
            case "user":
                once(user);
                if (f.length !== 3 || !nonEmpty || !NUMBER.test(f[0]!) || !NUMBER.test(f[1]!)) throw malformed(kind, n);
                user = { uid: Number(f[0]), gid: Number(f[1]), primaryGroup: f[2]! };
                break;
            case "group":
                once(group);
                if (f.length !== 1 || !NUMBER.test(f[0]!)) throw malformed(kind, n);
                group = { gid: Number(f[0]) };
                break;
            case "dir":
                if (f.length === 3 && nonEmpty && (f[2] === "absent" || f[2] === "link" || f[2] === "other")) dirs.push({ key: f[0]!, path: f[1]!, state: f[2] });
                else if (f.length === 6 && nonEmpty && f[2] === "present" && MODE.test(f[5]!)) dirs.push({ key: f[0]!, path: f[1]!, state: "present", owner: f[3]!, group: f[4]!, mode: f[5]! });
                else throw malformed(kind, n);
                break;
            case "envfile":
                once(envFile);
                if (f.length === 2 && nonEmpty && (f[1] === "absent" || f[1] === "link" || f[1] === "other")) envFile = { path: f[0]!, state: f[1] };
                else if (f.length === 3 && nonEmpty && f[1] === "refused") envFile = { path: f[0]!, state: "refused", why: f[2]! };
                else if (f.length === 6 && nonEmpty && f[1] === "present" && MODE.test(f[4]!) && SHA256.test(f[5]!)) envFile = { path: f[0]!, state: "present", owner: f[2]!, group: f[3]!, mode: f[4]!, sha256: f[5]!, keys: [] };
                else throw malformed(kind, n);
                break;
            case "envkey":
                if (f.length !== 1 || !nonEmpty || envFile?.state !== "present") throw malformed(kind, n);
                if (envKeys.includes(f[0]!)) throw malformed(kind, n, "repeated");
                envKeys.push(f[0]!);
                break;
            case "recorded":
                once(recorded);
                if (f.length !== 1 || (f[0] !== "0" && f[0] !== "1")) throw malformed(kind, n);
                recorded = f[0] === "1";
                break;
            case "handover":
                once(handover);
                if (f.length === 1 && f[0] === "1") handover = { available: true };
                else if (f.length === 2 && f[0] === "0" && nonEmpty) handover = { available: false, why: f[1]! };
                else throw malformed(kind, n);
                break;
            default:
                throw malformed(kind, n, "unknown");
        }
    });
    const missing = (kind: string) => new Error(`adoption survey: no ${JSON.stringify(kind)} record`);
    if (unit === undefined) throw missing("unit");
    if (socketUnit === undefined) throw missing("socket");
    if (envFile === undefined) throw missing("envfile");
    if (recorded === undefined) throw missing("recorded");
    if (handover === undefined) throw missing("handover");
    if (unit.state === "hand-made") {
        if (unitText === undefined) throw missing("unittext");
        if (unitText.sha256 !== unit.sha256) throw new Error('adoption survey: the "unittext" record does not match the unit\'s SHA-256');
        unit = { ...unit, text: unitText.text };
    } else if (unitText !== undefined) {
        throw new Error('adoption survey: a "unittext" record without a hand-made unit');
    }
    if (envFile.state === "present") envFile = { ...envFile, keys: envKeys };
    return { unit, socketUnit, dropIns, otherDropIns, ...(user ? { user } : {}), ...(group ? { group } : {}), dirs, envFile, recorded, handover };
}

/** The record lines a takeover of `take` appends (its `adopted backup DIR` line comes last, separately). */
export function adoptionRecordLines(take: AdoptionTake): string[] {
    return [
        ...(take.unit ? [`adopted unit ${take.unit.path} ${take.unit.sha256}`] : []),
        ...take.dropIns.map((d) => `adopted dropin ${d.path} ${d.sha256}`),
        ...(take.user !== undefined ? [`adopted user ${take.user}`] : []),
        ...(take.group !== undefined ? [`adopted group ${take.group}`] : []),
        ...take.dirs.map((d) => `adopted dir ${d}`),
    ];
}

/** One file the takeover backs up: where it is, its hash, and its place in the backup (`SUBDIR/NAME`). */
interface BackedUpFile {
    readonly path: string;
    readonly sha256: string;
    readonly subdir: "unit" | "dropins" | "env";
    readonly name: string;
    /** Read with the service account trusted to own the directories on the way (the `.env`). */
    readonly trust: boolean;
}

/** Checks `take` against the layout it may touch (defence in depth: the plan builds it) and lists its files. */
function backedUpFiles(spec: AdoptionSurveySpec, take: AdoptionTake): BackedUpFile[] {
    checkSurveySpec(spec);
    const unitPath = `/etc/systemd/system/${spec.serviceName}.service`;
    const dropInDir = unitDropInDir(`${spec.serviceName}.service`);
    const checkSha = (what: string, sha: string) => {
        if (!SHA256.test(sha)) throw new Error(`adoption: ${what} has no SHA-256`);
    };
    const files: BackedUpFile[] = [];
    if (take.unit) {
        if (take.unit.path !== unitPath) throw new Error(`adoption: only ${unitPath} is taken over as the unit`);
        checkSha("the unit", take.unit.sha256);
        files.push({ ...take.unit, subdir: "unit", name: `${spec.serviceName}.service`, trust: false });
    }
    for (const d of take.dropIns) {
        const name = d.path.slice(dropInDir.length + 1);
        if (!d.path.startsWith(`${dropInDir}/`) || !/^[^/]+\.conf$/.test(name) || name.startsWith(".")) throw new Error(`adoption: only *.conf files in ${dropInDir} are taken over as drop-ins`);
        plainValue("a drop-in path", d.path, false);
        checkSha("a drop-in", d.sha256);
        files.push({ ...d, subdir: "dropins", name, trust: false });
    }
    if (take.envFile) {
        if (take.envFile.path !== spec.envFile) throw new Error(`adoption: only ${spec.envFile} is taken over as the .env`);
        checkSha("the .env", take.envFile.sha256);
        files.push({ ...take.envFile, subdir: "env", name: spec.envFile.slice(spec.envFile.lastIndexOf("/") + 1), trust: true });
    }
    if (take.user !== undefined && take.user !== spec.user) throw new Error("adoption: the user taken over must be the service's user");
    if (take.group !== undefined && take.group !== spec.group) throw new Error("adoption: the group taken over must be the service's group");
    for (const d of take.dirs) plainValue("a directory", d, false);
    return files;
}

/** The MANIFEST's closing lines: how to go back to the hand-made install by hand. */
function restoreLines(spec: AdoptionSurveySpec): string[] {
    const svc = spec.serviceName;
    return [
        "",
        "To go back to the hand-made install by hand (as root):",
        `  systemctl disable --now ${svc}.socket ${svc}.service`,
        `  rm -f /etc/systemd/system/${svc}.socket ${unitDropInDir(`${svc}.service`)}/*.conf`,
        "  then put each file above back with its owner and mode, e.g.",
        `  install -o OWNER -g GROUP -m MODE <this directory>/unit/${svc}.service /etc/systemd/system/${svc}.service`,
        `  (once adopted, ${spec.envFile} is a root-owned link to ${envStorePath(svc)}, or lies in a release: rm the link first)`,
        "  A directory that became a link into the releases directory (paths.venv) was moved there as",
        "  before-releases-<name>-<time> by the first activation: rm the link and mv that directory back.",
        `  systemctl daemon-reload && systemctl enable --now ${svc}.service`,
        "No value of the .env is written in this file.",
    ];
}

/**
 * The takeover run as root (under `detachedScript`) at the start of an `up` that adopts a host:
 * (a) checks that the unit, each drop-in and the `.env` of `take` still have the SHA-256 the preview
 * saw (read without following a link), else fails with `PATH changed since the preview; run pulumi
 * preview again` having changed nothing; (b) copies them through the file helper's `backup` into a
 * new root-only `adopted-<UTC time>` directory in the service's state directory (`unit/`, `dropins/`,
 * `env/`, each copy root 0600, checked again by hash) with a `MANIFEST` (the original paths, owners,
 * modes and hashes, and how to restore by hand; no value); (c) creates the record file if missing and
 * appends {@link adoptionRecordLines} and `adopted backup DIR`, each once; (d) prints `backup DIR` as its
 * last line. A second run after a finished one changes nothing and prints the same line; after an
 * unfinished one it makes a new backup and adds only the missing lines. Holds the service's
 * activation lock meanwhile.
 */
export function adoptionTakeoverScript(spec: AdoptionSurveySpec, take: AdoptionTake): string {
    const files = backedUpFiles(spec, take);
    return (
        [
            ...DETACHED_PRELUDE,
            ...shellVariables({
                SERVICE: spec.serviceName,
                UNIT: `${spec.serviceName}.service`,
                STATE: serviceStateDir(spec.serviceName),
                RECORD: createdRecordPath(spec.serviceName),
                PREFIX: ADOPTION_BACKUP_PREFIX,
                TAKE_USER: take.user ?? "",
                TAKE_GROUP: take.group ?? "",
            }),
            `PATHS_PY=${quoteScript(PATHS_PY)}`,
            bashArray("FILE_PATHS", files.map((f) => f.path)),
            bashArray("FILE_SHAS", files.map((f) => f.sha256)),
            bashArray("FILE_SUBDIRS", files.map((f) => f.subdir)),
            bashArray("FILE_NAMES", files.map((f) => f.name)),
            bashArray("FILE_TRUST", files.map((f) => (f.trust ? "1" : "0"))),
            bashArray("TAKE_DIRS", take.dirs),
            bashArray("RECORD_LINES", adoptionRecordLines(take)),
            bashArray("RESTORE_LINES", restoreLines(spec)),
            ...safeFsFunction(),
            'exec 9>"/run/amarktai-infra-$SERVICE.lock"',
            "flock -w 600 9 || fail 'another activation is still running'",
            'recorded() { [ -f "$RECORD" ] && [ ! -L "$RECORD" ] && grep -qxF -- "$1" "$RECORD"; }',
            // Done before: every line recorded, and the backup that came last is still there.
            'done_before=1; for l in "${RECORD_LINES[@]}"; do recorded "$l" || { done_before=""; break; }; done',
            "previous=\"\"; if [ -f \"$RECORD\" ] && [ ! -L \"$RECORD\" ]; then previous=$(sed -n 's/^adopted backup //p' \"$RECORD\" | tail -n 1); fi",
            'if [ -n "$done_before" ] && [ -n "$previous" ] && [ -d "$previous" ] && [ ! -L "$previous" ]; then',
            '  log "already taken over (backup in $previous)"',
            "  printf 'backup %s\\n' \"$previous\"",
            "  exit 0",
            "fi",
            // (a) Nothing is changed unless every file is as the preview saw it.
            'if [ -n "$TAKE_USER" ] && ! id -u "$TAKE_USER" >/dev/null 2>&1; then fail "user $TAKE_USER no longer exists on this host; run pulumi preview again"; fi',
            'if [ -n "$TAKE_GROUP" ] && ! getent group "$TAKE_GROUP" >/dev/null; then fail "group $TAKE_GROUP no longer exists on this host; run pulumi preview again"; fi',
            "metas=()",
            'for i in "${!FILE_PATHS[@]}"; do',
            '  IFS=$\'\\t\' read -r st sum owner group mode < <(python3 -c "$PATHS_PY" sha "${FILE_PATHS[$i]}")',
            '  if [ "$st" != present ] || [ "$sum" != "${FILE_SHAS[$i]}" ]; then fail "${FILE_PATHS[$i]} changed since the preview; run pulumi preview again"; fi',
            '  metas+=("$owner:$group $mode")',
            "done",
            // (b) The backup: a new root-only directory, removed again if anything below fails.
            'install -d -m 0755 -o root -g root "${STATE%/*}"',
            'install -d -m 0700 -o root -g root "$STATE"',
            'stamp=$(date -u +%Y%m%dT%H%M%SZ); ADOPTED="$STATE/$PREFIX$stamp"; n=1',
            'while ! mkdir -m 0700 "$ADOPTED" 2>/dev/null; do ADOPTED="$STATE/$PREFIX$stamp-$n"; n=$((n + 1)); [ "$n" -lt 100 ] || fail "could not make a backup directory in $STATE"; done',
            'finished=""',
            'cleanup() { local rc=$?; if [ -z "$finished" ]; then rm -rf -- "$ADOPTED"; fi; exit "$rc"; }',
            "trap cleanup EXIT",
            "trust=()",
            'if [ -n "$TAKE_USER" ] && [ -n "$TAKE_GROUP" ]; then trust=(--trust "$TAKE_USER:$TAKE_GROUP"); fi',
            'for i in "${!FILE_PATHS[@]}"; do',
            '  dir="$ADOPTED/${FILE_SUBDIRS[$i]}"; copy="$dir/${FILE_NAMES[$i]}"',
            '  install -d -m 0700 -o root -g root "$dir"',
            '  if [ "${FILE_TRUST[$i]}" = 1 ]; then t=("${trust[@]}"); else t=(); fi',
            '  out=$(safe_fs "${t[@]}" backup "${FILE_PATHS[$i]}" "$dir" "${FILE_NAMES[$i]}") || fail "could not back up ${FILE_PATHS[$i]}; nothing was changed"',
            '  [ "$out" = present ] && [ -f "$copy" ] && [ ! -L "$copy" ] || fail "${FILE_PATHS[$i]} changed since the preview; run pulumi preview again"',
            '  chown root:root "$copy"; chmod 0600 "$copy"',
            '  sum=$(sha256sum < "$copy"); sum=${sum%% *}',
            '  [ "$sum" = "${FILE_SHAS[$i]}" ] || fail "${FILE_PATHS[$i]} changed since the preview; run pulumi preview again"',
            "done",
            "{",
            "  printf 'amarktai-infra took over the hand-made install of %s on %s (UTC).\\n' \"$UNIT\" \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"",
            "  printf 'The files below are kept here as they were (copies owned by root, mode 0600):\\n'",
            '  for i in "${!FILE_PATHS[@]}"; do printf \'  %s/%s  was  %s  (%s, sha256 %s)\\n\' "${FILE_SUBDIRS[$i]}" "${FILE_NAMES[$i]}" "${FILE_PATHS[$i]}" "${metas[$i]}" "${FILE_SHAS[$i]}"; done',
            "  if [ -n \"$TAKE_USER$TAKE_GROUP\" ]; then printf 'Kept the existing user %s and group %s (never removed by destroy).\\n' \"${TAKE_USER:--}\" \"${TAKE_GROUP:--}\"; fi",
            "  for d in \"${TAKE_DIRS[@]}\"; do printf 'Took over the directory %s.\\n' \"$d\"; done",
            "  printf '%s\\n' \"${RESTORE_LINES[@]}\"",
            '} > "$ADOPTED/MANIFEST"',
            'chmod 0600 "$ADOPTED/MANIFEST"',
            // (c) The record the preparation and the activation accept; each line once.
            '[ -f "$RECORD" ] || : > "$RECORD"',
            'record() { recorded "$1" || printf \'%s\\n\' "$1" >> "$RECORD"; }',
            'for l in "${RECORD_LINES[@]}"; do record "$l"; done',
            'record "adopted backup $ADOPTED"',
            "finished=1",
            'log "took over $UNIT; backup in $ADOPTED"',
            // (d) The last line: where the backup is.
            "printf 'backup %s\\n' \"$ADOPTED\"",
        ].join("\n") + "\n"
    );
}

