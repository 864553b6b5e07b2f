/**
 * The files a service owns on a host, as plain data: where each goes, with
 * which mode and owner, and what kind of file it is (which decides what a
 * change to it triggers, see `triggers.ts`).
 */
import { sha256 } from "./hash";

/** Where the library keeps its own state on a host (staged copies, backups). Root-only. */
export const STATE_ROOT = "/var/lib/amarktai-infra";

/**
 * The prefix of the throwaway accounts release builds run as (see
 * `host/sandbox.ts`): `amarktai-build-<hash of the releases directory and build id>`, a system account without
 * home or login that exists only during its build; never the service's, never root.
 */
export const BUILD_ACCOUNT = "amarktai-build";

/** The first line of every file this library writes; nothing without it is ever removed. */
export const MANAGED_MARKER = "Managed by amarktai-infra: do not edit here, change the stack config and run `pulumi up`.";

/** What kind of file a managed file is; {@link EFFECT_TRIGGERS} says what a change to each kind requires. */
export type FileEffect =
    /** A unit file or drop-in. */
    | "systemd"
    /** Read by the service at start (.env, app code). */
    | "restart"
    /** journald configuration. */
    | "journald";

/** Every {@link FileEffect}. */
export const FILE_EFFECTS: readonly FileEffect[] = ["systemd", "restart", "journald"];

/** A file owned by the library on a host. */
export interface ManagedFile {
    /** Absolute path on the host. */
    readonly path: string;
    /** Octal mode, e.g. `0644`. */
    readonly mode: string;
    readonly owner: string;
    readonly group: string;
    readonly effect: FileEffect;
}

/** The library's state directory for one service on a host. */
export function serviceStateDir(serviceName: string): string {
    return `${STATE_ROOT}/${serviceName}`;
}

/**
 * Where the real `.env` of each service lives: root-owned directories
 * outside everything the service can write, so the service can read its
 * environment but never replace it (the notes' `.env` path is a root-owned
 * link to it).
 */
export const ENV_STORE_ROOT = "/etc/amarktai-infra";

/**
 * The installers' download cache on a host (uv's and the pinned wheels'),
 * root-only: every release build runs as root and installs from it.
 */
export const INSTALLER_CACHE_ROOT = "/var/cache/amarktai-infra";

/** The real `.env` of one service: `/etc/amarktai-infra/<service>/env`. */
export function envStorePath(serviceName: string): string {
    return `${ENV_STORE_ROOT}/${serviceName}/env`;
}

/**
 * The record of what the library created on a host for one service (the
 * user, the group, directories), one `kind value` per line. Purging removes
 * only what it lists; it survives a destroy without purge.
 */
export function createdRecordPath(serviceName: string): string {
    return `${serviceStateDir(serviceName)}/created`;
}

/** The staging directory of one service on a host. */
export function stagingDir(serviceName: string): string {
    return `${serviceStateDir(serviceName)}/staged`;
}

/**
 * The record of who owns a service on a host: one line `OWNER GENERATION`
 * (the owning stack's resource and its activation count). A resource's
 * delete removes nothing when the record names another owner or a newer
 * generation, so a stale resource can never remove what a newer one wrote.
 */
export function ownerRecordPath(serviceName: string): string {
    return `${serviceStateDir(serviceName)}/owner`;
}

/** The service's audit trail on a host: one JSON line per activation (see `host/audit.ts`). */
export function auditLogPath(serviceName: string): string {
    return `${serviceStateDir(serviceName)}/audit.log`;
}

/** Where an activation keeps the previous files until the new ones are healthy. */
export function backupDir(serviceName: string): string {
    return `${serviceStateDir(serviceName)}/backup`;
}

/** Longest id kept readable; longer paths get a hash id (file names are limited to 255 bytes). */
const MAX_READABLE_ID = 200;

/**
 * The name of a managed file's staged copy and backup. Injective: `_` is
 * written `_u` and `/` is written `__`, so every `_` in an id starts a
 * two-character token and two paths never share an id (`/a__b.py` gives
 * `a_u_ub.py`, `/a/b.py` gives `a__b.py`). Paths without `_` keep the ids of
 * release 0.1.0. Paths whose readable id would be too long for a file name
 * use `%` + their SHA-256, a character no readable id contains.
 */
export function fileIdForPath(path: string): string {
    const readable = path.replace(/^\//, "").replace(/_/g, "_u").replace(/\//g, "__");
    return readable.length <= MAX_READABLE_ID ? readable : `%${sha256(path)}`;
}
