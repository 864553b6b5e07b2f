/**
 * The scripts that build a release on a host and the activation's part that
 * switches to it. A release is built in its own root-owned directory
 * `<releasesDir>/<id>/{app,venv,requirements.txt}` beside the live one, from
 * one tar stream on stdin: root unpacks the app, the installers run in the
 * build sandbox (`sandbox.ts`: an unprivileged account that can write the new
 * venv only), and root takes the finished venv. Nothing that serves traffic
 * is touched until the activation renames the `current` link.
 */
import { DEFAULT_HOST_WAITS, HostWaits, RELEASE_ID, ReleaseSpec } from "../model";
import { installerSetupLines, packageIndexUrls, pythonVenvLines } from "./installer";
import { DETACHED_PRELUDE } from "./scripts";
import { RELEASE_INSTALLED_FILE, RELEASE_VENV_STATE_SH } from "./read";
import { sandboxAllowedAddresses, sandboxLines } from "./sandbox";
import { quoteScript, shellQuote as q } from "./shell";

/** Unpacks the release archive: only `requirements.txt` and regular files under `app/`, through tarfile's `data` filter. */
const UNPACK_PY = [
    "import re, sys, tarfile",
    "archive, dest = sys.argv[1], sys.argv[2]",
    "safe = re.compile(r'^(requirements\\.txt|app(/[A-Za-z0-9._@+-]+)+)$')",
    "with tarfile.open(archive, 'r:') as t:",
    "    members = t.getmembers()",
    "    for m in members:",
    "        if not m.isfile() or not safe.match(m.name) or '/../' in m.name + '/' or '/./' in m.name + '/':",
    "            sys.exit('refusing the release archive: unexpected entry %r' % m.name)",
    "    if hasattr(tarfile, 'data_filter'):",
    "        t.extractall(dest, members=members, filter='data')",
    "    else:",
    "        t.extractall(dest, members=members)",
].join("\n");


/**
 * Shell lines every build in a releases directory starts with (a release's
 * or a resolution's; after `RELEASES` and `ID` are set): `note` (to the log
 * and the host's journal, tag amarktai-infra), the releases directory made
 * and checked root's (never a link), the build sandbox for this build's
 * identity, and the directory's lock: one build at a time per releases
 * directory.
 */
export function buildDirectoryLines(build: Pick<ReleaseSpec, "releasesDir" | "id" | "indexUrl" | "extraIndexUrls">): string[] {
    return [
        // Builds and reuses also go to the host's journal (tag amarktai-infra), so an operator can see which releases ran an installer.
        'note() { log "$*"; logger -t amarktai-infra -- "$*" 2>/dev/null || true; }',
        // Root writes only into directories that root owns and that are not links.
        'root_dir() { [ -d "$1" ] && [ ! -L "$1" ] && [ "$(stat -c %u "$1")" = 0 ] || fail "$1 must be a directory owned by root (not a link) to hold releases"; }',
        'root_dir "$(dirname "$RELEASES")"',
        'install -d -m 0755 -o root -g root "$RELEASES"',
        'root_dir "$RELEASES"',
        ...sandboxLines(build, sandboxAllowedAddresses(packageIndexUrls(build))),
        'exec 9>"$RELEASES/.lock"',
        "flock -w 900 9 || fail 'another release build is still running'",
    ];
}

/**
 * Builds release `spec.id` from the tar archive on stdin (checked against
 * `archiveSha256`), unless a complete release of that id is already on the
 * host (then nothing is installed: returning to an earlier config reuses it).
 * Before installing, it checks that the package indexes answer, and fails in
 * seconds naming the index when one does not. The venv is built with the
 * pinned `uv` (downloaded once per host from PyPI's files or `uvMirror`, or
 * sent by the deployer with `uvSource: deployer`; checked by its SHA-256) or,
 * when that is not possible or `installer` is `pip`, with `python3 -m venv` +
 * pip, both from the configured indexes. The installers run in the build
 * sandbox (see `sandbox.ts`) with a throwaway download cache; a package whose
 * build step writes outside the new venv fails the build. An installer's
 * failure ends with its actionable line. A failed build leaves nothing
 * behind; the live release is never touched.
 */
export function buildReleaseScript(spec: ReleaseSpec, archiveSha256: string, waits: Pick<HostWaits, "aptLockSec"> = DEFAULT_HOST_WAITS): string {
    if (!RELEASE_ID.test(spec.id)) throw new Error(`not a release id: ${spec.id}`);
    const lines = [
        ...DETACHED_PRELUDE,
        // What a release holds is not secret, and the service must be able to read it (never write it).
        "umask 022",
        `RELEASES=${q(spec.releasesDir)}`,
        `ID=${q(spec.id)}`,
        `ARCHIVE_SHA=${q(archiveSha256)}`,
        `INSTALLER=${q(spec.installer)}`,
        `REQUIRE_HASHES=${spec.requireHashes ? "1" : "0"}`,
        `ENV_LINK_NAME=${q(spec.envLinkName ?? "")}`,
        `ENV_STORE=${q(spec.envStore ?? "")}`,
        `UV_SOURCE=${q(spec.uvSource ?? "host")}`,
        'REL="$RELEASES/$ID"',
        ...buildDirectoryLines(spec),
        ...RELEASE_VENV_STATE_SH,
        // A built release is reused as it is, unless its venv broke since (the same check as the read's: the system
        // python3 went, or packages were changed by hand); then it is moved aside and built again.
        'broken=""',
        'if [ -f "$REL/.complete" ]; then',
        '  case "$(release_venv_state "$REL")" in',
        '    no-python) broken="its venv\'s python is gone" ;;',
        '    packages*) broken="its venv\'s packages changed since it was built" ;;',
        "  esac",
        '  if [ -z "$broken" ]; then note "release $ID is already on this host: reusing it (nothing installed)"; exit 0; fi',
        '  aside_dir="$RELEASES/.broken-$ID-$(date +%s)"',
        '  mv -T "$REL" "$aside_dir"',
        '  note "release $ID: $broken; building it again (the running service keeps its loaded files until its next restart)"',
        "fi",
        'START=$(date +%s)',
        'rm -rf -- "$REL"',
        // The build account reads the app and the requirements (not secret) and writes the venv only.
        'install -d -m 0755 "$REL"',
        'cleanup() { local rc=$?; drop_build_account; if [ "$rc" -ne 0 ]; then rm -rf -- "$REL"; if [ -n "$broken" ]; then mv -T "$aside_dir" "$REL"; fi; fi; exit "$rc"; }',
        "trap cleanup EXIT",
        'cat > "$REL/.archive.tar"',
        '[ "$(sha256sum < "$REL/.archive.tar" | cut -d " " -f 1)" = "$ARCHIVE_SHA" ] || fail "the release archive arrived damaged (SHA-256 mismatch)"',
        `python3 -c ${quoteScript(UNPACK_PY)} "$REL/.archive.tar" "$REL"`,
        'rm -f "$REL/.archive.tar"',
        'if [ -n "$ENV_LINK_NAME" ]; then install -d -m 0755 "$(dirname "$REL/app/$ENV_LINK_NAME")"; ln -sfnT "$ENV_STORE" "$REL/app/$ENV_LINK_NAME"; fi',
        'build_account',
        'install -d -m 0755 -o "$BUILD_ACCOUNT" -g "$BUILD_ACCOUNT" "$REL/venv"',
        'hashes=(); if [ "$REQUIRE_HASHES" = 1 ]; then hashes=(--require-hashes); fi',
        ...installerSetupLines(spec, '"$REL/requirements.txt"'),
        'if [ -n "$uv" ]; then',
        '  uv_origin=$(head -n 1 "$UV_DIR/origin" 2>/dev/null || true)',
        '  note "building release $ID with uv $UV_VERSION (${uv_origin:-already on this host})"',
        // The system CA store, as pip uses (a proxy or a private index with its own CA works the same way); the cache is
        // the sandbox's private /tmp, gone with it, so one build's downloads never feed another's.
        "  SANDBOX_ENV=(UV_PYTHON_DOWNLOADS=never UV_NATIVE_TLS=1 UV_CACHE_DIR=/tmp/uv-cache UV_LINK_MODE=copy HOME=/tmp)",
        '  run_installer "uv venv" sandboxed "$uv" venv --quiet --python "$(command -v python3)" "$REL/venv"',
        '  run_installer "uv pip install" sandboxed "$uv" pip install --quiet --python "$REL/venv/bin/python" --compile-bytecode "${UV_INDEX_ARGS[@]}" "${hashes[@]}" -r "$REL/requirements.txt"',
        "else",
        ...pythonVenvLines(waits.aptLockSec),
        '  log "building release $ID with python3 -m venv + pip"',
        "  SANDBOX_ENV=(HOME=/tmp PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1)",
        '  run_installer "python3 -m venv" sandboxed "$(command -v python3)" -m venv "$REL/venv"',
        '  run_installer "pip install" sandboxed "$REL/venv/bin/pip" install -q "${PIP_INDEX_ARGS[@]}" "${hashes[@]}" -r "$REL/requirements.txt"',
        "fi",
        'rm -f "$INSTALL_LOG"',
        // From here on nothing in the venv runs as root: root only checks and re-owns what the build account made.
        "take_venv",
        // The service cannot write here, so compile the app's bytecode now rather than on every start: with the
        // system python3 (the venv's own interpreter, by its link), never with anything the build wrote.
        'if [ -d "$REL/app" ]; then python3 -m compileall -q "$REL/app" >/dev/null 2>&1 || true; fi',
        'chmod 0755 "$REL"',
        `list_installed "$REL" > "$REL/${RELEASE_INSTALLED_FILE}"`,
        'printf \'%s\\n\' "$ID" > "$REL/.complete"',
        'if [ -n "$broken" ]; then rm -rf -- "$aside_dir"; fi',
        'note "release $ID built in $(( $(date +%s) - START ))s with $(if [ -n "$uv" ]; then echo "uv $UV_VERSION (${uv_origin:-already on this host})"; else echo pip; fi)"',
    ];
    return lines.join("\n") + "\n";
}

/**
 * The shell lines the activation runs for a release (see `activationScript`):
 * variables and the functions `release_check` (fails unless the release is built), `release_switch` (links the fixed paths and
 * renames `current` to the new release; sets `need_restart` when it changed),
 * `release_rollback` (renames `current` back) and `release_prune` (keeps the
 * newest `keep` releases and the current one).
 */
export function releaseActivationLines(spec: Pick<ReleaseSpec, "id" | "releasesDir" | "venvLink" | "appLink" | "keep">): string[] {
    if (!RELEASE_ID.test(spec.id)) throw new Error(`not a release id: ${spec.id}`);
    return [
        `RELEASES=${q(spec.releasesDir)}`,
        `RELEASE_ID=${q(spec.id)}`,
        `VENV_LINK=${q(spec.venvLink)}`,
        `APP_LINK=${q(spec.appLink ?? "")}`,
        `KEEP=${q(String(spec.keep))}`,
        'old_release=""',
        "aside=()",
        // link_to PATH TARGET: makes PATH a root-owned link to TARGET, in a root-owned parent; a real directory there
        // (an install from before releases) is moved aside into the releases directory, and back on rollback.
        "link_to() {",
        '  local p="$1" target="$2" parent keep',
        '  parent=$(dirname "$p")',
        '  [ -d "$parent" ] && [ ! -L "$parent" ] && [ "$(stat -c %u "$parent")" = 0 ] || fail "$parent must be a directory owned by root to hold the link $p"',
        '  if [ -L "$p" ] && [ "$(readlink "$p")" = "$target" ]; then return 0; fi',
        '  if [ -e "$p" ] && [ ! -L "$p" ]; then',
        '    keep="$RELEASES/before-releases-$(basename "$p")-$(date +%s)"',
        '    mv -T "$p" "$keep"; aside+=("$keep"); aside+=("$p")',
        '    log "moved the previous $p to $keep"',
        "  fi",
        '  ln -sfnT "$target" "$p.amarktai-infra.link"',
        '  mv -fT "$p.amarktai-infra.link" "$p"',
        "}",
        'release_check() { [ -f "$RELEASES/$RELEASE_ID/.complete" ] || fail "release $RELEASE_ID is not built on this host; run pulumi up again"; }',
        "release_switch() {",
        '  old_release=$(readlink "$RELEASES/current" 2>/dev/null || true)',
        '  link_to "$VENV_LINK" "$RELEASES/current/venv"',
        '  if [ -n "$APP_LINK" ]; then link_to "$APP_LINK" "$RELEASES/current/app"; fi',
        '  touch "$RELEASES/$RELEASE_ID"',
        '  if [ "$old_release" != "$RELEASE_ID" ]; then',
        '    ln -sfnT "$RELEASE_ID" "$RELEASES/.current.tmp"',
        '    mv -fT "$RELEASES/.current.tmp" "$RELEASES/current"',
        '    log "switched to release $RELEASE_ID (was ${old_release:-none})"',
        "    need_restart=1",
        "  fi",
        "}",
        "release_rollback() {",
        '  if [ -n "$old_release" ] && [ "$old_release" != "$RELEASE_ID" ]; then',
        '    ln -sfnT "$old_release" "$RELEASES/.current.tmp"',
        '    mv -fT "$RELEASES/.current.tmp" "$RELEASES/current"',
        '    log "switched back to release $old_release"',
        "  fi",
        "  local i",
        '  for (( i=0; i<${#aside[@]}; i+=2 )); do rm -f "${aside[i+1]}"; mv -T "${aside[i]}" "${aside[i+1]}"; log "restored ${aside[i+1]}"; done',
        "}",
        "release_prune() {",
        '  local cur n=0 id',
        '  cur=$(readlink "$RELEASES/current" 2>/dev/null || true)',
        "  while read -r _ id; do",
        '    [[ "$id" =~ ^[0-9a-f]{16}$ ]] || continue',
        '    if [ "$id" = "$cur" ]; then continue; fi',
        '    n=$((n + 1))',
        '    if [ "$n" -ge "$KEEP" ]; then rm -rf -- "${RELEASES:?}/$id"; log "removed old release $id"; fi',
        '  done < <(find "$RELEASES" -mindepth 1 -maxdepth 1 -type d -printf \'%T@ %f\\n\' | sort -rn)',
        "}",
    ];
}
