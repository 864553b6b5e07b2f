/**
 * SSH transport: one pooled connection per host and key for the life of the
 * provider process, the host key pinned, commands run through `sudo -n` for
 * ordinary users, and content passed on stdin (never in a command line).
 * Dialling waits for a host that is not up yet (see `./dial.ts`); every
 * command has a time limit.
 */
import { createHash } from "crypto";
import { Client, ClientChannel } from "ssh2";
import { quoteScript } from "../host/shell";
import { SshConnection, describeTarget, waitsOf } from "./connection";
import { dialHost } from "./dial";
import { reportProgress } from "./progress";

export type { SshConnection } from "./connection";
export { describeTarget, waitsOf } from "./connection";
export { hostKeyAlgorithms, hostKeyBlob, hostKeyMismatchMessage, keyTypeOfBlob } from "./host-key";

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

/** A remote command did not finish within its time limit; its channel was closed. */
export class RemoteStepTimeoutError extends Error {
    /** The step, as the caller named it. */
    readonly what: string;
    /** `user@host:port`. */
    readonly target: string;
    /** The limit that expired, in seconds. */
    readonly timeoutSec: number;
    constructor(what: string, target: string, timeoutSec: number, setting: string | undefined) {
        super(
            `${what} on ${target} did not finish within ${timeoutSec} s (${setting ?? "this step's own limit"}); its SSH channel was closed, but the command may still be running on the host: ` +
                "a detached step (prepare, build, activation: run through systemd-run) goes on there and the next `pulumi up` picks it up" +
                (setting ? `; raise ${setting} if the step needs longer.` : "."),
        );
        this.name = "RemoteStepTimeoutError";
        this.what = what;
        this.target = target;
        this.timeoutSec = timeoutSec;
    }
}

/** How one remote command runs. */
export interface StepOptions {
    /** The step, for messages (`building release …`). */
    readonly what?: string;
    /** Its time limit in seconds, for a step known to be short; default `timeouts.stepSec`. `0`: no limit. */
    readonly timeoutSec?: number;
    /**
     * Report each `[amarktai-infra] …` line the script logs on its stdout as progress while it runs
     * (what it waits for, what it builds). Only for scripts whose stdout carries nothing secret.
     */
    readonly streamLog?: boolean;
}

/** The prefix of a line a host script logs (`log` in the scripts' prelude). */
const SCRIPT_LOG_PREFIX = "[amarktai-infra] ";

/** sshd allows 10 sessions per connection by default (MaxSessions); stay below it. */
const MAX_CHANNELS_PER_CONNECTION = 8;
/**
 * A pooled connection closes after this long without a command. Long enough
 * that a host waiting for its rollout batch keeps its one connection.
 */
const IDLE_CLOSE_MS = 10 * 60_000;
/** A step still running reports so this often, so a long build shows as running, not hung. */
const STEP_PROGRESS_EVERY_MS = 30_000;

interface Pooled {
    /** The dial (with its retries), then the live connection. */
    client: Promise<Client>;
    /** Stops the dial when the pool is closed while it still waits for the host. */
    readonly dialling: AbortController;
    active: number;
    waiters: (() => void)[];
    idleTimer?: NodeJS.Timeout;
}

const pool = new Map<string, Pooled>();

function poolKey(c: SshConnection): string {
    const keyId = createHash("sha256").update(c.privateKey).update("\0").update(c.hostKey).digest("hex");
    return `${c.user}@${c.host}:${c.port}#${keyId}`;
}

/** Forgets `entry` if it is still the pool's entry for `key` (a later dial may have replaced it). */
function forget(key: string, entry: Pooled): void {
    if (pool.get(key) === entry) pool.delete(key);
}

/** A pool entry whose dial is under way; a failed dial is never cached, a closed connection is forgotten. */
function openPooled(c: SshConnection, key: string): Pooled {
    const dialling = new AbortController();
    const client = dialHost(c, dialling.signal).then(
        (live) => {
            live.on("close", () => forget(key, entry));
            return live;
        },
        (err: unknown) => {
            forget(key, entry);
            throw err;
        },
    );
    // Acquirers waiting for a channel slot see the failure later; it is not unhandled.
    client.catch(() => undefined);
    const entry: Pooled = { client, dialling, active: 0, waiters: [] };
    return entry;
}

async function acquire(c: SshConnection): Promise<{ client: Client; release: () => void }> {
    const key = poolKey(c);
    let entry = pool.get(key);
    if (!entry) {
        entry = openPooled(c, key);
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
        e.waiters.shift()?.();
        throw err;
    }
    return {
        client,
        release: () => {
            e.active--;
            e.waiters.shift()?.();
            if (e.active === 0) {
                e.idleTimer = setTimeout(() => {
                    forget(key, e);
                    client.end();
                }, IDLE_CLOSE_MS);
                e.idleTimer.unref();
            }
        },
    };
}

/** Closes every pooled connection and stops every dial still waiting for its host (tests and short-lived tools call this before exiting). */
export function closeAllConnections(): void {
    for (const [key, entry] of pool) {
        pool.delete(key);
        if (entry.idleTimer) clearTimeout(entry.idleTimer);
        entry.dialling.abort();
        entry.client.then((c) => c.end()).catch(() => undefined);
    }
}

/** The command line that runs `script` with bash as root: directly for a root login, else through `sudo -n`. */
function rootCommand(c: Pick<SshConnection, "user">, script: string): string {
    const bash = `/bin/bash -c ${quoteScript(script)}`;
    return c.user === "root" ? `LC_ALL=C ${bash}` : `LC_ALL=C sudo -n ${bash}`;
}

/**
 * Runs `script` with bash as root on the host (through `sudo -n` unless the
 * login user is root), writing `stdin` to it. The script text is visible in
 * the host's process list, so it must never carry a secret: secrets travel on
 * stdin only. It must finish within `timeoutSec` (default `timeouts.stepSec`).
 */
export async function runAsRoot(c: SshConnection, script: string, options: { stdin?: string | Buffer; what: string; timeoutSec?: number; streamLog?: boolean }): Promise<RemoteResult> {
    const result = await execRaw(c, rootCommand(c, script), options.stdin, { what: options.what, ...(options.timeoutSec !== undefined ? { timeoutSec: options.timeoutSec } : {}), ...(options.streamLog ? { streamLog: true } : {}) });
    if (result.code !== 0) {
        throw new RemoteCommandError(options.what, describeTarget(c), result);
    }
    return result;
}

/**
 * Runs a raw command line on the host and collects its output. It must finish
 * within `options.timeoutSec` (default `timeouts.stepSec`): otherwise its
 * channel is closed and it fails with a {@link RemoteStepTimeoutError}.
 */
export async function execRaw(c: SshConnection, command: string, stdin?: string | Buffer, options: StepOptions = {}): Promise<RemoteResult> {
    const target = describeTarget(c);
    const what = options.what ?? "a command";
    const limitSec = options.timeoutSec ?? waitsOf(c).stepSec;
    const setting = options.timeoutSec === undefined ? "timeouts.stepSec" : undefined;
    const { client, release } = await acquire(c);
    try {
        return await new Promise<RemoteResult>((resolve, reject) => {
            const started = Date.now();
            let channel: ClientChannel | undefined;
            let settled = false;
            const finish = (settle: () => void) => {
                if (settled) return;
                settled = true;
                clearTimeout(limit);
                clearInterval(ticker);
                settle();
            };
            // The limit covers opening the channel too: a host that stops answering must not hang `up`.
            const limit =
                limitSec > 0
                    ? setTimeout(
                          () =>
                              finish(() => {
                                  channel?.close();
                                  reject(new RemoteStepTimeoutError(what, target, limitSec, setting));
                              }),
                          limitSec * 1000,
                      )
                    : undefined;
            const ticker = setInterval(
                () => reportProgress(`${what} on ${target}: still running (${Math.round((Date.now() - started) / 1000)} s${limitSec > 0 ? ` of ${limitSec} s` : ""})`),
                STEP_PROGRESS_EVERY_MS,
            );
            try {
                client.exec(command, (err: Error | undefined, stream: ClientChannel) => {
                    if (err) {
                        finish(() => reject(new Error(`cannot start a command on ${target}: ${err.message}`)));
                        return;
                    }
                    if (settled) {
                        stream.close();
                        return;
                    }
                    channel = stream;
                    const out: Buffer[] = [];
                    const errOut: Buffer[] = [];
                    let partial = "";
                    stream.on("data", (d: Buffer) => {
                        out.push(d);
                        if (!options.streamLog) return;
                        const lines = (partial + d.toString("utf8")).split("\n");
                        partial = lines.pop() ?? "";
                        for (const line of lines) if (line.startsWith(SCRIPT_LOG_PREFIX)) reportProgress(`${what} on ${target}: ${line.slice(SCRIPT_LOG_PREFIX.length)}`);
                    });
                    stream.stderr.on("data", (d: Buffer) => errOut.push(d));
                    stream.on("close", (code: number | null | undefined, signal?: string) => {
                        const lost = code === null || code === undefined;
                        finish(() =>
                            resolve({
                                code: code ?? (signal ? 128 : 255),
                                stdout: Buffer.concat(out).toString("utf8"),
                                stderr:
                                    Buffer.concat(errOut).toString("utf8") +
                                    (lost && !signal ? "\nthe SSH connection closed before the command finished; the host finishes the step on its own: run `pulumi up` again" : ""),
                            }),
                        );
                    });
                    stream.end(stdin ?? "");
                });
            } catch (err) {
                // ssh2 throws when the connection has just gone away.
                finish(() => reject(new Error(`cannot start a command on ${target}: ${(err as Error).message}`)));
            }
        });
    } finally {
        release();
    }
}

/**
 * Runs `script` as root like {@link runAsRoot}, but without a time limit,
 * handing each stdout line to `onLine` as it arrives (for `logs -f`). The
 * script's stdin stays open until `signal` aborts; then it is closed (the
 * script ends on its end of file) and so is the channel. Resolves with the
 * exit code and stderr when the script ends, or once stopped.
 */
export async function streamAsRoot(c: SshConnection, script: string, options: { what: string; onLine: (line: string) => void; signal: AbortSignal }): Promise<{ code: number; stderr: string }> {
    const command = rootCommand(c, script);
    const target = describeTarget(c);
    const { client, release } = await acquire(c);
    try {
        return await new Promise((resolve, reject) => {
            client.exec(command, (err: Error | undefined, stream: ClientChannel) => {
                if (err) {
                    reject(new Error(`cannot start ${options.what} on ${target}: ${err.message}`));
                    return;
                }
                let partial = "";
                const errOut: Buffer[] = [];
                stream.on("data", (d: Buffer) => {
                    const lines = (partial + d.toString("utf8")).split("\n");
                    partial = lines.pop() ?? "";
                    for (const line of lines) options.onLine(line);
                });
                stream.stderr.on("data", (d: Buffer) => errOut.push(d));
                const stop = () => {
                    stream.end();
                    // A script that ignores its end of file is not waited for.
                    setTimeout(() => stream.close(), 5000).unref();
                };
                if (options.signal.aborted) stop();
                else options.signal.addEventListener("abort", stop, { once: true });
                stream.on("close", (code: number | null | undefined) => {
                    options.signal.removeEventListener("abort", stop);
                    if (partial) options.onLine(partial);
                    resolve({ code: options.signal.aborted ? 0 : (code ?? 255), stderr: Buffer.concat(errOut).toString("utf8") });
                });
            });
        });
    } finally {
        release();
    }
}
