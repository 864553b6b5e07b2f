/** How to reach a host, and how it is named in messages. */
import { DEFAULT_HOST_WAITS, HostWaits } from "../model";

/** How to reach a host. `privateKey` is secret: it is never logged or put in an error message. */
export interface SshConnection {
    /** Address of the host. */
    readonly host: string;
    /** SSH port. */
    readonly port: number;
    /** Login user; `root`, or a user that may run `sudo -n`. */
    readonly user: string;
    /** The private key (OpenSSH or PEM text). */
    readonly privateKey: string;
    /** The pinned host public key, `ssh-ed25519 AAAA…`. */
    readonly hostKey: string;
    /**
     * How long to wait for the host and its steps (`timeouts` in the config);
     * `DEFAULT_HOST_WAITS` when absent (state written by older releases). Not
     * part of the host's identity: changing it never shows as a diff.
     */
    readonly waits?: HostWaits;
}

/** `user@host:port`, for messages. */
export function describeTarget(c: Pick<SshConnection, "user" | "host" | "port">): string {
    return `${c.user}@${c.host}:${c.port}`;
}

/** The connection's waits, each missing one (state written by an older release) at its default. */
export function waitsOf(c: Pick<SshConnection, "waits">): HostWaits {
    return { ...DEFAULT_HOST_WAITS, ...(c.waits ?? {}) };
}
