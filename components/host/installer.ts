/**
 * The installer side of a release build: where packages come from (the
 * package indexes, checked to answer before anything is installed), where
 * the pinned uv comes from (downloaded by the host, or sent by the machine
 * running Pulumi), and how an installer's failure is reported (its
 * actionable line first, not its traceback).
 */
import { PinnedWheel, PYPI_INDEX_URL, ReleaseSpec, STATE_ROOT, UV_VERSION, UV_WHEELS, uvWheelUrl } from "../model";
import { aptGetLines } from "./apt";
import { bashArray, PRELUDE } from "./scripts";
import { redactFunction } from "./redact";
import { quoteScript, shellQuote as q } from "./shell";

/** Where the pinned tools (uv) are kept on a host, root-only to write. */
export const TOOLS_DIR = `${STATE_ROOT}/tools`;

/** How long the package index check waits for an index to answer, in seconds. */
export const INDEX_CHECK_TIMEOUT_SEC = 10;

/** What every generated script's `fail` prints before its message (see `PRELUDE`). */
export const SCRIPT_ERROR_PREFIX = "[amarktai-infra] error: ";

/**
 * Checks that each package index answers: GET `<index>/<first requirement's
 * normalized name>/` (the index root without one). Any HTTP answer below 500
 * counts (a 404 for a project page still proves the index is there). Prints
 * `<position>\t<reason>` of the first index that does not answer and exits 1.
 * argv: requirements file, timeout, number of trusted hosts, the trusted hosts, the index URLs.
 */
const INDEX_CHECK_PY = [
    "import concurrent.futures, os, re, socket, ssl, sys, urllib.error, urllib.parse, urllib.request",
    "req, timeout, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])",
    "trusted, urls = set(sys.argv[4:4 + n]), sys.argv[4 + n:]",
    "name = ''",
    "try:",
    "    with open(req, encoding='utf-8', errors='replace') as f:",
    "        for line in f:",
    "            line = line.split(' #')[0].strip()",
    "            m = None if line.startswith(('#', '-')) else re.match(r'[A-Za-z0-9][A-Za-z0-9._-]*', line)",
    "            if m:",
    "                name = re.sub(r'[-_.]+', '-', m.group(0)).lower()",
    "                break",
    "except OSError:",
    "    pass",
    "def probe(url):",
    "    target = url.rstrip('/') + '/' + (name + '/' if name else '')",
    "    parts = urllib.parse.urlsplit(url)",
    "    context = None",
    "    if parts.scheme == 'https' and (parts.hostname in trusted or parts.netloc in trusted):",
    "        context = ssl.create_default_context()",
    "        context.check_hostname = False",
    "        context.verify_mode = ssl.CERT_NONE",
    "    request = urllib.request.Request(target, headers={'User-Agent': 'amarktai-infra package index check'})",
    "    try:",
    "        with urllib.request.urlopen(request, timeout=timeout, context=context):",
    "            return None",
    "    except urllib.error.HTTPError as e:",
    "        return None if e.code < 500 else 'HTTP %d %s' % (e.code, e.reason)",
    "    except urllib.error.URLError as e:",
    "        r = e.reason",
    "        if isinstance(r, (socket.timeout, TimeoutError)):",
    "            return 'no answer within %g s' % timeout",
    "        return (getattr(r, 'strerror', None) or str(r)).strip()",
    "    except (socket.timeout, TimeoutError):",
    "        return 'no answer within %g s' % timeout",
    "    except Exception as e:",
    "        return (getattr(e, 'strerror', None) or str(e) or type(e).__name__).strip()",
    // Name resolution is not bounded by the socket timeout: the whole check is.
    "pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(urls)))",
    "futures = [pool.submit(probe, u) for u in urls]",
    "concurrent.futures.wait(futures, timeout=timeout + 5)",
    "for i, fut in enumerate(futures):",
    "    reason = fut.result() if fut.done() else 'no answer within %g s' % (timeout + 5)",
    "    if reason is not None:",
    "        print('%d\\t%s' % (i, ' '.join(reason.split())), flush=True)",
    "        os._exit(1)",
    "os._exit(0)",
].join("\n");

/**
 * Reads an installer's output on stdin and prints its one actionable line:
 * uv's `error:`/`×` line with its `Caused by:`/`╰─▶` lines, pip's last
 * `ERROR:` line, or the last line of a traceback that came after it; else
 * the last line.
 */
const INSTALLER_SUMMARY_PY = [
    "import re, sys",
    "lines = [l.rstrip() for l in sys.stdin.buffer.read().decode('utf-8', 'replace').splitlines()]",
    "def clean(l):",
    "    return ' '.join(re.sub(r'^[\\s\\u00d7\\u2570\\u2500\\u25b6\\u2502|]+', '', l).split())",
    "def summary():",
    "    for i, l in enumerate(lines):",
    "        s = l.strip()",
    "        if s.startswith('error:') or s.startswith('\\u00d7'):",
    "            parts = [clean(re.sub(r'^(error:|\\u00d7)\\s*', '', s))]",
    "            for n in lines[i + 1:]:",
    "                if not n.strip() or not n[:1].isspace():",
    "                    break",
    "                parts.append(clean(n))",
    "            return ' '.join(p for p in parts if p)",
    "    errors = [i for i, l in enumerate(lines) if l.startswith('ERROR:')]",
    "    tracebacks = [i for i, l in enumerate(lines) if l.startswith('Traceback (most recent call last)')]",
    "    if tracebacks and (not errors or tracebacks[-1] > errors[-1]):",
    "        tail = [l for l in lines[tracebacks[-1] + 1:] if l.strip() and not l[:1].isspace()]",
    "        if tail:",
    "            return clean(tail[-1])",
    "    if errors:",
    "        return clean(lines[errors[-1]][len('ERROR:'):])",
    "    rest = [l for l in lines if l.strip()]",
    "    return clean(rest[-1]) if rest else 'no output'",
    "text = summary()",
    "print(text if len(text) <= 600 else text[:597] + '...')",
].join("\n");

/**
 * Writes the `uv` binary of the pinned wheel to a new file (no link
 * followed), after checking the wheel's SHA-256. The wheel comes from a URL,
 * or from stdin when the source is `-`. Failures are one line on stderr.
 * argv: source, pinned SHA-256, destination.
 */
const PLACE_UV_PY = [
    "import hashlib, io, os, sys, urllib.request, zipfile",
    "src, digest, dest = sys.argv[1], sys.argv[2], sys.argv[3]",
    "try:",
    "    data = sys.stdin.buffer.read() if src == '-' else urllib.request.urlopen(src, timeout=20).read()",
    "except Exception as e:",
    "    r = getattr(e, 'reason', e)",
    "    sys.exit('cannot download %s: %s' % (src, getattr(r, 'strerror', None) or r))",
    "got = hashlib.sha256(data).hexdigest()",
    "if got != digest:",
    "    sys.exit('uv wheel checksum mismatch: got %s, pinned %s' % (got, digest))",
    "z = zipfile.ZipFile(io.BytesIO(data))",
    "name = next(n for n in z.namelist() if n.endswith('.data/scripts/uv'))",
    "fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o755)",
    "with os.fdopen(fd, 'wb') as f:",
    "    f.write(z.read(name))",
].join("\n");

/** What the check's message tells the user to do about the main index, and about an extra one. */
const PRIMARY_INDEX_HINT = "set releases.indexUrl to an index this host can reach (and releases.uvSource: deployer if it cannot reach PyPI's files either)";
const EXTRA_INDEX_HINT = "remove it from releases.extraIndexUrls, or make it reachable from this host";

/** The index URLs a release installs from: its index (PyPI by default), then the extra ones. */
export function packageIndexUrls(spec: Pick<ReleaseSpec, "indexUrl" | "extraIndexUrls">): string[] {
    return [spec.indexUrl ?? PYPI_INDEX_URL, ...(spec.extraIndexUrls ?? [])];
}

/** uv's index arguments for `spec`: only the flags of settings that are set. */
export function uvIndexArgs(spec: Pick<ReleaseSpec, "indexUrl" | "extraIndexUrls" | "trustedHosts">): string[] {
    return [
        ...(spec.indexUrl !== undefined ? ["--index-url", spec.indexUrl] : []),
        ...(spec.extraIndexUrls ?? []).flatMap((u) => ["--extra-index-url", u]),
        ...(spec.trustedHosts ?? []).flatMap((h) => ["--allow-insecure-host", h]),
    ];
}

/** pip's index arguments for `spec`: only the flags of settings that are set. */
export function pipIndexArgs(spec: Pick<ReleaseSpec, "indexUrl" | "extraIndexUrls" | "trustedHosts">): string[] {
    return [
        ...(spec.indexUrl !== undefined ? ["--index-url", spec.indexUrl] : []),
        ...(spec.extraIndexUrls ?? []).flatMap((u) => ["--extra-index-url", u]),
        ...(spec.trustedHosts ?? []).flatMap((h) => ["--trusted-host", h]),
    ];
}

/**
 * Shell lines defining the package index settings (`UV_INDEX_ARGS`,
 * `PIP_INDEX_ARGS`, every value quoted) and `check_package_indexes
 * REQUIREMENTS`: fails within seconds, naming the index and what to set,
 * when an index does not answer from this host.
 */
export function packageIndexLines(spec: Pick<ReleaseSpec, "indexUrl" | "extraIndexUrls" | "trustedHosts">): string[] {
    return [
        bashArray("INDEX_URLS", packageIndexUrls(spec)),
        bashArray("TRUSTED_HOSTS", [...(spec.trustedHosts ?? [])]),
        bashArray("UV_INDEX_ARGS", uvIndexArgs(spec)),
        bashArray("PIP_INDEX_ARGS", pipIndexArgs(spec)),
        `INDEX_CHECK_TIMEOUT=${q(String(INDEX_CHECK_TIMEOUT_SEC))}`,
        `PRIMARY_INDEX_HINT=${q(PRIMARY_INDEX_HINT)}`,
        `EXTRA_INDEX_HINT=${q(EXTRA_INDEX_HINT)}`,
        "check_package_indexes() {",
        "  local out i reason",
        `  if out=$(python3 -c ${quoteScript(INDEX_CHECK_PY)} "$1" "$INDEX_CHECK_TIMEOUT" "\${#TRUSTED_HOSTS[@]}" "\${TRUSTED_HOSTS[@]}" "\${INDEX_URLS[@]}"); then return 0; fi`,
        '  i=${out%%$\'\\t\'*}; reason=${out#*$\'\\t\'}',
        '  [[ "$i" =~ ^[0-9]+$ ]] || fail "checking the package indexes failed: ${out:-no output}"',
        '  if [ "$i" = 0 ]; then fail "cannot reach the package index ${INDEX_URLS[0]} from this host ($reason): $PRIMARY_INDEX_HINT"; fi',
        '  fail "cannot reach the package index ${INDEX_URLS[$i]} from this host ($reason): $EXTRA_INDEX_HINT"',
        "}",
    ];
}

/**
 * Shell lines defining `run_installer NAME COMMAND...` (and the `redact_output`
 * it uses): runs COMMAND with its output in `$INSTALL_LOG`; when it fails,
 * prints the log's last lines (URL credentials hidden, long lines cut) and
 * then fails with NAME and the installer's actionable line (see
 * {@link scriptError}), so the error reads cause first, not traceback first.
 */
export function installerLines(): string[] {
    return [
        "installer_summary() {",
        `  python3 -c ${quoteScript(INSTALLER_SUMMARY_PY)} < "$1" 2>/dev/null || tail -n 1 "$1"`,
        "}",
        // The log reaches the error (and CI logs): redact_output with no env file hides an index URL's `user:token@`
        // and cuts long lines, as for the journal.
        ...redactFunction(),
        "run_installer() {",
        '  local name="$1" rc=0',
        "  shift",
        '  "$@" >> "$INSTALL_LOG" 2>&1 || rc=$?',
        '  if [ "$rc" -ne 0 ]; then',
        '    printf -- \'--- the last lines of %s ---\\n\' "$name" >&2',
        '    tail -n 40 "$INSTALL_LOG" | redact_output -- >&2 || true',
        '    fail "$name failed (exit $rc): $(installer_summary "$INSTALL_LOG" | redact_output --)"',
        "  fi",
        "}",
    ];
}

/**
 * Shell lines defining the pinned uv for this host's architecture: `ARCH`,
 * `UV_SUM` (empty when nothing is pinned for the architecture), `UV_DIR`
 * (in the tools directory `TOOLS`), `uv_present` (succeeds when root put uv
 * there) and, with `download`, `UV_URL` (below `uvMirror` when set).
 */
export function uvPinLines(download?: Pick<ReleaseSpec, "uvMirror">): string[] {
    const url = (w: PinnedWheel) => (download ? `UV_URL=${q(uvWheelUrl(w, download.uvMirror))}; ` : "");
    return [
        `TOOLS=${q(TOOLS_DIR)}`,
        `UV_VERSION=${q(UV_VERSION)}`,
        "ARCH=$(uname -m)",
        'case "$ARCH" in',
        ...Object.entries(UV_WHEELS).map(([arch, w]) => `  ${arch}) ${url(w)}UV_SUM=${q(w.sha256)} ;;`),
        `  *) ${download ? 'UV_URL=""; ' : ""}UV_SUM="" ;;`,
        "esac",
        'UV_DIR="$TOOLS/uv-$UV_VERSION-$ARCH"',
        // A uv directory counts only when root placed it there: root-owned, not a link.
        'uv_present() { [ -d "$UV_DIR" ] && [ ! -L "$UV_DIR" ] && [ "$(stat -c %u "$UV_DIR")" = 0 ] && [ -x "$UV_DIR/uv" ] && [ ! -L "$UV_DIR/uv" ]; }',
    ];
}

/**
 * Shell lines defining `uv_place SOURCE ORIGIN` (after {@link uvPinLines}):
 * writes the uv of the wheel at SOURCE (a URL, or `-` for stdin), checked
 * against `UV_SUM`, into `UV_DIR` with a note of its ORIGIN; on failure it
 * sets `uv_problem` and returns 1. `TOOLS` and its parent must be
 * root-owned directories, not links: anything else fails the script.
 * Placements on one host take turns (`TOOLS/.lock`); one that finds uv
 * placed by another build while it waited keeps that one.
 */
export function uvPlaceLines(): string[] {
    return [
        'uv_problem=""',
        "uv_place() {",
        '  local src="$1" origin="$2" tmp d',
        '  install -d -m 0755 -o root -g root "${TOOLS%/*}" "$TOOLS"',
        '  for d in "${TOOLS%/*}" "$TOOLS"; do',
        '    [ -d "$d" ] && [ ! -L "$d" ] && [ "$(stat -c %u "$d")" = 0 ] || fail "$d must be a directory owned by root (not a link) to hold the pinned uv"',
        "  done",
        // One placement at a time per host (two services' builds may start together): the second waits, then finds
        // uv placed and keeps it, so no build ever deletes the binary another one is running.
        '  exec 8>"$TOOLS/.lock"',
        "  flock -w 900 8 || fail \"another build is still placing uv in $TOOLS\"",
        '  if uv_present; then',
        '    if [ "$src" = - ]; then cat > /dev/null; fi',
        '    exec 8>&-; return 0',
        "  fi",
        '  tmp=$(mktemp -d "$TOOLS/.uv.XXXXXX")',
        `  if ! uv_problem=$(python3 -c ${quoteScript(PLACE_UV_PY)} "$src" "$UV_SUM" "$tmp/uv" 2>&1); then rm -rf -- "$tmp"; exec 8>&-; return 1; fi`,
        '  printf \'%s\\n\' "$origin" > "$tmp/origin"',
        '  chmod 0755 "$tmp"; rm -rf -- "$UV_DIR"; mv -T "$tmp" "$UV_DIR"',
        "  exec 8>&-",
        "}",
    ];
}

/**
 * Shell lines (after {@link uvPinLines} with a download, {@link uvPlaceLines},
 * and `INSTALLER`, `UV_SOURCE` and `note` set) choosing the installer: `uv`
 * is set to the pinned uv (placing it first when the host downloads it), or
 * left empty, with the reason logged, for `python3 -m venv` + pip.
 */
export function chooseUvLines(): string[] {
    return [
        'uv=""',
        'if [ "$INSTALLER" = uv ]; then',
        '  if [ -z "$UV_SUM" ]; then log "no uv is pinned for $ARCH: falling back to python3 -m venv + pip"',
        '  elif uv_present; then uv="$UV_DIR/uv"',
        '  elif [ "$UV_SOURCE" = deployer ]; then log "uv $UV_VERSION is not on this host (releases.uvSource: deployer sends it before the build): falling back to python3 -m venv + pip"',
        '  elif uv_place "$UV_URL" "downloaded by this host from $UV_URL"; then uv="$UV_DIR/uv"; note "uv $UV_VERSION for $ARCH: downloaded by this host from $UV_URL"',
        '  else log "cannot fetch uv $UV_VERSION for $ARCH ($uv_problem): falling back to python3 -m venv + pip; set releases.uvMirror, or releases.uvSource: deployer, when this host cannot reach it"',
        "  fi",
        "fi",
    ];
}

/**
 * Shell lines preparing an installer run in a build directory `$REL` (a
 * release build's or a resolution's, after `note` and the sandbox's lines):
 * the index settings and `run_installer` (its log in `$REL/.installer.log`),
 * the check that every index answers (with `requirements`, a path in the
 * script, for the first project's page), and the installer chosen: `uv` set
 * to the pinned uv, or empty for `python3 -m venv` + pip.
 */
export function installerSetupLines(spec: Pick<ReleaseSpec, "indexUrl" | "extraIndexUrls" | "trustedHosts" | "uvMirror">, requirements: string): string[] {
    return [
        ...packageIndexLines(spec),
        ...installerLines(),
        'INSTALL_LOG="$REL/.installer.log"',
        // Before anything is installed (and before falling back from uv to pip): an index this host cannot reach fails now, not after the installers' retries.
        `check_package_indexes ${requirements}`,
        // The pinned uv: downloaded once per host (or sent by the deployer), checked against its pinned SHA-256, kept root-only to write.
        ...uvPinLines(spec),
        ...uvPlaceLines(),
        ...chooseUvLines(),
    ];
}

/** Shell lines (indented for an `if` body) installing `python3-venv` when `venv` or `ensurepip` is missing, waiting for apt's locks. */
export function pythonVenvLines(aptLockSec: number): string[] {
    return [
        "  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then",
        '    log "installing python3-venv"',
        ...aptGetLines([{ op: "update" }, { op: "install", packages: ["python3-venv"] }], aptLockSec).map((l) => `    ${l}`),
        "  fi",
    ];
}

/**
 * A script printing `<arch> present|absent|unpinned`: the host's
 * architecture (`uname -m`) and whether the pinned uv is already in its tools
 * directory (`unpinned`: no uv is pinned for that architecture).
 */
export function uvProbeScript(): string {
    return (
        [...PRELUDE, ...uvPinLines(), 'if [ -z "$UV_SUM" ]; then state=unpinned; elif uv_present; then state=present; else state=absent; fi', 'printf \'%s %s\\n\' "$ARCH" "$state"'].join("\n") + "\n"
    );
}

/**
 * Installs the pinned uv from the wheel on stdin (sent by the machine running
 * Pulumi) into the tools directory the build uses, exactly as the build's own
 * download does: checked against the pinned SHA-256, root-only, no link
 * followed. Refuses a host whose architecture is not `arch`. Nothing to do
 * when uv is already there.
 */
export function installUvScript(arch: string): string {
    return (
        [
            ...PRELUDE,
            // As the build: the binary is root's to write and everyone's to run.
            "umask 022",
            ...uvPinLines(),
            ...uvPlaceLines(),
            `WANT_ARCH=${q(arch)}`,
            '[ "$ARCH" = "$WANT_ARCH" ] || fail "the uv wheel sent is for $WANT_ARCH, but this host is $ARCH"',
            '[ -n "$UV_SUM" ] || fail "no uv is pinned for $ARCH"',
            'if uv_present; then cat > /dev/null; log "uv $UV_VERSION for $ARCH is already on this host"; exit 0; fi',
            'uv_place - "sent by the deployer" || fail "installing the uv wheel sent by the deployer failed: $uv_problem"',
            'msg="uv $UV_VERSION for $ARCH: installed from the wheel the deployer sent (this host downloaded nothing)"',
            'log "$msg"; logger -t amarktai-infra -- "$msg" 2>/dev/null || true',
        ].join("\n") + "\n"
    );
}

/** The message of the last `fail` line in a script's output (without its prefix), if any. */
export function scriptError(output: string): string | undefined {
    const lines = output.split("\n").filter((l) => l.startsWith(SCRIPT_ERROR_PREFIX));
    const last = lines[lines.length - 1];
    return last === undefined ? undefined : last.slice(SCRIPT_ERROR_PREFIX.length).trim() || undefined;
}

/**
 * An error message that opens with the failed script's own error line (see
 * {@link scriptError}), then `message` without that line: the cause first,
 * then where it happened and the output's last lines. `message` as it is
 * when the output has no error line.
 */
export function leadWithScriptError(message: string, output: string): string {
    const line = scriptError(output);
    if (line === undefined) return message;
    const rest = message
        .split("\n")
        .filter((l) => l.trim() !== `${SCRIPT_ERROR_PREFIX}${line}`)
        .join("\n");
    return `${line}\n${rest}`;
}
