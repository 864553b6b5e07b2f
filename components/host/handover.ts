/**
 * Handing a running service's port to its socket unit without refusing a
 * connection: while uvicorn (binding the port itself) gives way to a
 * `<service>.socket` unit with `ReusePort=yes`, root holds a duplicate of
 * uvicorn's listening socket, turns it into a member of the port's
 * SO_REUSEPORT group, and lets the kernel move its queued connections to the
 * socket unit's listener when the duplicate is closed
 * (`net.ipv4.tcp_migrate_req`). Without it, every connection between
 * uvicorn closing its listener and systemd binding the port is refused, and
 * those still waiting in uvicorn's queue when it closes are reset.
 */
import { quoteScript } from "./shell";

/** How long `handover_hold` waits for another service's handover on this host to end (the lock), in seconds. */
const LOCK_WAIT_SEC = 300;
/** How long `handover_hold` waits for the helper's first line, in seconds (a Python start on a slow host). */
const ANSWER_WAIT_SEC = 30;
/** How long `handover_release` waits for the helper to let the socket go before stopping it, in seconds. */
const EXIT_WAIT_SEC = 30;
/** The lock that serializes handovers on a host: `tcp_migrate_req` is one setting for the whole network namespace. */
const LOCK_PATH = "/run/amarktai-infra-handover.lock";

/**
 * The port handover helper's Python source (3.11+, standard library only),
 * run as root: `python3 -c "$PORT_HANDOVER_PY" BIND_HOST PORT CGROUP`.
 *
 * It finds the socket listening on BIND_HOST:PORT (its inode in
 * `/proc/net/tcp` or `tcp6`, as `LISTENER_OWNER_PY` does) and a
 * process of the control group CGROUP (or a group below it, read from the
 * groups' `cgroup.procs`; no other process is considered) holding it,
 * duplicates that process's descriptor with `pidfd_getfd` (Linux ≥ 5.6; it
 * needs root's CAP_SYS_PTRACE over the process, which a Yama
 * `ptrace_scope` of 3 or another security module may still refuse), checks
 * that the duplicate is that very listening stream socket, bound with
 * SO_REUSEADDR as uvicorn's is (its connections share the port with the
 * flags the listener had when they were accepted: without SO_REUSEADDR
 * they would keep any other socket from binding it), and then:
 *
 * - `fchown(dup, 0, 0)`: a socket may only join another's SO_REUSEPORT group
 *   when both have the same owner, and the listener still has the service
 *   account's (its `sk_uid`, fixed when it was created); changing the
 *   socket's owner updates it, so the socket unit's root listener can bind
 *   beside it;
 * - sets SO_REUSEPORT on it (the live listener: uvicorn keeps accepting on it);
 * - sets `net.ipv4.tcp_migrate_req` to 1 (Linux ≥ 5.14), so that when the
 *   last descriptor of the listener closes, the connections waiting in its
 *   queue move to another member of the group instead of being reset.
 *
 * It then prints `held PID` (the process it took the socket from) and waits
 * for its stdin to close (the caller is done, or gone): then it closes its
 * duplicate (after uvicorn closed its own, the kernel moves the queue to
 * the socket unit's listener), waits up to a second for the handshakes
 * still in progress on the port to complete (they move too, while the
 * setting is on), puts the setting back and exits 0. SIGTERM, SIGINT and
 * SIGHUP end the wait the same way.
 *
 * When anything is missing or refused before that, it prints
 * `unavailable REASON` (one line), undoes what it had done, waits for its
 * stdin to close, and exits 0: the caller goes on without a handover. It
 * never exits before its stdin closes, so a caller reading its answer
 * through a bash coprocess never finds the coprocess already gone.
 */
export const PORT_HANDOVER_PY = String.raw`"""amarktai-infra port handover: holds a service's listening socket so that
a socket unit with ReusePort=yes can take over its port, and lets the kernel
move the connections waiting on it to the socket unit's listener.

Usage: port-handover BIND_HOST PORT CGROUP
Prints "held PID" or "unavailable REASON", waits for stdin to close, exits 0.
"""
import ctypes
import errno
import os
import signal
import socket
import stat
import struct
import sys
import time

MIGRATE_REQ = "/proc/sys/net/ipv4/tcp_migrate_req"
# pidfd_getfd has the generic number on these (not on alpha, ia64 or mips).
PIDFD_GETFD = {"x86_64": 438, "aarch64": 438, "i686": 438, "i386": 438, "armv7l": 438, "riscv64": 438, "ppc64le": 438, "s390x": 438}
# How long the setting stays on after the close for handshakes in progress (they move when they complete).
SETTLE_SECONDS = 1.0


class Unavailable(Exception):
    pass


class Stop(Exception):
    """A signal asked the helper to end: it cleans up as at the end of its input."""


def one_line(text):
    return "".join(c if c.isprintable() else "?" for c in str(text))[:300]


def say(line):
    try:
        sys.stdout.write(one_line(line) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        pass


def answer(line):
    """Prints line, then waits for stdin to close (the caller is done, or gone); a signal ends the wait too."""
    try:
        say(line)
        while os.read(0, 4096):
            pass
    except (Stop, OSError):
        pass


def address(host):
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return family, socket.inet_pton(family, host)
        except OSError:
            pass
    raise Unavailable(f"{host} is not an IP address")


def table_address(text):
    # /proc/net/tcp* print an address as 32-bit words, each in the host's byte order.
    raw = bytes.fromhex(text)
    return b"".join(struct.pack("=I", int.from_bytes(raw[i:i + 4], "big")) for i in range(0, len(raw), 4))


def where(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listening_inodes(family, addr, port):
    table = "/proc/net/tcp" if family == socket.AF_INET else "/proc/net/tcp6"
    inodes = set()
    try:
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                local, hex_port = fields[1].rsplit(":", 1)
                # st 0A is LISTEN.
                if fields[3] == "0A" and int(hex_port, 16) == port and table_address(local) == addr:
                    inodes.add(int(fields[9]))
    except OSError as e:
        raise Unavailable(f"cannot read {table}: {e.strerror}")
    return inodes


def cgroup_dir(cgroup):
    parts = [p for p in cgroup.split("/") if p]
    if not cgroup.startswith("/") or not parts or any(p in (".", "..") for p in parts):
        raise Unavailable(f"the service's control group {cgroup!r} is not a unit's (is the service running?)")
    with open("/proc/self/mounts") as f:
        mounts = [line.split() for line in f]
    # The unified hierarchy, else systemd's named one (a legacy host): where the unit's group is found by its path.
    mount = next((m[1] for m in mounts if len(m) > 3 and m[2] == "cgroup2"), None)
    mount = mount or next((m[1] for m in mounts if len(m) > 3 and m[2] == "cgroup" and "name=systemd" in m[3].split(",")), None)
    if mount is None:
        raise Unavailable("no cgroup2 or name=systemd hierarchy is mounted")
    path = os.path.join(mount, *parts)
    if not os.path.isdir(path):
        raise Unavailable(f"control group {cgroup} does not exist (is the service running?)")
    return path


def cgroup_pids(path):
    pids = []
    for d, _, _ in os.walk(path):
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
    return sorted(set(pids))


def socket_fds(pids, inodes):
    """{inode: [(pid, fd), ...]} for each of inodes that a process of pids holds."""
    held = {}
    links = {f"socket:[{i}]": i for i in inodes}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                inode = links.get(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                continue
            if inode is not None:
                held.setdefault(inode, []).append((pid, int(fd)))
    return held


def describe(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            command = " ".join(f.read().replace(b"\0", b" ").decode("utf-8", "replace").split())[:80]
    except OSError:
        command = "?"
    group = "?"
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = [line.rstrip("\n").split(":", 2) for line in f]
        group = next((l[2] for l in lines if len(l) == 3 and l[0] == "0" and l[1] == ""), None) or next((l[2] for l in lines if len(l) == 3 and l[1] == "name=systemd"), "?")
    except OSError:
        pass
    return f"pid {pid} ({command}) in {group}"


def getfd_number():
    number = PIDFD_GETFD.get(os.uname().machine)
    if number is None:
        raise Unavailable(f"no pidfd_getfd system call number is known for {os.uname().machine}")
    return number


def duplicate(pid, fd, inode):
    """A descriptor of pid's fd, checked to be socket inode."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as e:
        raise Unavailable(f"pidfd_open({pid}) failed: {e.strerror}")
    try:
        dup = libc.syscall(ctypes.c_long(getfd_number()), ctypes.c_long(pidfd), ctypes.c_long(fd), ctypes.c_long(0))
        if dup < 0:
            code = ctypes.get_errno()
            hint = {errno.EPERM: " (root needs CAP_SYS_PTRACE over the process; a Yama ptrace_scope of 3 or a security module refuses it)", errno.ENOSYS: " (Linux 5.6 or later has it)"}.get(code, "")
            raise Unavailable(f"pidfd_getfd on pid {pid} failed: {os.strerror(code)}{hint}")
    finally:
        os.close(pidfd)
    st = os.fstat(dup)
    if not stat.S_ISSOCK(st.st_mode) or st.st_ino != inode:
        os.close(dup)
        raise Unavailable(f"pid {pid} no longer holds the listening socket")
    return dup, st


def check_listener(sock, family, addr, port):
    if sock.family != family or sock.type != socket.SOCK_STREAM or sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) != 1:
        raise Unavailable("the socket found is not a listening stream socket")
    name = sock.getsockname()
    if socket.inet_pton(family, name[0]) != addr or name[1] != port:
        raise Unavailable(f"the socket found listens on {where(name[0], name[1])}")
    # Its accepted and TIME_WAIT connections share the port's bind bucket with what it had then: without
    # SO_REUSEADDR on both sides, any of them keeps another socket from binding the port, whatever SO_REUSEPORT says.
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 1:
        raise Unavailable(f"the listener on {where(name[0], name[1])} was bound without SO_REUSEADDR: its connections would keep the socket unit from binding the port")


def read_setting():
    try:
        with open(MIGRATE_REQ) as f:
            return f.read().strip()
    except FileNotFoundError:
        raise Unavailable("this kernel has no net.ipv4.tcp_migrate_req (Linux 5.14 or later has it)")
    except OSError as e:
        raise Unavailable(f"cannot read {MIGRATE_REQ}: {e.strerror}")


def write_setting(value):
    with open(MIGRATE_REQ, "w") as f:
        f.write(value + "\n")


def handshakes_on(port):
    """Whether a connection to port is still in its handshake (SYN_RECV, st 03)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "03" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except OSError:
            pass
    return False


class Hold:
    """The duplicated listener and what was changed on it, to undo or to finish."""

    def __init__(self):
        self.sock = None
        self.owner = None
        self.reuseport = None
        self.setting = None
        self.port = 0

    def take(self, host, port_text, cgroup):
        try:
            port = int(port_text)
        except ValueError:
            port = 0
        if not 0 < port < 65536:
            raise Unavailable(f"{port_text!r} is not a port")
        family, addr = address(host)
        setting = read_setting()
        inodes = listening_inodes(family, addr, port)
        if not inodes:
            raise Unavailable(f"nothing listens on {where(host, port)}")
        held = socket_fds(cgroup_pids(cgroup_dir(cgroup)), inodes)
        if not held:
            others = sorted({pid for fds in socket_fds(sorted(int(p) for p in os.listdir("/proc") if p.isdigit()), inodes).values() for pid, _ in fds})
            who = "; ".join(describe(pid) for pid in others[:3]) or "a process this helper cannot see"
            raise Unavailable(f"{where(host, port)} is held by {who}, outside {cgroup}")
        if len(held) > 1:
            raise Unavailable(f"{cgroup} holds {len(held)} sockets listening on {where(host, port)}")
        inode, fds = next(iter(held.items()))
        # Any holder will do (uvicorn's workers share their parent's): the first that can be reached.
        for pid, fd in fds:
            try:
                dup, st = duplicate(pid, fd, inode)
                break
            except Unavailable:
                if (pid, fd) == fds[-1]:
                    raise
        self.sock = socket.socket(fileno=dup)
        check_listener(self.sock, family, addr, port)
        self.port = port
        self.owner = (st.st_uid, st.st_gid)
        os.fchown(dup, 0, 0)
        self.reuseport = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if setting != "1":
            write_setting("1")
            self.setting = setting
        return pid

    def undo(self):
        """Puts back what take changed, and closes the duplicate."""
        if self.sock is None:
            return
        try:
            if self.reuseport is not None:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, self.reuseport)
            if self.owner is not None:
                os.fchown(self.sock.fileno(), *self.owner)
        finally:
            self.sock.close()
            self.restore_setting()

    def let_go(self):
        """Closes the duplicate (its queue moves to another listener of the group once it was the last one) and puts the setting back."""
        # A second signal must not cut the setting's restore short.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        self.sock.close()
        try:
            deadline = time.monotonic() + SETTLE_SECONDS
            while handshakes_on(self.port) and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            self.restore_setting()

    def restore_setting(self):
        if self.setting is not None:
            write_setting(self.setting)
            self.setting = None


def stop(signum, frame):
    raise Stop()


def main(argv):
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        # An ignored signal stays ignored (a caller that must outlive a dropped connection ignores SIGHUP).
        if signal.getsignal(sig) != signal.SIG_IGN:
            signal.signal(sig, stop)
    if len(argv) != 3:
        answer("unavailable usage: port-handover BIND_HOST PORT CGROUP")
        return 0
    hold = Hold()
    try:
        try:
            pid = hold.take(*argv)
        except BaseException:
            hold.undo()
            raise
    except Unavailable as e:
        answer(f"unavailable {e}")
        return 0
    except Stop:
        return 0
    except Exception as e:
        answer(f"unavailable {type(e).__name__}: {e}")
        return 0
    try:
        answer(f"held {pid}")
    finally:
        hold.let_go()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
`;

/**
 * Shell lines defining the port handover for an activation script that runs
 * with `set -euo pipefail` (see {@link PORT_HANDOVER_PY} for what the helper
 * does and why it needs root, Linux ≥ 5.14 and CAP_SYS_PTRACE):
 *
 * - `handover_hold BIND_HOST PORT CGROUP` (CGROUP as `systemctl show -p
 *   ControlGroup --value UNIT` prints it) takes the host-wide lock
 *   `/run/amarktai-infra-handover.lock` (on a descriptor kept while holding,
 *   waiting up to 300 s for another service's handover: the kernel setting
 *   is one per host, so two handovers must not save and restore it over each
 *   other), starts the helper as a coprocess and reads its first line within
 *   30 s. It returns 0 with `HANDOVER_PID` set (the process whose socket is
 *   held) when it holds the listener: from then on a root SO_REUSEPORT
 *   socket (the socket unit's) can bind the port beside it. Otherwise it
 *   returns 1 with `HANDOVER_WHY` set to the reason, the helper gone and the
 *   lock released (also when a handover is already held: one at a time).
 * - `handover_release` closes the helper's input, waits up to 30 s for it to
 *   let the socket go and put the setting back (then stops it with SIGTERM,
 *   and SIGKILL if it must), and releases the lock. It does nothing when
 *   nothing is held, and always returns 0.
 *
 * Release only once the old service has closed its listener (`systemctl
 * stop` returned): a listener closed after the release, with the setting put
 * back, resets the connections waiting on it.
 *
 * The helper's source reaches python3 as an argument of `python3 -c` from a
 * shell variable (`PORT_HANDOVER_PY`); it carries no secret. A coprocess
 * already running (the safe file helper's) is left alone; bash's warning
 * about a second coprocess is kept out of the log.
 */
export function portHandoverFunctions(): string[] {
    return [
        `PORT_HANDOVER_PY=${quoteScript(PORT_HANDOVER_PY)}`,
        "handover_hold() {",
        '  local err line="" rc=0',
        '  HANDOVER_PID="" HANDOVER_WHY=""',
        '  if [ -n "${HANDOVER_LOCK_FD:-}" ]; then HANDOVER_WHY="a port handover is already held"; return 1; fi',
        `  if ! exec {HANDOVER_LOCK_FD}>${LOCK_PATH}; then HANDOVER_LOCK_FD=""; HANDOVER_WHY="cannot open ${LOCK_PATH}"; return 1; fi`,
        `  if ! flock -w ${LOCK_WAIT_SEC} "$HANDOVER_LOCK_FD"; then handover_release; HANDOVER_WHY="another port handover still held ${LOCK_PATH} after ${LOCK_WAIT_SEC} s"; return 1; fi`,
        // The helper keeps the lock descriptor (inherited): the lock outlives this shell until the setting is put back.
        "  exec {err}>&2",
        // bash warns on stderr when another coprocess (the safe file helper's) still runs: only that warning goes to /dev/null.
        '  { coproc HANDOVER_COPROC { exec python3 -c "$PORT_HANDOVER_PY" "$1" "$2" "$3" 2>&"$err" {err}>&-; }; } 2>/dev/null',
        "  exec {err}>&-",
        // The helper never exits before its input closes: its output stays readable until then.
        `  IFS= read -r -t ${ANSWER_WAIT_SEC} line <&"\${HANDOVER_COPROC[0]:-}" || rc=$?`,
        `  if [ "$rc" -gt 128 ]; then line="unavailable the port helper gave no answer within ${ANSWER_WAIT_SEC} s"; elif [ "$rc" -ne 0 ]; then line="unavailable the port helper stopped without an answer"; fi`,
        '  case "$line" in',
        '    "held "*) HANDOVER_PID=${line#held }; return 0 ;;',
        '    "unavailable "*) HANDOVER_WHY=${line#unavailable } ;;',
        '    *) HANDOVER_WHY="the port helper answered: $line" ;;',
        "  esac",
        "  handover_release",
        "  return 1",
        "}",
        "handover_release() {",
        '  local line rc=0 pid=${HANDOVER_COPROC_PID:-} to=${HANDOVER_COPROC[1]:-} from=${HANDOVER_COPROC[0]:-}',
        '  HANDOVER_PID=""',
        '  if [ -n "$to" ]; then exec {to}>&-; fi',
        '  if [ -n "$from" ]; then',
        // Its output ends when it exits: read to the end, within the bound.
        `    while :; do IFS= read -r -t ${EXIT_WAIT_SEC} line <&"$from" 2>/dev/null || { rc=$?; break; }; done`,
        '    if [ "$rc" -gt 128 ] && [ -n "$pid" ]; then',
        `      echo "[amarktai-infra] the port helper did not let the socket go within ${EXIT_WAIT_SEC} s; stopping it" >&2`,
        '      kill -TERM "$pid" 2>/dev/null || true',
        '      rc=0',
        `      while :; do IFS= read -r -t ${EXIT_WAIT_SEC} line <&"$from" 2>/dev/null || { rc=$?; break; }; done`,
        '      if [ "$rc" -gt 128 ]; then kill -KILL "$pid" 2>/dev/null || true; fi',
        "    fi",
        '    exec {from}<&-',
        "  fi",
        // Forgotten here, not only when bash reaps it: bash stops tracking it if another coprocess starts meanwhile.
        "  unset HANDOVER_COPROC HANDOVER_COPROC_PID",
        '  if [ -n "$pid" ]; then wait "$pid" 2>/dev/null || true; fi',
        '  if [ -n "${HANDOVER_LOCK_FD:-}" ]; then',
        // Unlocks the open file description itself: a process that inherited the descriptor does not keep the lock.
        '    flock -u "$HANDOVER_LOCK_FD" 2>/dev/null || true',
        '    exec {HANDOVER_LOCK_FD}>&-',
        '    HANDOVER_LOCK_FD=""',
        "  fi",
        "}",
    ];
}
