/**
 * Who holds a TCP port's listening socket: the health gate's proof that the
 * answer came from the service itself. A 200 on the health URL alone can come
 * from any process on the port (the notes' own "debug manually" uvicorn left
 * running): then the unit crash-loops on "address already in use" while the
 * gate would see a healthy service.
 */
import { quoteScript } from "./shell";

/** Exit status of {@link LISTENER_OWNER_PY}: every listener on the port belongs to the unit. */
export const LISTENER_OWNED = 0;
/** Exit status: no process was found listening on the port. */
export const LISTENER_NONE = 2;
/** Exit status: another process listens on the port (printed as `pid N (command) in CGROUP`). */
export const LISTENER_OTHER = 3;

/**
 * Finds the listening TCP sockets (IPv4 and IPv6) on a port in this network
 * namespace and the processes holding them (through `/proc/<pid>/fd`), and
 * whether each of those processes is in the unit's control group or below it,
 * by its own `/proc/<pid>/cgroup` (the unified hierarchy's `0::` line, or
 * systemd's `name=systemd` one on a legacy or hybrid host; no cgroup file
 * system is read, so it works on each layout). Exits {@link LISTENER_OWNED},
 * {@link LISTENER_NONE} or {@link LISTENER_OTHER}, printing each other
 * holder on its own line. argv: port, the unit's control group (`""` when
 * it has none: every holder is another process), and `1` when the service's
 * socket unit is active (then PID 1, which holds that socket, is not another
 * process; a process of the unit must still hold it to count as owned).
 */
export const LISTENER_OWNER_PY = [
    "import os, sys",
    "port, unit = int(sys.argv[1]), sys.argv[2].rstrip('/')",
    // PID 1 holds the listener of the service's socket unit (socket activation): it is the service's, not another process's.
    "systemd_holds = len(sys.argv) > 3 and sys.argv[3] == '1'",
    "inodes = set()",
    "for table in ('/proc/net/tcp', '/proc/net/tcp6'):",
    "    try:",
    "        with open(table) as f:",
    "            next(f)",
    "            for line in f:",
    "                fields = line.split()",
    // st 0A is LISTEN; the local address is HEX_IP:HEX_PORT.
    "                if fields[3] == '0A' and int(fields[1].rsplit(':', 1)[1], 16) == port:",
    "                    inodes.add('socket:[%s]' % fields[9])",
    "    except OSError:",
    "        pass",
    "if not inodes:",
    "    sys.exit(2)",
    "def cgroups(pid):",
    "    try:",
    "        with open('/proc/%d/cgroup' % pid) as f:",
    "            lines = [l.rstrip('\\n').split(':', 2) for l in f]",
    "    except OSError:",
    "        return []",
    // The unified hierarchy's line first: it is the one a reader knows the unit by.
    "    return [l[2] for l in lines if len(l) == 3 and l[0] == '0' and l[1] == ''] + [l[2] for l in lines if len(l) == 3 and l[1] == 'name=systemd']",
    "holders = set()",
    "for pid in filter(str.isdigit, os.listdir('/proc')):",
    "    try:",
    "        fds = os.listdir('/proc/%s/fd' % pid)",
    "    except OSError:",
    "        continue",
    "    for fd in fds:",
    "        try:",
    "            if os.readlink('/proc/%s/fd/%s' % (pid, fd)) in inodes:",
    "                holders.add(int(pid))",
    "                break",
    "        except OSError:",
    "            pass",
    "inside = lambda pid: unit != '' and any(c == unit or c.startswith(unit + '/') for c in cgroups(pid))",
    "others = sorted(p for p in holders if not inside(p) and not (systemd_holds and p == 1))",
    "own = [p for p in holders if inside(p)]",
    "for pid in others:",
    "    try:",
    "        with open('/proc/%d/cmdline' % pid, 'rb') as f:",
    "            command = ' '.join(f.read().replace(b'\\0', b' ').decode('utf-8', 'replace').split())[:160]",
    "    except OSError:",
    "        command = '?'",
    "    print('pid %d (%s) in %s' % (pid, command, (cgroups(pid) or ['?'])[0]))",
    "sys.exit(3 if others else 0 if own else 2)",
].join("\n");

/**
 * Shell lines defining `listener_check` (with `UNIT`, `HEALTH_PORT` and, with
 * socket activation, `SOCKET` set):
 * exits {@link LISTENER_OWNED} when the port's listener is the unit's own
 * process, {@link LISTENER_OTHER} (printing who) when another process holds
 * it, {@link LISTENER_NONE} when nothing is seen listening.
 */
export function listenerCheckLines(): string[] {
    return [
        "listener_check() {",
        '  local cg systemd_holds=0',
        // Empty when the unit is not running: then every listener is another process's.
        '  cg=$(systemctl show -p ControlGroup --value "$UNIT" 2>/dev/null || true)',
        // With socket activation (SOCKET set) PID 1 holds the listener for the unit while its socket unit is active.
        '  if [ -n "${SOCKET:-}" ] && systemctl is-active --quiet "$SOCKET" 2>/dev/null; then systemd_holds=1; fi',
        '  python3 -c ' + quoteScript(LISTENER_OWNER_PY) + ' "$HEALTH_PORT" "$cg" "$systemd_holds"',
        "}",
    ];
}
