/**
 * Reading a service back from its host, for `pulumi refresh`: one script per
 * host and refresh that reports every managed file (hash, mode, owner, the
 * text of files that hold no secret, the per-key line hashes of files that
 * do), unmanaged files in the unit's and journald's drop-in directories
 * (summarised on the host: hash and directive names, never their text), the
 * unit's enabled and active state, the owner record, and on request the
 * service's account, its directories (owner and mode) and a release (built,
 * its venv's interpreter runnable, its installed packages as built). It
 * changes nothing, never follows a link, and never prints a secret value.
 */
import { ENV_NAME_SOURCE, ForeignDropIn, ownerRecordPath } from "../model";
import { dropInSummaryFunction } from "./dropin";
import { quoteScript, shellQuote as q, shellWords } from "./shell";

/** The journald drop-in directory. */
export const JOURNALD_DROPIN_DIR = "/etc/systemd/journald.conf.d";

/** The drop-in directory of `unitName` (where `systemctl edit` writes `override.conf`). */
export function unitDropInDir(unitName: string): string {
    return `/etc/systemd/system/${unitName}.d`;
}

/** The most text kept of one non-secret file (larger files are compared by hash only). */
export const READ_TEXT_LIMIT = 65536;

/** What to read. */
export interface HostReadSpec {
    readonly serviceName: string;
    /** `<serviceName>.service`. */
    readonly unitName: string;
    /** The managed files to report; `secret` files report per-key line hashes instead of their text. */
    readonly files: readonly { readonly path: string; readonly secret: boolean }[];
    /** The first line of every managed file (files without it are foreign). */
    readonly marker: string;
    /** Root-owned links the service keeps (the notes' `.env` path): reported with their target. */
    readonly links?: readonly string[];
    /** The service's user and group: reported present or absent. */
    readonly account?: { readonly user: string; readonly group: string };
    /** Directories the preparation keeps: reported with owner and mode, never followed when a link. */
    readonly directories?: readonly string[];
    /** Releases to check: `<releasesDir>/<id>` built, its venv's python runnable, its packages as built. */
    readonly releases?: readonly { readonly releasesDir: string; readonly id: string }[];
}

/** The file in a release listing the venv's installed distributions as built (`name-version.dist-info`, sorted). */
export const RELEASE_INSTALLED_FILE = ".installed";

/** Shell that prints the venv's installed distributions of release dir `$1`, sorted: what {@link RELEASE_INSTALLED_FILE} records. */
export const LIST_INSTALLED_SH = "find \"$1/venv\" -mindepth 4 -maxdepth 5 -type d -path '*/site-packages/*.dist-info' -printf '%f\\n' 2>/dev/null | LC_ALL=C sort";

/**
 * Shell functions `list_installed DIR` and `release_venv_state DIR`, shared by the read and the
 * build: the venv of a built release prints `ok`, `no-python` (its interpreter is gone: `-x`
 * follows the venv's link to the system python3) or `packages<TAB>CHANGES` (its installed
 * distributions differ from {@link RELEASE_INSTALLED_FILE}: `+name-version.dist-info` / `-…`).
 */
export const RELEASE_VENV_STATE_SH: readonly string[] = [
    `list_installed() { ${LIST_INSTALLED_SH}; }`,
    "release_venv_state() {",
    '  local r="$1"',
    '  if [ ! -x "$r/venv/bin/python" ]; then echo no-python; return 0; fi',
    `  if [ -f "$r/${RELEASE_INSTALLED_FILE}" ] && [ "$(list_installed "$r")" != "$(cat "$r/${RELEASE_INSTALLED_FILE}")" ]; then`,
    `    printf 'packages\\t%s\\n' "$(diff <(cat "$r/${RELEASE_INSTALLED_FILE}") <(list_installed "$r") | sed -n 's/^< /-/p; s/^> /+/p' | tr '\\n' ' ')"`,
    "    return 0",
    "  fi",
    "  echo ok",
    "}",
];

/** Python that prints `envkey PATH KEY SHA256(line)` for each `KEY=…` line of an env file: key names and hashes only. */
const ENV_KEYS_PY = [
    "import hashlib, re, sys",
    "path = sys.argv[1]",
    "for line in open(path, encoding='utf-8', errors='replace'):",
    "    line = line.rstrip('\\n')",
    `    m = re.match(r'^(${ENV_NAME_SOURCE})=', line)`,
    "    if m:",
    "        print('envkey\\t%s\\t%s\\t%s' % (path, m.group(1), hashlib.sha256(line.encode('utf-8', 'surrogateescape')).hexdigest()))",
].join("\n");

/**
 * The read script. Output, one record per line, tab-separated:
 * `file PATH absent|link|other`, `file PATH present SHA256 MODE OWNER GROUP b64:TEXT|-`,
 * `envkey PATH KEY SHA256`, `link PATH TARGET` (empty: absent, not a link or not root's), `foreign PATH link`, `foreign PATH file SHA256 SUMMARY_JSON` (see `summarise_dropin`), `unit ENABLED ACTIVE`, `owner OWNER GENERATION`,
 * `account user|group NAME present|absent`, `dir PATH absent|link|other`, `dir PATH present MODE OWNER GROUP`,
 * `release DIR ok|absent|incomplete|no-python`, `release DIR packages CHANGES`.
 */
export function readHostScript(spec: HostReadSpec): string {
    return (
        [
            "set -euo pipefail",
            "export LC_ALL=C",
            "umask 077",
            `UNIT=${q(spec.unitName)}`,
            `MARKER=${q(`# ${spec.marker}`)}`,
            `PATHS=(${shellWords(spec.files.map((f) => f.path))})`,
            `SECRETS=(${shellWords(spec.files.map((f) => (f.secret ? "1" : "0")))})`,
            `DROPIN_DIRS=(${shellWords([unitDropInDir(spec.unitName), JOURNALD_DROPIN_DIR])})`,
            `OWNER_RECORD=${q(ownerRecordPath(spec.serviceName))}`,
            `LINKS=(${shellWords(spec.links ?? [])})`,
            `LIMIT=${READ_TEXT_LIMIT}`,
            ...dropInSummaryFunction(),
            'for i in "${!PATHS[@]}"; do',
            '  p="${PATHS[$i]}"',
            // Never follow a link (a less privileged user may own the directory): report it instead.
            '  if [ -L "$p" ]; then printf \'file\\t%s\\tlink\\n\' "$p"; continue; fi',
            '  if [ ! -e "$p" ]; then printf \'file\\t%s\\tabsent\\n\' "$p"; continue; fi',
            '  if [ ! -f "$p" ]; then printf \'file\\t%s\\tother\\n\' "$p"; continue; fi',
            '  sum=$(sha256sum < "$p"); sum=${sum%% *}',
            '  read -r mode owner group < <(stat -c \'%a %U %G\' "$p")',
            '  mode=$(printf \'%04o\' "$((8#$mode))")',
            '  text=-',
            '  if [ "${SECRETS[$i]}" = 0 ] && [ "$(stat -c %s "$p")" -le "$LIMIT" ]; then text="b64:$(base64 -w0 < "$p")"; fi',
            '  printf \'file\\t%s\\tpresent\\t%s\\t%s\\t%s\\t%s\\t%s\\n\' "$p" "$sum" "$mode" "$owner" "$group" "$text"',
            `  if [ "\${SECRETS[$i]}" = 1 ]; then python3 -c ${quoteScript(ENV_KEYS_PY)} "$p"; fi`,
            "done",
            'for l in "${LINKS[@]}"; do',
            '  if [ -L "$l" ] && [ "$(stat -c %u "$l")" = 0 ]; then printf \'link\\t%s\\t%s\\n\' "$l" "$(readlink "$l")"; else printf \'link\\t%s\\t\\n\' "$l"; fi',
            "done",
            'for d in "${DROPIN_DIRS[@]}"; do',
            '  [ -d "$d" ] && [ ! -L "$d" ] || continue',
            '  for f in "$d"/*.conf; do',
            '    [ -e "$f" ] || [ -L "$f" ] || continue',
            '    if [ -L "$f" ] || [ ! -f "$f" ]; then printf \'foreign\\t%s\\tlink\\n\' "$f"; continue; fi',
            '    [ "$(head -n 1 "$f")" = "$MARKER" ] && continue',
            // Summarised here: the text (which may hold Environment=TOKEN=…) never leaves the host.
            '    summarise_dropin record "$f"',
            "  done",
            "done",
            'printf \'unit\\t%s\\t%s\\n\' "$(systemctl is-enabled "$UNIT" 2>/dev/null || true)" "$(systemctl is-active "$UNIT" 2>/dev/null || true)"',
            // The socket unit beside it (socket activation), when there is one.
            'SOCKET_UNIT="${UNIT%.service}.socket"',
            'if [ -f "/etc/systemd/system/$SOCKET_UNIT" ]; then printf \'socket\\t%s\\t%s\\n\' "$(systemctl is-enabled "$SOCKET_UNIT" 2>/dev/null || true)" "$(systemctl is-active "$SOCKET_UNIT" 2>/dev/null || true)"; fi',
            'if [ -f "$OWNER_RECORD" ] && [ ! -L "$OWNER_RECORD" ]; then read -r o g < "$OWNER_RECORD" || true; printf \'owner\\t%s\\t%s\\n\' "${o:-}" "${g:-0}"; fi',
            ...(spec.account
                ? [
                      `ACCOUNT_USER=${q(spec.account.user)}`,
                      `ACCOUNT_GROUP=${q(spec.account.group)}`,
                      'if id -u "$ACCOUNT_USER" >/dev/null 2>&1; then printf \'account\\tuser\\t%s\\tpresent\\n\' "$ACCOUNT_USER"; else printf \'account\\tuser\\t%s\\tabsent\\n\' "$ACCOUNT_USER"; fi',
                      'if getent group "$ACCOUNT_GROUP" >/dev/null; then printf \'account\\tgroup\\t%s\\tpresent\\n\' "$ACCOUNT_GROUP"; else printf \'account\\tgroup\\t%s\\tabsent\\n\' "$ACCOUNT_GROUP"; fi',
                  ]
                : []),
            `DIRS=(${shellWords(spec.directories ?? [])})`,
            'for d in "${DIRS[@]}"; do',
            '  if [ -L "$d" ]; then printf \'dir\\t%s\\tlink\\n\' "$d"; continue; fi',
            '  if [ ! -e "$d" ]; then printf \'dir\\t%s\\tabsent\\n\' "$d"; continue; fi',
            '  if [ ! -d "$d" ]; then printf \'dir\\t%s\\tother\\n\' "$d"; continue; fi',
            '  read -r mode owner group < <(stat -c \'%a %U %G\' "$d")',
            '  printf \'dir\\t%s\\tpresent\\t%04o\\t%s\\t%s\\n\' "$d" "$((8#$mode))" "$owner" "$group"',
            "done",
            `REL_DIRS=(${shellWords((spec.releases ?? []).map((r) => `${r.releasesDir}/${r.id}`))})`,
            ...RELEASE_VENV_STATE_SH,
            'for r in "${REL_DIRS[@]}"; do',
            // A release is root's: a link or a directory of another owner is not the release that was built.
            '  if [ -L "$r" ] || [ ! -d "$r" ] || [ "$(stat -c %u "$r")" != 0 ]; then printf \'release\\t%s\\tabsent\\n\' "$r"; continue; fi',
            '  if [ ! -f "$r/.complete" ]; then printf \'release\\t%s\\tincomplete\\n\' "$r"; continue; fi',
            '  printf \'release\\t%s\\t%s\\n\' "$r" "$(release_venv_state "$r")"',
            "done",
        ].join("\n") + "\n"
    );
}

/** One managed file as the host has it. */
export type LiveFile =
    | { readonly state: "absent" | "link" | "other" }
    | {
          readonly state: "present";
          readonly sha256: string;
          readonly mode: string;
          readonly owner: string;
          readonly group: string;
          /** The text of a file that holds no secret (undefined when larger than {@link READ_TEXT_LIMIT}). */
          readonly text?: string;
          /** For secret files: SHA-256 of each `KEY=value` line, by key. */
          readonly keyHashes?: Record<string, string>;
      };

/** What the read script found. */
export interface HostRead {
    readonly files: Record<string, LiveFile>;
    /** Unmanaged `*.conf` files in the unit's and journald's drop-in directories: path → summary (never their text). */
    readonly foreign: Record<string, ForeignDropIn>;
    /** Each link asked for → its target ("" when absent, not a link, or not owned by root). */
    readonly links: Record<string, string>;
    /** `systemctl is-enabled` / `is-active` ("" when the unit is unknown). */
    readonly unit: { readonly enabled: string; readonly active: string };
    /** The same for its socket unit (`<service>.socket`), when its file exists. */
    readonly socket?: { readonly enabled: string; readonly active: string };
    readonly owner?: { readonly owner: string; readonly generation: number };
    /** The account asked for: user and group names → present. */
    readonly account: { readonly users: Record<string, boolean>; readonly groups: Record<string, boolean> };
    /** Each directory asked for. */
    readonly dirs: Record<string, LiveDir>;
    /** Each release directory asked for. */
    readonly releases: Record<string, LiveRelease>;
}

/** A directory as the host has it. */
export type LiveDir = { readonly state: "absent" | "link" | "other" } | { readonly state: "present"; readonly mode: string; readonly owner: string; readonly group: string };

/**
 * A release as the host has it: `ok`; `absent` (or not a root-owned directory); `incomplete` (its build never
 * finished); `no-python` (the venv's interpreter is gone, e.g. the system python3 was removed or upgraded);
 * `packages` (the venv's installed distributions differ from what the build installed: `changes` lists `+name-version.dist-info` / `-…`).
 */
export type LiveRelease = { readonly state: "ok" | "absent" | "incomplete" | "no-python" } | { readonly state: "packages"; readonly changes: string };

/** A `foreign` record's fields after the path; anything but a well-formed summary of a plain file counts as a link (not a plain file). */
function foreignDropInOf(fields: readonly string[]): ForeignDropIn {
    if (fields[0] !== "file" || !/^[0-9a-f]{64}$/.test(fields[1] ?? "")) return { kind: "link" };
    try {
        const parsed = JSON.parse(fields[2] ?? "") as { sections?: unknown; unparsedLines?: unknown };
        const sections: Record<string, Record<string, string | null>> = {};
        for (const [section, directives] of Object.entries(parsed.sections && typeof parsed.sections === "object" ? parsed.sections : {})) {
            const kept: Record<string, string | null> = {};
            for (const [name, value] of Object.entries(directives && typeof directives === "object" ? (directives as Record<string, unknown>) : {})) kept[name] = typeof value === "string" ? value : null;
            sections[section] = kept;
        }
        return { kind: "file", sha256: fields[1]!, sections, unparsedLines: typeof parsed.unparsedLines === "number" ? parsed.unparsedLines : 0 };
    } catch {
        return { kind: "file", sha256: fields[1]!, sections: {}, unparsedLines: 0 };
    }
}

/** Parses the read script's output. */
export function parseHostRead(stdout: string): HostRead {
    const files: Record<string, LiveFile> = {};
    const keyHashes: Record<string, Record<string, string>> = {};
    const foreign: Record<string, ForeignDropIn> = {};
    const links: Record<string, string> = {};
    let unit = { enabled: "", active: "" };
    let socket: HostRead["socket"];
    let owner: HostRead["owner"];
    const users: Record<string, boolean> = {};
    const groups: Record<string, boolean> = {};
    const dirs: Record<string, LiveDir> = {};
    const releases: Record<string, LiveRelease> = {};
    const text = (b64: string) => Buffer.from(b64, "base64").toString("utf8");
    for (const line of stdout.split("\n")) {
        const [kind, ...f] = line.split("\t");
        if (kind === "file" && f[0]) {
            if (f[1] === "present") {
                files[f[0]] = { state: "present", sha256: f[2] ?? "", mode: f[3] ?? "", owner: f[4] ?? "", group: f[5] ?? "", ...(f[6]?.startsWith("b64:") ? { text: text(f[6].slice(4)) } : {}) };
            } else {
                files[f[0]] = { state: f[1] === "link" ? "link" : f[1] === "other" ? "other" : "absent" };
            }
        } else if (kind === "envkey" && f[0] && f[1]) {
            (keyHashes[f[0]] ??= {})[f[1]] = f[2] ?? "";
        } else if (kind === "link" && f[0]) {
            links[f[0]] = f[1] ?? "";
        } else if (kind === "foreign" && f[0]) {
            foreign[f[0]] = foreignDropInOf(f.slice(1));
        } else if (kind === "unit") {
            unit = { enabled: f[0] ?? "", active: f[1] ?? "" };
        } else if (kind === "socket") {
            socket = { enabled: f[0] ?? "", active: f[1] ?? "" };
        } else if (kind === "owner") {
            owner = { owner: f[0] ?? "", generation: Number(f[1]) || 0 };
        } else if (kind === "account" && f[1]) {
            (f[0] === "group" ? groups : users)[f[1]] = f[2] === "present";
        } else if (kind === "dir" && f[0]) {
            dirs[f[0]] = f[1] === "present" ? { state: "present", mode: f[2] ?? "", owner: f[3] ?? "", group: f[4] ?? "" } : { state: f[1] === "link" ? "link" : f[1] === "other" ? "other" : "absent" };
        } else if (kind === "release" && f[0]) {
            const state = f[1];
            releases[f[0]] = state === "packages" ? { state, changes: (f[2] ?? "").trim() } : { state: state === "ok" || state === "incomplete" || state === "no-python" ? state : "absent" };
        }
    }
    for (const [path, hashes] of Object.entries(keyHashes)) {
        const live = files[path];
        if (live?.state === "present") files[path] = { ...live, keyHashes: hashes };
    }
    return { files, foreign, links, unit, ...(socket ? { socket } : {}), ...(owner ? { owner } : {}), account: { users, groups }, dirs, releases };
}
