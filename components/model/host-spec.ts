/** What a host is prepared with and what a purge may remove: computed by the plan, read by the host scripts. */

/** A directory the host preparation creates, with owner and mode. */
export interface DirectorySpec {
    readonly path: string;
    readonly owner: string;
    readonly group: string;
    /** Octal mode, e.g. `0755`. */
    readonly mode: string;
}

/** The host preparation: the service user, its directories, the venv and its requirements. */
export interface PrepareSpec {
    readonly user: string;
    readonly group: string;
    /** Directories to create, with owner and mode, parents first. */
    readonly directories: readonly DirectorySpec[];
    /** The virtualenv directory. */
    readonly venv: string;
    /** pip requirement specifiers for the venv. */
    readonly requirements: readonly string[];
}

/** What `pulumi destroy` removes besides the service when purging is on. */
export interface PurgeSpec {
    readonly paths: readonly string[];
    readonly user: string;
    readonly group: string;
}
