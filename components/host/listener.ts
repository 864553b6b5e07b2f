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
 * namespace, the processes holding them (through `/proc/<pid>/fd`), and
 * whether each of those processes is in the unit's cgroup (the directory
 * given, with its children). Exits {@link LISTENER_OWNED}, {@link LISTENER_NONE}
 * or {@link LISTENER_OTHER}, printing each other holder on its own line.
 * argv: port, the unit's cgroup directory.
 */
export const LISTENER_OWNER_PY = [
    "import os, sys",
    "port, cgroup_dir = int(sys.argv[1]), sys.argv[2]",
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
    "unit = set()",
    "for root, _dirs, _files in os.walk(cgroup_dir):",
    "    try:",
    "        with open(os.path.join(root, 'cgroup.procs')) as f:",
    "            unit.update(int(p) for p in f.read().split())",
    "    except OSError:",
    "        pass",
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
    "others = sorted(holders - unit)",
    "for pid in others:",
    "    try:",
    "        with open('/proc/%d/cmdline' % pid, 'rb') as f:",
    "            command = f.read().replace(b'\\0', b' ').decode('utf-8', 'replace').strip()[:160]",
    "        with open('/proc/%d/cgroup' % pid) as f:",
    "            cgroup = f.read().strip().split('\\n')[-1].split(':', 2)[-1]",
    "    except OSError:",
    "        command, cgroup = '?', '?'",
    "    print('pid %d (%s) in %s' % (pid, command, cgroup))",
    "sys.exit(3 if others else 0 if holders else 2)",
].join("\n");

/**
 * Shell lines defining `listener_check` (with `UNIT` and `HEALTH_PORT` set):
 * exits {@link LISTENER_OWNED} when the port's listener is the unit's own
 * process, {@link LISTENER_OTHER} (printing who) when another process holds
 * it, {@link LISTENER_NONE} when nothing is seen listening.
 */
export function listenerCheckLines(): string[] {
    return [
        "listener_check() {",
        "  local cg",
        '  cg=$(systemctl show -p ControlGroup --value "$UNIT" 2>/dev/null || true)',
        // No cgroup (the unit is not running): every listener is another process's.
        '  python3 -c ' + quoteScript(LISTENER_OWNER_PY) + ' "$HEALTH_PORT" "/sys/fs/cgroup${cg:-/nonexistent-unit-cgroup}"',
        "}",
    ];
}
