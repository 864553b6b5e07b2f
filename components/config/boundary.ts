/**
 * The privilege boundary, as config rules: names, accounts and paths that
 * would let a deploy take over the host (replace a system unit, re-own a
 * system directory, run as root or as somebody else's account) and sizes
 * that cannot run. Pure data and predicates; the schema and the loader use
 * them so a bad value is refused before any host is touched. The host-side
 * half (a unit or user that exists on the host and was not created by the
 * library) is checked by the host scripts against the library's record.
 */

import { ENV_STORE_ROOT, INSTALLER_CACHE_ROOT, STATE_ROOT } from "../model";

/**
 * Unit names (without `.service`) that belong to the operating system or to
 * common distribution packages: refused as `serviceName` at preview. Entries
 * ending in `-` are prefixes (`systemd-` covers every `systemd-*` unit). The
 * host check refuses any other existing unit the library did not write.
 */
export const RESERVED_UNIT_NAMES: readonly string[] = [
    // Remote access and login.
    "ssh", "sshd", "ssh-", "sshd-", "openssh-", "getty", "getty-", "serial-getty", "console-getty", "container-getty", "autovt", "login", "user", "user-", "sudo",
    // systemd itself and early boot.
    "systemd-", "init", "dbus", "dbus-", "dbus-broker", "polkit", "polkitd", "udev", "kmod", "kmod-", "rescue", "emergency", "halt", "reboot", "poweroff", "shutdown",
    "default", "multi-user", "graphical", "basic", "sysinit", "network", "network-", "networking", "networkd-dispatcher", "NetworkManager", "wpa_supplicant", "ifup-", "resolvconf", "rc-local",
    // Scheduling, time, logging, packages.
    "cron", "crond", "anacron", "atd", "rsyslog", "syslog", "syslog-ng", "auditd", "chrony", "chronyd", "ntp", "ntpd", "ntpsec", "apt-", "apt", "dpkg", "dpkg-", "unattended-upgrades", "packagekit", "snapd", "snapd-",
    // Security, cloud and virtualisation agents.
    "apparmor", "ufw", "nftables", "iptables", "netfilter-persistent", "firewalld", "fail2ban", "cloud-", "cloud-init", "cloud-config", "cloud-final", "multipathd", "lvm2-", "mdadm", "iscsid", "open-iscsi",
    "qemu-guest-agent", "open-vm-tools", "walinuxagent", "google-guest-agent", "amazon-ssm-agent", "lxd", "lxcfs", "docker", "containerd", "podman",
    // Services this one commonly sits beside.
    "mongod", "mongodb", "redis", "redis-server", "nginx", "apache2", "postgresql", "mysql", "mariadb",
];

/** Why `name` is reserved, or undefined when it is not: the matching entry of {@link RESERVED_UNIT_NAMES}. */
export function reservedUnitName(name: string): string | undefined {
    const lower = name.toLowerCase();
    return RESERVED_UNIT_NAMES.find((r) => (r.endsWith("-") ? lower.startsWith(r.toLowerCase()) : lower === r.toLowerCase()));
}

/**
 * Accounts (users or groups) of the operating system and of cloud images:
 * never the service's user or group unless `allowExistingUser` is set.
 * `root` is refused even then: a service never runs as uid 0 or gid 0.
 * Entries ending in `-` or `_` are prefixes.
 */
export const SYSTEM_ACCOUNTS: readonly string[] = [
    "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy", "www-data", "backup", "list", "irc", "gnats", "nobody", "nogroup",
    "_", "systemd-", "messagebus", "syslog", "sshd", "polkitd", "tss", "uuidd", "tcpdump", "landscape", "pollinate", "fwupd-refresh", "usbmux", "dnsmasq", "lxd", "dhcpcd",
    "ubuntu", "debian", "admin", "ec2-user", "centos",
    "adm", "wheel", "sudo", "disk", "shadow", "staff", "users", "kmem", "tty", "utmp", "video", "audio", "plugdev", "netdev", "docker", "input", "kvm", "render", "dialout", "cdrom", "floppy", "tape", "operator", "src", "voice", "fax", "sasl", "crontab", "ssh", "ssl-cert",
];

/** The account names refused unconditionally. */
export const ROOT_ACCOUNTS: readonly string[] = ["root"];

/** The matching entry of {@link SYSTEM_ACCOUNTS} for `name`, or undefined. */
export function systemAccount(name: string): string | undefined {
    return SYSTEM_ACCOUNTS.find((a) => (a.endsWith("-") || a.endsWith("_") ? name.startsWith(a) : name === a));
}

/**
 * The bases a service path may live under, each at least two levels deep
 * (`/srv/<name>`, `/opt/<name>`, `/var/<name>` and below).
 */
export const SAFE_PATH_BASES: readonly string[] = ["/var", "/srv", "/opt"];

/**
 * System directories a service path may never be, nor (for those marked
 * `/*`) be inside: shared, world-writable, or owned by the operating system
 * or the library's own root-only state.
 */
export const SYSTEM_DIRECTORIES: readonly string[] = [
    "/", "/etc/*", "/usr/*", "/bin/*", "/sbin/*", "/lib/*", "/lib32/*", "/lib64/*", "/libx32/*", "/boot/*", "/proc/*", "/sys/*", "/dev/*", "/run/*", "/tmp/*", "/home/*", "/root/*", "/mnt/*", "/media/*", "/snap/*", "/lost+found/*",
    "/var", "/var/lib", "/var/log", "/var/cache", "/var/spool", "/var/mail", "/var/backups", "/var/opt", "/var/local", "/var/www", "/var/snap",
    "/var/tmp/*", "/var/run/*", "/var/lock/*", "/var/crash/*", "/var/lib/systemd/*", "/var/lib/dpkg/*", "/var/lib/apt/*", "/var/log/journal/*",
    "/srv", "/opt",
];

/** True when `child` is `parent` or inside it (both absolute, normalized). */
export function isWithin(child: string, parent: string): boolean {
    if (parent === "/") return true;
    return child === parent || child.startsWith(`${parent}/`);
}

/** Normalizes an absolute path: no trailing slash, no `//`, no `.` segments. */
export function normalizePath(p: string): string {
    const parts = p.split("/").filter((s) => s !== "" && s !== ".");
    return `/${parts.join("/")}`;
}

/**
 * The library's own root-only directories on a host, with what each holds:
 * never a service path, nor anything inside one, whatever the base.
 */
export const LIBRARY_DIRECTORIES: Readonly<Record<string, string>> = {
    [ENV_STORE_ROOT]: "the library's root-only store of every service's .env: the service could replace its own secrets and environment",
    [STATE_ROOT]: "the library's root-only state (staged files, backups, the records of what it created and who owns each service)",
    [INSTALLER_CACHE_ROOT]: "the installers' root-only download cache (releases built by earlier versions install from it), so a service that could write there could put its code into a release",
};

/**
 * Why `path` is not a safe place for the service's files, or undefined when it is.
 * Safe: under one of {@link SAFE_PATH_BASES}, at least two levels deep, not
 * one of (nor, where marked, inside one of) {@link SYSTEM_DIRECTORIES}, and
 * neither one of nor inside {@link LIBRARY_DIRECTORIES}.
 */
export function unsafePathReason(path: string): string | undefined {
    const p = normalizePath(path);
    for (const [dir, holds] of Object.entries(LIBRARY_DIRECTORIES)) {
        if (isWithin(p, dir)) return `${p === dir ? `it is ${dir}` : `it is inside ${dir}`}, ${holds}`;
    }
    for (const entry of SYSTEM_DIRECTORIES) {
        const dir = entry.endsWith("/*") ? entry.slice(0, -2) : entry;
        const hit = entry.endsWith("/*") ? isWithin(p, dir) : p === dir;
        if (hit) {
            return p === dir ? `${dir} is a system directory` : `it is inside ${dir}, a system directory`;
        }
    }
    const depth = p.split("/").length - 1;
    if (!SAFE_PATH_BASES.some((b) => isWithin(p, b)) || depth < 2) {
        return `it is not under ${SAFE_PATH_BASES.map((b) => `${b}/<name>`).join(", ")}`;
    }
    return undefined;
}

/**
 * Sizes that cannot run, refused up front. The kernel refuses an `execve`
 * whose single argument or environment string exceeds MAX_ARG_STRLEN
 * (131072 bytes), and whose whole argument list plus environment exceeds
 * ARG_MAX (a quarter of the stack limit, 2 MiB by default); the library
 * keeps well below both, so a value that fits here always runs.
 */
export const LIMITS = {
    /** One environment entry, `NAME=value`, in bytes (UTF-8). */
    envEntryBytes: 32 * 1024,
    /** Every `.env` and `Environment=` entry together, in bytes. */
    envTotalBytes: 64 * 1024,
    /** The service's command line (`ExecStart=`), in bytes. */
    commandLineBytes: 8 * 1024,
} as const;

/** The UTF-8 size of `NAME=value`. */
export function envEntryBytes(name: string, value: string): number {
    return Buffer.byteLength(`${name}=${value}`, "utf8");
}

/**
 * Floors of the limits the config writes, with why a lower value is refused:
 * journald's limits apply to the whole host journal (sshd's and sudo's
 * records included), not only the service's, and systemd ignores a
 * `MemoryMax=0` with nothing more than a log line.
 */
export const LIMIT_FLOORS = {
    /** `SystemMaxUse=`, in bytes. */
    journalMaxUse: {
        bytes: 16 * 1024 ** 2,
        why: "journald deletes archived journal files until the whole host journal fits in it, so less would delete nearly all of it, sshd's and sudo's login records included",
    },
    /** `SystemKeepFree=`, in bytes. */
    journalKeepFree: {
        bytes: 16 * 1024 ** 2,
        why: "journald may fill the file system until only this much is free, so less would let the journal fill the disk until sshd, apt and the service cannot write",
    },
    /** `MaxRetentionSec=`, in seconds (0 turns time-based deletion off and stays allowed). */
    journalRetention: {
        seconds: 3600,
        why: "journald deletes every entry older than this from the whole host journal, sshd's and sudo's login records included",
    },
    /** `MemoryMax=` and `MemoryHigh=`, in bytes (`infinity` stays allowed). */
    serviceMemory: {
        bytes: 32 * 1024 ** 2,
        why: "Python and uvicorn need more to start, so the service would be killed or throttled in a loop; 0 is not even a limit to systemd, which ignores the line",
    },
} as const;

/**
 * `PYTHON*` variables that only tune output, hashing, warnings, checks or
 * memory debugging, and neither add a place code is loaded from nor run
 * code: allowed in the service's environment. (`PYTHONSAFEPATH` and
 * `PYTHONNOUSERSITE` only take entries off `sys.path`; `PYTHONWARNINGS`
 * can import a warning category, but only from the `sys.path` the app
 * already has.) Every other `PYTHON*` is refused unless listed in
 * `allowInterpreterEnv`.
 */
export const HARMLESS_PYTHON_ENV: readonly string[] = [
    "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONCOERCECLOCALE", "PYTHONHASHSEED", "PYTHONINTMAXSTRDIGITS",
    "PYTHONOPTIMIZE", "PYTHONWARNINGS", "PYTHONWARNDEFAULTENCODING", "PYTHONDEVMODE", "PYTHONFAULTHANDLER", "PYTHONTRACEMALLOC", "PYTHONASYNCIODEBUG",
    "PYTHONMALLOC", "PYTHONMALLOCSTATS", "PYTHONNODEBUGRANGES", "PYTHONPROFILEIMPORTTIME", "PYTHONVERBOSE", "PYTHONDEBUG",
    "PYTHONSAFEPATH", "PYTHONNOUSERSITE", "PYTHON_COLORS", "PYTHON_CPU_COUNT", "PYTHON_GIL",
];

/**
 * Environment variables that change where the service's code comes from or
 * how it is started, by exact name (entries ending in `_` or `*` are
 * prefixes), with why: refused in `env`, `secretEnv` and
 * `overrides.*.environment` unless listed in `allowInterpreterEnv`. They
 * would undo "the service cannot change its own code": each can point the
 * interpreter, the loader or uvicorn at files the service can write.
 */
export const INTERPRETER_ENV: Readonly<Record<string, string>> = {
    "PYTHON*": "Python reads it to decide where code is loaded from or what runs at start (PYTHONPATH, PYTHONHOME, PYTHONSTARTUP, PYTHONUSERBASE, PYTHONPYCACHEPREFIX, …)",
    "LD_": "the dynamic loader reads it to load libraries into every process of the service (LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT, …)",
    PATH: "it decides which programs the service and every command it runs start; systemd sets a fixed one",
    GCONV_PATH: "glibc loads character-set modules (shared libraries) from it",
    GLIBC_TUNABLES: "the dynamic loader reads it before any code runs",
    OPENSSL_CONF: "an OpenSSL configuration can load engines and providers (shared libraries)",
    OPENSSL_MODULES: "OpenSSL loads providers (shared libraries) from it",
    OPENSSL_ENGINES: "OpenSSL loads engines (shared libraries) from it",
    BASH_ENV: "every bash script the service runs sources the file it names first",
    UVICORN_: "uvicorn reads UVICORN_* as its command-line options (app directory, env file, log config, loop and protocol classes), changing the command the library renders",
    WEB_CONCURRENCY: "uvicorn reads it as --workers; set overrides.<name>.workers instead",
};

/**
 * Why `name` may not be set in the service's environment without
 * `allowInterpreterEnv` (the matching reason of {@link INTERPRETER_ENV}),
 * or undefined when it may.
 */
export function interpreterEnvReason(name: string): string | undefined {
    if (name.startsWith("PYTHON") && HARMLESS_PYTHON_ENV.includes(name)) return undefined;
    for (const [entry, why] of Object.entries(INTERPRETER_ENV)) {
        const prefix = entry.endsWith("*") ? entry.slice(0, -1) : entry.endsWith("_") ? entry : undefined;
        if (prefix !== undefined ? name.startsWith(prefix) : name === entry) return why;
    }
    return undefined;
}
