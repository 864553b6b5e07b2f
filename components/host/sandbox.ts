/**
 * The release build's sandbox. Installers run third-party code (an sdist's
 * build step, a package's setup.py), so they never run as root: each
 * installer command runs in a transient systemd unit as the unprivileged
 * build account, with the whole file system read-only except the new
 * release's `venv` directory, a private `/tmp` (the throwaway download
 * cache), no capabilities, no new privileges, no devices, and no view of
 * root's home or of other users' files. Root then takes the finished tree:
 * it refuses anything the build account did not create (a file of another
 * owner, a hard link, a set-id bit), makes it root's, and only then marks
 * the release complete. Nothing the build ran survives it: the unit's
 * processes are stopped with it.
 */
import { BUILD_ACCOUNT } from "../model";
import { shellQuote as q } from "./shell";

/** The unit properties of every sandboxed installer command (see the module comment). */
export const SANDBOX_PROPERTIES: readonly string[] = [
    `User=${BUILD_ACCOUNT}`,
    `Group=${BUILD_ACCOUNT}`,
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "PrivateIPC=yes",
    "NoNewPrivileges=yes",
    "CapabilityBoundingSet=",
    "RestrictSUIDSGID=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "ProtectProc=invisible",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "LockPersonality=yes",
    "SystemCallArchitectures=native",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "KeyringMode=private",
    "RemoveIPC=yes",
    "UMask=0022",
    "WorkingDirectory=/",
];

/**
 * Shell lines defining, for the build script (which sets `REL`, `ID`, `fail`
 * and `log`):
 * - `build_account`: creates the build account (a system user and group, no
 *   home, no login) unless it exists; an existing one must have no login shell.
 * - `sandboxed COMMAND...`: runs COMMAND as the build account in the sandbox,
 *   with `$REL/venv` its only writable path, stdin/stdout/stderr passed
 *   through, and the environment given by `SANDBOX_ENV` (an array of
 *   `NAME=value`; never a secret).
 * - `take_venv`: stops anything left of the build account, refuses a tree
 *   with a file it did not create, a hard link or a set-id bit, then makes
 *   `$REL/venv` root's and not writable by anyone else.
 */
export function sandboxLines(): string[] {
    return [
        `BUILD_ACCOUNT=${q(BUILD_ACCOUNT)}`,
        `SANDBOX_PROPERTIES=(${SANDBOX_PROPERTIES.map((p) => `-p ${q(p)}`).join(" ")})`,
        "SANDBOX_ENV=()",
        "build_account() {",
        "  local shell",
        '  if ! getent passwd "$BUILD_ACCOUNT" >/dev/null; then',
        '    getent group "$BUILD_ACCOUNT" >/dev/null || groupadd --system "$BUILD_ACCOUNT"',
        '    useradd --system --gid "$BUILD_ACCOUNT" --no-create-home --home-dir / --shell /usr/sbin/nologin --comment "amarktai-infra release builds" "$BUILD_ACCOUNT"',
        "  fi",
        '  shell=$(getent passwd "$BUILD_ACCOUNT" | cut -d: -f7)',
        '  case "$shell" in */nologin|*/false) ;; *) fail "the account $BUILD_ACCOUNT exists with the login shell $shell: release builds run as that account and need it to have none (nologin); remove or fix it";; esac',
        '  BUILD_UID=$(id -u "$BUILD_ACCOUNT")',
        '  [ "$BUILD_UID" != 0 ] || fail "the account $BUILD_ACCOUNT has uid 0: release builds never run as root"',
        "}",
        "sandboxed() {",
        '  local env_args=() e',
        '  for e in "${SANDBOX_ENV[@]}"; do env_args+=(-E "$e"); done',
        '  systemd-run --quiet --wait --pipe --collect --service-type=exec --expand-environment=no \\',
        '    --description="amarktai-infra: build release $ID (sandboxed, as $BUILD_ACCOUNT)" \\',
        '    "${SANDBOX_PROPERTIES[@]}" -p "ReadWritePaths=$REL/venv" "${env_args[@]}" -- "$@"',
        "}",
        "take_venv() {",
        "  local bad",
        // The unit stopped with its processes; anything else of the account (it has no login) is killed before the tree changes owner.
        '  pkill -KILL -u "$BUILD_UID" 2>/dev/null || true',
        '  [ -d "$REL/venv" ] && [ ! -L "$REL/venv" ] || fail "the build left no venv directory"',
        '  bad=$(find "$REL/venv" \\( ! -uid "$BUILD_UID" -o -perm /6000 -o \\( ! -type d -links +1 \\) \\) -printf \'%p\\n\' -quit)',
        '  [ -z "$bad" ] || fail "the build left $bad, which the build account did not create as a plain file (another owner, a hard link or a set-id bit): refusing the release"',
        '  chown -R -h root:root "$REL/venv"',
        '  chmod -R go-w "$REL/venv"',
        "}",
    ];
}
