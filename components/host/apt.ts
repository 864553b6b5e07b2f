/**
 * The one generator of apt calls in the scripts sent to a host. A fresh cloud
 * VM runs unattended-upgrades and apt's daily jobs in its first minutes, which
 * hold dpkg's lock (`/var/lib/dpkg/lock-frontend`), the package lists' lock
 * (`/var/lib/apt/lists/lock`) or the download cache's; every apt-get call
 * waits for them, boundedly (`timeouts.aptLockSec`), and says so when it has
 * to.
 *
 * apt's `-o DPkg::Lock::Timeout=N` makes apt itself wait for dpkg's lock, but
 * only for dpkg's: `apt-get update` with it still fails at once on the lists'
 * lock (`E: Could not get lock /var/lib/apt/lists/lock`; checked against apt
 * 2.6), and so does a download on the cache's. So each call is tried, and a
 * call refused for a lock is tried again until the bound; apt changes nothing
 * before it holds its locks, so trying again is safe.
 */
import { shellQuote as q, shellWords } from "./shell";

/** One apt-get call: refresh the package lists, or install packages (and what they depend on, without recommends). */
export type AptCall = { readonly op: "update" } | { readonly op: "install"; readonly packages: readonly string[] };

/** A Debian package name. */
const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;

/**
 * `apt_get ARGS...`: runs `apt-get ARGS` (output dropped, errors on stderr)
 * waiting up to `$APT_LOCK_SEC` seconds for dpkg's and apt's locks. The first
 * try does not wait, so that a held lock is noticed and logged with its
 * holder (apt names it); later tries let apt wait for dpkg's lock itself and
 * poll for the others. Fails naming `timeouts.aptLockSec` when the bound is
 * reached.
 */
const APT_GET_FUNCTION: readonly string[] = [
    "apt_get() {",
    '  local start deadline lock_wait=0 rc err line lock left who waited=""',
    "  start=$(date +%s); deadline=$(( start + APT_LOCK_SEC ))",
    "  while :; do",
    "    rc=0",
    '    err=$(DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$lock_wait" "$@" 2>&1 >/dev/null) || rc=$?',
    '    if [ "$rc" -eq 0 ]; then',
    '      if [ -n "$waited" ]; then log "apt $1: got ${who}\'s lock after $(( $(date +%s) - start ))s"; fi',
    "      return 0",
    "    fi",
    '    lock=""',
    '    while IFS= read -r line; do case "$line" in *"Could not get lock "*) lock="${line#E: }"; break ;; esac; done <<< "$err"',
    '    if [ -z "$lock" ]; then printf \'%s\\n\' "$err" >&2; return "$rc"; fi',
    '    case "$lock" in *" /var/lib/dpkg/"*) who=dpkg ;; *) who=apt ;; esac',
    "    left=$(( deadline - $(date +%s) ))",
    '    if [ "$left" -le 0 ]; then fail "apt $1: ${who}\'s lock is still held after ${APT_LOCK_SEC}s (timeouts.aptLockSec): $lock"; fi',
    '    if [ -z "$waited" ]; then log "waiting for ${who}\'s lock, up to ${left}s (timeouts.aptLockSec): $lock"; waited=1; fi',
    '    lock_wait="$left"',
    // apt waits for dpkg's lock itself (DPkg::Lock::Timeout); for the lists' and the cache's it does not.
    '    if [ "$who" != dpkg ]; then sleep 2; fi',
    "  done",
    "}",
];

/** The shell command of one call, through `apt_get`. */
function aptCallLine(call: AptCall): string {
    switch (call.op) {
        case "update":
            return "apt_get update -q";
        case "install": {
            if (call.packages.length === 0) throw new Error("an apt install needs at least one package");
            for (const p of call.packages) if (!PACKAGE_NAME.test(p)) throw new Error(`not a Debian package name: ${JSON.stringify(p)}`);
            return `apt_get install -y -q --no-install-recommends ${shellWords(call.packages)}`;
        }
    }
}

/**
 * Shell lines that run `calls` in order, each apt-get call waiting up to
 * `aptLockSec` seconds for dpkg's and apt's locks (logging what it waits for
 * and who holds it) and failing with a message naming `timeouts.aptLockSec`
 * when they are still held then. Needs the prelude's `log` and `fail`. Every
 * apt-get call of every generated script goes through here.
 */
export function aptGetLines(calls: readonly AptCall[], aptLockSec: number): string[] {
    if (!Number.isInteger(aptLockSec) || aptLockSec < 0) throw new Error(`aptLockSec must be a whole number of seconds, not ${aptLockSec}`);
    return [`APT_LOCK_SEC=${q(String(aptLockSec))}`, ...APT_GET_FUNCTION, ...calls.map(aptCallLine)];
}
