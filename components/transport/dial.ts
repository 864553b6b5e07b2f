/**
 * Dialling a host: one SSH handshake with the pinned host key, and the loop
 * around it that waits, boundedly and visibly, for a host in its first minute
 * (sshd not up yet, cloud-init not done writing `authorized_keys`) within
 * `timeouts.connectSec`. A host key mismatch is never retried.
 */
import { Client } from "ssh2";
import { SshConnection, describeTarget, waitsOf } from "./connection";
import { hostKeyAlgorithms, hostKeyBlob, hostKeyMismatchMessage } from "./host-key";
import { reportProgress } from "./progress";

/** The handshake timeout of a single dial (`connectSec: 0`), and the most any one attempt gets. */
export const MAX_HANDSHAKE_MS = 120_000;
/**
 * The least an attempt gets, even near the end of the window: an SSH
 * handshake with a guest under software emulation takes seconds.
 */
export const MIN_HANDSHAKE_MS = 10_000;
/** The first pause between attempts; it doubles up to {@link BACKOFF_CAP_MS}. */
export const BACKOFF_FIRST_MS = 1_000;
/** The longest pause between attempts (before jitter). */
export const BACKOFF_CAP_MS = 12_000;
/**
 * While one attempt waits for an answer, it reports this often: a booting
 * host's SYN may go unanswered, or a NAT forward may hold the connection
 * open without a banner, for a minute or more before the attempt fails.
 */
export const DIAL_PROGRESS_EVERY_MS = 15_000;

/** Why one attempt failed. */
export type DialFailureKind =
    /** Refused, reset, timed out, unreachable: the host or its sshd is not up yet. */
    | "network"
    /** A temporary DNS failure. */
    | "dns"
    /** No handshake in time, or the connection closed during it. */
    | "handshake"
    /** The host refused the key: cloud-init may not have written `authorized_keys` yet. */
    | "auth"
    /** The host presented another key than the pinned one: never retried. */
    | "host-key"
    /** Anything else (an unknown host name, a key that cannot be parsed): not retried. */
    | "fatal";

/** One failed attempt: whether another may succeed, a short reason for progress lines, and the underlying message. */
export interface DialFailure {
    readonly kind: DialFailureKind;
    readonly retryable: boolean;
    readonly reason: string;
    /** The library's own message (e.g. `connect ECONNREFUSED 10.0.0.5:22`); never holds the private key. */
    readonly detail: string;
}

/** Socket error codes of a host (or its network path) that is not up yet, with the words used in messages. */
const RETRYABLE_CODES: Readonly<Record<string, string>> = {
    ECONNREFUSED: "connection refused",
    ECONNRESET: "connection reset",
    ECONNABORTED: "connection aborted",
    EPIPE: "connection reset",
    ETIMEDOUT: "connection timed out",
    EHOSTUNREACH: "host unreachable",
    EHOSTDOWN: "host down",
    ENETUNREACH: "network unreachable",
    ENETDOWN: "network down",
};

/** Classifies an error ssh2 reported for one attempt that waited up to `handshakeMs` for the handshake. */
export function classifyDialError(err: Error & { code?: unknown; level?: unknown }, handshakeMs: number): DialFailure {
    const detail = err.message;
    const code = typeof err.code === "string" ? err.code : "";
    const network = RETRYABLE_CODES[code];
    if (network) return { kind: "network", retryable: true, reason: network, detail };
    if (code === "EAI_AGAIN") return { kind: "dns", retryable: true, reason: "DNS lookup failed temporarily", detail };
    if (err.level === "client-timeout" && /waiting for handshake/i.test(detail)) {
        return { kind: "handshake", retryable: true, reason: `no SSH handshake within ${Math.round(handshakeMs / 1000)} s`, detail };
    }
    if (/connection lost before handshake/i.test(detail)) {
        return { kind: "handshake", retryable: true, reason: "the connection closed during the handshake", detail };
    }
    if (err.level === "client-authentication" && /all configured authentication methods failed/i.test(detail)) {
        return { kind: "auth", retryable: true, reason: "authentication refused", detail };
    }
    return { kind: "fatal", retryable: false, reason: detail, detail };
}

/** The pause after `failedAttempts` failed attempts: 1 s doubling to the cap, ±20 % jitter so hosts dialled together spread out. */
export function backoffMs(failedAttempts: number, random: () => number = Math.random): number {
    const base = Math.min(BACKOFF_CAP_MS, BACKOFF_FIRST_MS * 2 ** Math.max(0, failedAttempts - 1));
    return Math.round(base * (0.8 + 0.4 * random()));
}

/** The handshake timeout of an attempt with `leftMs` of the window left: what is left, within [MIN, MAX]. */
export function handshakeTimeoutMs(leftMs: number): number {
    return Math.min(MAX_HANDSHAKE_MS, Math.max(MIN_HANDSHAKE_MS, leftMs));
}

/** What to check when a host cannot be reached, by the kind of the last failure. */
function connectHint(c: SshConnection, kind: DialFailureKind): string {
    switch (kind) {
        case "auth":
            return ` The host refused the key for ${c.user}: check that ${c.user}'s ~/.ssh/authorized_keys on the host holds the public half of the configured private key (sshPrivateKey, or the host's privateKey); on a fresh cloud VM cloud-init writes it during the first boot.`;
        case "dns":
            return ` Check that the host name resolves from this machine.`;
        case "network":
        case "handshake":
            return ` Check the address and port (hosts[].address, hosts[].port), that the host is running, and that its firewall or security group lets this machine reach port ${c.port}; raise timeouts.connectSec if the host needs longer to boot.`;
        case "host-key":
        case "fatal":
            return "";
    }
}

/** `reason (detail)`, or the reason alone when they say the same. */
function reasonWithDetail(f: DialFailure): string {
    return f.detail && f.detail !== f.reason ? `${f.reason} (${f.detail})` : f.reason;
}

const seconds = (ms: number) => Math.round(ms / 1000);

/** One attempt's outcome. */
type Attempt = { readonly client: Client } | { readonly failure: DialFailure };

/** The settings of every attempt at one host, computed (and checked) once. */
interface DialSettings {
    readonly expected: Buffer;
    readonly algorithms: string[];
}

/** One handshake attempt, waiting up to `handshakeMs`; a failed attempt's client is destroyed. */
function attemptOnce(c: SshConnection, settings: DialSettings, handshakeMs: number, signal: AbortSignal): Promise<Attempt> {
    return new Promise((resolve) => {
        const client = new Client();
        let mismatch: Buffer | undefined;
        let settled = false;
        const settle = (outcome: Attempt) => {
            if (settled) return;
            settled = true;
            signal.removeEventListener("abort", onAbort);
            if ("failure" in outcome) client.destroy();
            resolve(outcome);
        };
        const onAbort = () => settle({ failure: { kind: "fatal", retryable: false, reason: "the connection was closed while dialling", detail: "" } });
        signal.addEventListener("abort", onAbort, { once: true });
        // A presented key that is not the pinned one decides the outcome, whatever ssh2 reports after refusing it.
        const fail = (otherwise: DialFailure) =>
            settle({ failure: mismatch ? { kind: "host-key", retryable: false, reason: hostKeyMismatchMessage(describeTarget(c), mismatch, c.hostKey), detail: "" } : otherwise });
        client
            .on("ready", () => settle({ client }))
            .on("error", (err: Error) => fail(classifyDialError(err, handshakeMs)))
            // ssh2 closes without an error when the peer hangs up after its banner (sshd still starting).
            .on("close", () => fail({ kind: "handshake", retryable: true, reason: "the connection closed during the handshake", detail: "" }));
        if (signal.aborted) {
            onAbort();
            return;
        }
        try {
            client.connect({
                host: c.host,
                port: c.port,
                username: c.user,
                privateKey: c.privateKey,
                readyTimeout: handshakeMs,
                keepaliveInterval: 15_000,
                keepaliveCountMax: 8,
                // Negotiate only the pinned key's own algorithm(s), so a correctly pinned ECDSA or RSA key is what the host presents.
                algorithms: { serverHostKey: settings.algorithms as never },
                hostVerifier: (presented: Buffer) => {
                    const ok = presented.equals(settings.expected);
                    mismatch = ok ? undefined : presented;
                    return ok;
                },
            });
        } catch (err) {
            // ssh2 checks its options synchronously (e.g. a private key it cannot parse); its message never holds the key.
            settle({ failure: { kind: "fatal", retryable: false, reason: (err as Error).message, detail: "" } });
        }
    });
}

/** Waits `ms`, or until `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
        const done = () => {
            clearTimeout(timer);
            signal.removeEventListener("abort", done);
            resolve();
        };
        const timer = setTimeout(done, signal.aborted ? 0 : ms);
        signal.addEventListener("abort", done, { once: true });
    });
}

/**
 * Opens an authenticated SSH connection to `c`, retrying with backoff within
 * `timeouts.connectSec` while the host is not up or refuses the key, and
 * reporting each wait through the progress reporter. Fails at once on a host
 * key mismatch or an error no retry can fix; aborting `signal` stops it.
 * `progressEveryMs`: how often a slow attempt reports (tests shorten it).
 */
export async function dialHost(c: SshConnection, signal: AbortSignal, progressEveryMs: number = DIAL_PROGRESS_EVERY_MS): Promise<Client> {
    const settings: DialSettings = {
        expected: hostKeyBlob(c.hostKey),
        algorithms: hostKeyAlgorithms(c.hostKey.trim().split(/\s+/)[0] ?? ""),
    };
    const target = describeTarget(c);
    const connectSec = waitsOf(c).connectSec;
    const windowMs = connectSec * 1000;
    const started = Date.now();
    let reportedWait = false;
    const reportWait = (attempt: number, why: string) => {
        reportedWait = true;
        reportProgress(`waiting for SSH on ${target}: ${why} (attempt ${attempt}, ${seconds(Date.now() - started)} s of ${connectSec} s)`);
    };
    const attempts = (n: number) => (n === 1 ? "1 attempt" : `${n} attempts`);
    for (let attempt = 1; ; attempt++) {
        const handshakeMs = windowMs === 0 ? MAX_HANDSHAKE_MS : handshakeTimeoutMs(windowMs - (Date.now() - started));
        // `connectSec: 0` dials once, silently, as before waits existed.
        const ticker = windowMs > 0 ? setInterval(() => reportWait(attempt, "no answer yet"), progressEveryMs) : undefined;
        const outcome = await attemptOnce(c, settings, handshakeMs, signal).finally(() => clearInterval(ticker));
        const elapsedMs = Date.now() - started;
        if ("client" in outcome) {
            // Replaces the last "waiting" line where the display shows the latest message.
            if (reportedWait) reportProgress(`SSH on ${target} answered after ${attempts(attempt)} (${seconds(elapsedMs)} s)`);
            return outcome.client;
        }
        const failure = outcome.failure;
        if (failure.kind === "host-key") throw new Error(failure.reason);
        if (!failure.retryable) throw new Error(`cannot connect to ${target}: ${reasonWithDetail(failure)}.${connectHint(c, failure.kind)}`);
        const leftMs = windowMs - elapsedMs;
        if (leftMs <= 0 || signal.aborted) {
            throw new Error(`cannot connect to ${target} after ${attempts(attempt)} in ${seconds(elapsedMs)} s (timeouts.connectSec: ${connectSec}): ${reasonWithDetail(failure)}.${connectHint(c, failure.kind)}`);
        }
        reportWait(attempt, failure.reason);
        // The last attempt starts when the window ends, so a host that comes up just in time is still reached.
        await pause(Math.min(backoffMs(attempt), leftMs), signal);
    }
}
