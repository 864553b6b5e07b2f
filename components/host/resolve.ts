/**
 * The script that resolves a service's requirements into a lock on one host:
 * every package pinned to one version with its SHA-256 hashes. It runs once
 * per change of the requirements (the lock is kept in the stack's state), in
 * the same build sandbox as a release build (`sandbox.ts`): resolving may
 * build an sdist to read its metadata, which runs the package's code. Every
 * host's release is then installed from the lock with `--require-hashes`.
 */
import { DEFAULT_HOST_WAITS, HostWaits, RELEASE_ID, ResolutionSpec } from "../model";
import { installerSetupLines, pythonVenvLines } from "./installer";
import { buildDirectoryLines } from "./release";
import { DETACHED_PRELUDE } from "./scripts";
import { quoteScript, shellQuote as q } from "./shell";

/** The line the lock follows on the script's standard output (anything before it is not the lock). */
export const LOCK_MARKER = "--- amarktai-infra resolved requirements ---";

/**
 * Turns pip's installation report (`pip install --dry-run --report`) into a
 * lock: `name==version` with the SHA-256 of the archive pip chose, one per
 * package, sorted by name. A package that does not come from an index
 * archive (a URL, a directory) cannot be pinned and fails the resolution.
 * argv: the report.
 */
export const PIP_REPORT_TO_LOCK_PY = [
    "import json, sys",
    "with open(sys.argv[1], encoding='utf-8') as f:",
    "    report = json.load(f)",
    "lines = []",
    "for item in report.get('install', []):",
    "    meta = item.get('metadata') or {}",
    "    name, version = meta.get('name'), meta.get('version')",
    "    info = item.get('download_info') or {}",
    "    archive = info.get('archive_info')",
    "    if not name or not version or archive is None:",
    "        sys.exit('cannot pin %s: pip resolved it to %s, not to an archive from the index' % (name or '?', info.get('url', '?')))",
    "    digest = (archive.get('hashes') or {}).get('sha256')",
    "    if not digest and str(archive.get('hash', '')).startswith('sha256='):",
    "        digest = archive['hash'][len('sha256='):]",
    "    if not digest:",
    "        sys.exit('cannot pin %s %s: the index gave no SHA-256 for it' % (name, version))",
    "    lines.append((name.lower(), '%s==%s \\\\\\n    --hash=sha256:%s' % (name, version, digest)))",
    "print('\\n'.join(line for _, line in sorted(lines)))",
].join("\n");

/**
 * Resolves `spec.requirements` (sent on stdin) on this host and prints
 * {@link LOCK_MARKER} followed by the lock. With uv: `uv pip compile
 * --generate-hashes` (every artifact's hash of each chosen version, so hosts
 * of another architecture install the same set); with pip: a dry-run install
 * report (the hash of the archive this host would install). Either runs as
 * the throwaway build account in the sandbox, with a throwaway cache; root
 * reads what it wrote only after taking it over (no link followed). The
 * package indexes are checked to answer first. Nothing is left on the host.
 */
export function resolveRequirementsScript(spec: ResolutionSpec, waits: Pick<HostWaits, "aptLockSec"> = DEFAULT_HOST_WAITS): string {
    if (!RELEASE_ID.test(spec.id)) throw new Error(`not a resolution id: ${spec.id}`);
    const lines = [
        ...DETACHED_PRELUDE,
        "umask 022",
        `RELEASES=${q(spec.releasesDir)}`,
        `ID=${q(spec.id)}`,
        `INSTALLER=${q(spec.installer)}`,
        `UV_SOURCE=${q(spec.uvSource ?? "host")}`,
        `LOCK_MARKER=${q(LOCK_MARKER)}`,
        // The scratch directory: root's, beside the releases (a name release pruning never takes), gone at exit.
        'REL="$RELEASES/.resolve-$ID"',
        // As a release build: the same checks, the same sandbox, and the same lock (a service's builds take turns).
        ...buildDirectoryLines(spec),
        'SANDBOX_WHAT="resolve requirements $ID"',
        'cleanup() { local rc=$?; drop_build_account; rm -rf -- "$REL"; exit "$rc"; }',
        "trap cleanup EXIT",
        'rm -rf -- "$REL"',
        'install -d -m 0755 "$REL"',
        'cat > "$REL/requirements.in"',
        'START=$(date +%s)',
        "build_account",
        // The sandbox's only writable path (named as a release build's): what the resolver writes goes here.
        'install -d -m 0755 -o "$BUILD_ACCOUNT" -g "$BUILD_ACCOUNT" "$REL/venv"',
        ...installerSetupLines(spec, '"$REL/requirements.in"'),
        'if [ -n "$uv" ]; then',
        "  SANDBOX_ENV=(UV_PYTHON_DOWNLOADS=never UV_NATIVE_TLS=1 UV_CACHE_DIR=/tmp/uv-cache HOME=/tmp)",
        '  run_installer "uv pip compile" sandboxed "$uv" pip compile --quiet --generate-hashes --no-header --no-annotate --python "$(command -v python3)" "${UV_INDEX_ARGS[@]}" -o "$REL/venv/lock.txt" "$REL/requirements.in"',
        '  how="uv $UV_VERSION"',
        "else",
        ...pythonVenvLines(waits.aptLockSec),
        "  SANDBOX_ENV=(HOME=/tmp PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1)",
        '  run_installer "python3 -m venv" sandboxed "$(command -v python3)" -m venv "$REL/venv/env"',
        '  run_installer "pip install --dry-run" sandboxed "$REL/venv/env/bin/pip" install --dry-run --ignore-installed -q --report "$REL/venv/report.json" "${PIP_INDEX_ARGS[@]}" -r "$REL/requirements.in"',
        '  how="pip"',
        "fi",
        // Root reads what the build account wrote only once it is root's, every process of the account gone, and only a plain file.
        "take_venv",
        'if [ -n "$uv" ]; then out="$REL/venv/lock.txt"; else out="$REL/venv/report.json"; fi',
        '[ -f "$out" ] && [ ! -L "$out" ] || fail "the resolver wrote no $(basename "$out")"',
        `if [ -z "$uv" ]; then python3 -c ${quoteScript(PIP_REPORT_TO_LOCK_PY)} "$out" > "$REL/lock.txt" || fail "cannot make a lock of pip's report"; out="$REL/lock.txt"; fi`,
        'count=$(grep -c "==" "$out" || true)',
        'note "requirements resolved with $how in $(( $(date +%s) - START ))s: ${count} package(s) pinned with their hashes (resolution $ID)"',
        'printf \'%s\\n\' "$LOCK_MARKER"',
        'cat -- "$out"',
    ];
    return lines.join("\n") + "\n";
}

/** The lock in a resolution script's standard output: what follows {@link LOCK_MARKER}. */
export function lockOfOutput(stdout: string): string {
    const at = stdout.indexOf(`${LOCK_MARKER}\n`);
    if (at === -1) throw new Error("the resolution printed no lock");
    const lock = stdout.slice(at + LOCK_MARKER.length + 1);
    return lock.endsWith("\n") ? lock : `${lock}\n`;
}
