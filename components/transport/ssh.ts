/**
 * SSH transport: one pooled connection per host and key for the life of the
 * provider process, the host key pinned, commands run through `sudo -n` for
 * ordinary users, and content passed on stdin (never in a command line).
 */
import { createHash } from "crypto";
import { Client, ClientChannel } from "ssh2";
import { quoteScript } from "../host/shell";

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
}

/** The result of a remote command. */
export interface RemoteResult {
    readonly code: number;
    readonly stdout: string;
    readonly stderr: string;
}

/** A remote command failed; the message carries the exit code and the tail of its output, never its stdin. */
export class RemoteCommandError extends Error {
    readonly result: RemoteResult;
    constructor(what: string, target: string, result: RemoteResult) {
        const tail = (text: string) => text.trim().split("\n").slice(-60).join("\n");
        super(
            `${what} failed on ${target} (exit ${result.code})` +
                (result.stderr.trim() ? `:\n${tail(result.stderr)}` : "") +
                (result.stdout.trim() ? `\n--- output ---\n${tail(result.stdout)}` : ""),
        );
        this.name = "RemoteCommandError";
        this.result = result;
    }
}

/** The raw key blob of a `type base64` public key line. */
export function hostKeyBlob(hostKey: string): Buffer {
    const parts = hostKey.trim().split(/\s+/);
    if (parts.length < 2) {
        throw new Error(`pinned host key is not of the form 'TYPE BASE64': ${JSON.stringify(hostKey)}`);
    }
    return Buffer.from(parts[1]!, "base64");
}

/** `user@host:port`, for messages. */
export function describeTarget(c: Pick<SshConnection, "user" | "host" | "port">): string {
    return `${c.user}@${c.host}:${c.port}`;
}

/** sshd allows 10 sessions per connection by default (MaxSessions); stay below it. */
const MAX_CHANNELS_PER_CONNECTION = 8;
/**
 * A pooled connection closes after this long without a command. Long enough
 * that a host waiting for its rollout batch keeps its one connection.
 */
const IDLE_CLOSE_MS = 10 * 60_000;

interface Pooled {
    client: Promise<Client>;
    active: number;
    waiters: (() => void)[];
    idleTimer?: NodeJS.Timeout;
}

/**
 * The host-key algorithms ssh2 may negotiate for a pinned key of `keyType`:
 * only that key's own, so a host that also has keys of other types presents
 * the pinned one (an RSA key may be signed with SHA-2 or SHA-1).
 */
export function hostKeyAlgorithms(keyType: string): string[] {
    switch (keyType) {
        case "ssh-ed25519":
        case "ecdsa-sha2-nistp256":
        case "ecdsa-sha2-nistp384":
        case "ecdsa-sha2-nistp521":
            return [keyType];
        case "ssh-rsa":
            return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
        default:
            throw new Error(`pinned host key type ${JSON.stringify(keyType)} is not supported (ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa)`);
    }
}

/** The key type named inside an SSH public key blob (its first length-prefixed string), or "unknown". */
export function keyTypeOfBlob(blob: Buffer): string {
    if (blob.length < 4) return "unknown";
    const n = blob.readUInt32BE(0);
    return n > 0 && n < 64 && blob.length >= 4 + n ? blob.subarray(4, 4 + n).toString("latin1") : "unknown";
}

/** Why a presented host key is not the pinned one, naming both types. */
export function hostKeyMismatchMessage(target: string, presented: Buffer, pinned: string): string {
    const pinnedType = pinned.trim().split(/\s+/)[0] ?? "unknown";
    const presentedType = keyTypeOfBlob(presented);
    const what =
        presentedType === pinnedType
            ? `the host presented a different ${presentedType} key than the pinned one`
            : `the host presented a ${presentedType} key, the pinned key is ${pinnedType}`;
    return `host key verification failed for ${target}: ${what}. Nothing was run. If the host was rebuilt, update the pinned hostKey in the stack config (ssh-keyscan -t ${pinnedType === "ssh-rsa" ? "rsa" : pinnedType.startsWith("ecdsa") ? "ecdsa" : "ed25519"} HOST).`;
}

const pool = new Map<string, Pooled>();

function poolKey(c: SshConnection): string {
    const keyId = createHash("sha256").update(c.privateKey).update("\0").update(c.hostKey).digest("hex");
    return `${c.user}@${c.host}:${c.port}#${keyId}`;
}

function connect(c: SshConnection, key: string): Promise<Client> {
    return new Promise((resolve, reject) => {
        const client = new Client();
        const expected = hostKeyBlob(c.hostKey);
        let mismatch: Buffer | undefined;
        client
            .on("ready", () => resolve(client))
            .on("error", (err: Error) => {
                pool.delete(key);
                if (mismatch) {
                    reject(new Error(hostKeyMismatchMessage(describeTarget(c), mismatch, c.hostKey)));
                } else {
                    reject(new Error(`cannot connect to ${describeTarget(c)}: ${err.message}`));
                }
            })
            .on("close", () => pool.delete(key))
            .connect({
                host: c.host,
                port: c.port,
                username: c.user,
                privateKey: c.privateKey,
                readyTimeout: 120_000,
                keepaliveInterval: 15_000,
                keepaliveCountMax: 8,
                // Negotiate only the pinned key's own algorithm(s), so a correctly pinned ECDSA or RSA key is what the host presents.
                algorithms: { serverHostKey: hostKeyAlgorithms(c.hostKey.trim().split(/\s+/)[0] ?? "") as never },
                hostVerifier: (presented: Buffer) => {
                    const ok = presented.equals(expected);
                    mismatch = ok ? undefined : presented;
                    return ok;
                },
            });
    });
}

async function acquire(c: SshConnection): Promise<{ client: Client; release: () => void }> {
    const key = poolKey(c);
    let entry = pool.get(key);
    if (!entry) {
        entry = { client: connect(c, key), active: 0, waiters: [] };
        pool.set(key, entry);
    }
    const e = entry;
    if (e.idleTimer) {
        clearTimeout(e.idleTimer);
        delete e.idleTimer;
    }
    while (e.active >= MAX_CHANNELS_PER_CONNECTION) {
        await new Promise<void>((r) => e.waiters.push(r));
    }
    e.active++;
    let client: Client;
    try {
        client = await e.client;
    } catch (err) {
        e.active--;
        throw err;
    }
    return {
        client,
        release: () => {
            e.active--;
            e.waiters.shift()?.();
            if (e.active === 0) {
                e.idleTimer = setTimeout(() => {
                    pool.delete(key);
                    client.end();
                }, IDLE_CLOSE_MS);
                e.idleTimer.unref();
            }
        },
    };
}

/** Closes every pooled connection (tests and short-lived tools call this before exiting). */
export function closeAllConnections(): void {
    for (const [key, entry] of pool) {
        pool.delete(key);
        if (entry.idleTimer) clearTimeout(entry.idleTimer);
        entry.client.then((c) => c.end()).catch(() => undefined);
    }
}

/**
 * Runs `script` with bash as root on the host (through `sudo -n` unless the
 * login user is root), writing `stdin` to it. The script text is visible in
 * the host's process list, so it must never carry a secret: secrets travel on
 * stdin only.
 */
export async function runAsRoot(c: SshConnection, script: string, options: { stdin?: string | Buffer; what: string }): Promise<RemoteResult> {
    const bash = `/bin/bash -c ${quoteScript(script)}`;
    const command = c.user === "root" ? `LC_ALL=C ${bash}` : `LC_ALL=C sudo -n ${bash}`;
    const result = await execRaw(c, command, options.stdin);
    if (result.code !== 0) {
        throw new RemoteCommandError(options.what, describeTarget(c), result);
    }
    return result;
}

/** Runs a raw command line on the host and collects its output. */
export async function execRaw(c: SshConnection, command: string, stdin?: string | Buffer): Promise<RemoteResult> {
    const { client, release } = await acquire(c);
    try {
        return await new Promise<RemoteResult>((resolve, reject) => {
            client.exec(command, (err: Error | undefined, stream: ClientChannel) => {
                if (err) {
                    reject(new Error(`cannot start a command on ${describeTarget(c)}: ${err.message}`));
                    return;
                }
                const out: Buffer[] = [];
                const errOut: Buffer[] = [];
                stream.on("data", (d: Buffer) => out.push(d));
                stream.stderr.on("data", (d: Buffer) => errOut.push(d));
                stream.on("close", (code: number | null | undefined, signal?: string) => {
                    const lost = code === null || code === undefined;
                    resolve({
                        code: code ?? (signal ? 128 : 255),
                        stdout: Buffer.concat(out).toString("utf8"),
                        stderr:
                            Buffer.concat(errOut).toString("utf8") +
                            (lost && !signal ? "\nthe SSH connection closed before the command finished; the host finishes the step on its own: run `pulumi up` again" : ""),
                    });
                });
                stream.end(stdin ?? "");
            });
        });
    } finally {
        release();
    }
}
