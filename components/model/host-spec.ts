/** What a host is prepared with and what a purge may remove: computed by the plan, read by the host scripts. */

/** A directory the host preparation creates, with owner and mode. */
export interface DirectorySpec {
    /** The config key the path comes from (named in refusals), e.g. `paths.logs`. */
    readonly key: string;
    readonly path: string;
    readonly owner: string;
    readonly group: string;
    /** Octal mode, e.g. `0755`. */
    readonly mode: string;
}

/** The host preparation: the service user and its directories (the venv comes with each release). */
export interface PrepareSpec {
    /** The service (its state directory holds the record of what the preparation created). */
    readonly serviceName: string;
    /** Run as a user/group that already exists (not created by the library); they are then never removed. */
    readonly allowExistingUser: boolean;
    readonly user: string;
    readonly group: string;
    /** Directories to create, with owner and mode, parents first. */
    readonly directories: readonly DirectorySpec[];
}

/**
 * What `pulumi destroy` removes besides the service when purging is on: the
 * `.env` store, and of the user, group and directories only those the host's
 * record says the library created (see `createdRecordPath`).
 */
export interface PurgeSpec {
    /** The configured paths (informational: only recorded ones are removed). */
    readonly paths: readonly string[];
    /** The notes' `.env` path: removed when it is the library's root-owned link. */
    readonly envLink: string;
    /** Links into the current release (`paths.venv`, and the working directory with `app.sourceDir`): removed when they are root-owned links. */
    readonly releaseLinks?: readonly string[];
    readonly user: string;
    readonly group: string;
}

/** A root-owned symlink the activation keeps in place, e.g. the notes' `.env` path to the real file. */
export interface LinkSpec {
    readonly path: string;
    readonly target: string;
}

/**
 * How long the library waits for a host and its steps, in seconds. A host in
 * its first minute (sshd not up, cloud-init still writing `authorized_keys`,
 * unattended-upgrades holding dpkg's lock) is waited for, boundedly and
 * visibly, instead of failing the `up`.
 */
export interface HostWaits {
    /** Keep dialling SSH this long: connection refused, reset or timed out, and authentication refused (cloud-init may not have written the key yet). */
    readonly connectSec: number;
    /** Before the first change: wait this long for boot to finish (`systemctl is-system-running --wait`) and for cloud-init (`cloud-init status --wait`). */
    readonly bootSec: number;
    /** Every apt call waits this long for dpkg's and apt's locks. */
    readonly aptLockSec: number;
    /** Every remote step (prepare, build, stage, activate, read, remove) must finish within this long. */
    readonly stepSec: number;
}

/** The waits when nothing is configured (the config schema's defaults). */
export const DEFAULT_HOST_WAITS: HostWaits = { connectSec: 600, bootSec: 900, aptLockSec: 600, stepSec: 1800 };
