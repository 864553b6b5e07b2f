/**
 * The release build's sandbox. Installers run third-party code (an sdist's
 * build step, a package's setup.py), so they never run as root: each
 * installer command runs in a transient systemd unit as a throwaway build
 * account (`amarktai-build-<release id>`, created for one build and deleted
 * after it, so two builds, of two services say, never share an identity), with the whole file system read-only except the new
 * release's `venv` directory, a private `/tmp` (the throwaway download
 * cache), no capabilities, no new privileges, no devices, and no view of
 * root's home or of other users' files, and no connection to this host's
 * own services (loopback: the app, its database) or to link-local addresses
 * (a cloud's metadata service and its credentials), except the local DNS
 * stub and a package index configured on such an address. Root then takes the finished tree:
 * it refuses anything the build account did not create (a file of another
 * owner, a hard link, a set-id bit), makes it root's, and only then marks
 * the release complete. Nothing the build ran survives it: the unit's
 * processes are stopped with it.
 */
import { BUILD_ACCOUNT, sha256 } from "../model";
import { shellQuote as q } from "./shell";

/** What a build is: its id (a release's or a resolution's) in its releases directory. */
export type BuildIdentity = { readonly releasesDir: string; readonly id: string };

/**
 * The build account of one build: a system account that exists only while
 * it runs. Named by a hash of the releases directory and the id, so two
 * services building the same id at once (one app deployed twice, or two
 * services with the same requirements) never share an account, and a killed
 * build's account is found again, and replaced, by the next build.
 */
export function buildAccountName(build: BuildIdentity): string {
    return `${BUILD_ACCOUNT}-${sha256(`${build.releasesDir}\n${build.id}`).slice(0, 12)}`;
}

/** The unit properties of every sandboxed installer command besides its user (see the module comment). */
export const SANDBOX_PROPERTIES: readonly string[] = [
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
    // The prefixes of systemd's localhost, link-local and multicast (systemd-run takes no symbolic names here).
    "IPAddressDeny=127.0.0.0/8 ::1/128 169.254.0.0/16 fe80::/64 224.0.0.0/4 ff00::/8",
    "KeyringMode=private",
    "RemoveIPC=yes",
    "UMask=0022",
    "WorkingDirectory=/",
];

/** systemd-resolved's stub listeners: name resolution through them stays possible in the sandbox. */
const DNS_STUBS = ["127.0.0.53", "127.0.0.54"];

/**
 * The addresses the sandbox may still reach although {@link SANDBOX_PROPERTIES}
 * deny loopback and link-local: the DNS stubs, and the host of each package
 * index URL given as such an address (`localhost`, `127.x`, `::1`, `169.254.x`,
 * `fe80::…`), so a mirror on the host itself keeps working. An index named by
 * a DNS name that resolves to such an address is not allowed (give its address).
 */
export function sandboxAllowedAddresses(indexUrls: readonly string[]): string[] {
    const allowed = new Set(DNS_STUBS);
    for (const url of indexUrls) {
        let host: string;
        try {
            host = new URL(url).hostname.replace(/^\[|\]$/g, "").toLowerCase();
        } catch {
            continue;
        }
        if (host === "localhost") {
            allowed.add("127.0.0.1");
            allowed.add("::1");
        } else if (/^(127|169\.254)\.\d{1,3}\.\d{1,3}(\.\d{1,3})?$/.test(host) || host === "::1" || /^fe80:/.test(host)) {
            allowed.add(host);
        }
    }
    return [...allowed];
}

/**
 * Shell lines defining, for the build script of release `releaseId` (which
 * sets `REL`, `ID`, `fail` and `log`):
 * - `build_account`: creates the build account of release `$ID` (a system
 *   user and group, no home, no login), replacing one a killed build left.
 * - `drop_build_account`: stops every process of it and deletes it (the
 *   build's exit trap calls it, whatever the outcome).
 * - `sandboxed COMMAND...`: runs COMMAND as the build account in the sandbox,
 *   with `$REL/venv` its only writable path, stdin/stdout/stderr passed
 *   through, and the environment given by `SANDBOX_ENV` (an array of
 *   `NAME=value`; never a secret).
 * - `take_venv`: stops anything left of the build account, refuses a tree
 *   with a file it did not create, a hard link or a set-id bit, then makes
 *   `$REL/venv` root's and not writable by anyone else.
 */
export function sandboxLines(build: BuildIdentity, allowedAddresses: readonly string[] = DNS_STUBS): string[] {
    const properties = [...SANDBOX_PROPERTIES, `IPAddressAllow=${allowedAddresses.join(" ")}`];
    return [
        `BUILD_ACCOUNT=${q(buildAccountName(build))}`,
        'BUILD_UID=""',
        `SANDBOX_PROPERTIES=(${properties.map((p) => `-p ${q(p)}`).join(" ")})`,
        "SANDBOX_ENV=()",
        "drop_build_account() {",
        '  local uid',
        '  uid=$(id -u "$BUILD_ACCOUNT" 2>/dev/null) || uid=""',
        '  if [ -n "$uid" ] && [ "$uid" != 0 ]; then pkill -KILL -u "$uid" 2>/dev/null || true; userdel "$BUILD_ACCOUNT" 2>/dev/null || true; fi',
        '  if getent group "$BUILD_ACCOUNT" >/dev/null; then groupdel "$BUILD_ACCOUNT" 2>/dev/null || true; fi',
        "}",
        "build_account() {",
        // A build killed before its exit trap ran may have left its account: never reuse it, replace it.
        "  drop_build_account",
        '  useradd --system --user-group --no-create-home --home-dir / --shell /usr/sbin/nologin --comment "amarktai-infra build of release $ID" "$BUILD_ACCOUNT" || fail "cannot create the build account $BUILD_ACCOUNT"',
        '  BUILD_UID=$(id -u "$BUILD_ACCOUNT")',
        '  [ "$BUILD_UID" != 0 ] || fail "the build account $BUILD_ACCOUNT has uid 0: release builds never run as root"',
        "}",
        "sandboxed() {",
        '  local env_args=() e',
        '  for e in "${SANDBOX_ENV[@]}"; do env_args+=(-E "$e"); done',
        '  systemd-run --quiet --wait --pipe --collect --service-type=exec --expand-environment=no \\',
        '    --description="amarktai-infra: ${SANDBOX_WHAT:-build release $ID} (sandboxed, as $BUILD_ACCOUNT)" \\',
        '    -p "User=$BUILD_ACCOUNT" -p "Group=$BUILD_ACCOUNT" "${SANDBOX_PROPERTIES[@]}" -p "ReadWritePaths=$REL/venv" "${env_args[@]}" -- "$@"',
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
