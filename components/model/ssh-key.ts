/**
 * SSH public keys as the config pins them (`TYPE BASE64`, a `known_hosts`
 * line without the host name), parsed rather than pattern-matched: the
 * base64 must be canonical, the blob must name the same type as the line,
 * and its fields must have the sizes that type has. A truncated or altered
 * key is refused before any host is touched, not at the first handshake.
 */

/** The host key types the library pins. */
export const HOST_KEY_TYPES = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"] as const;

/** One of {@link HOST_KEY_TYPES}. */
export type HostKeyType = (typeof HOST_KEY_TYPES)[number];

/** The smallest RSA modulus accepted, in bits (shorter RSA keys are deprecated: NIST SP 800-131A). */
export const MIN_RSA_MODULUS_BITS = 2048;

/** The ECDSA curves: their name inside the blob and the size of an uncompressed point (0x04, X, Y). */
const ECDSA_CURVES: Readonly<Record<string, { readonly curve: string; readonly pointBytes: number }>> = {
    "ecdsa-sha2-nistp256": { curve: "nistp256", pointBytes: 65 },
    "ecdsa-sha2-nistp384": { curve: "nistp384", pointBytes: 97 },
    "ecdsa-sha2-nistp521": { curve: "nistp521", pointBytes: 133 },
};

/** Reads the length-prefixed strings (RFC 4251 `string` and `mpint`) of a key blob. */
class BlobReader {
    private offset = 0;
    constructor(private readonly blob: Buffer) {}

    /** The next string, or undefined when the blob ends before it does. */
    next(): Buffer | undefined {
        if (this.offset + 4 > this.blob.length) return undefined;
        const length = this.blob.readUInt32BE(this.offset);
        if (this.offset + 4 + length > this.blob.length) return undefined;
        const value = this.blob.subarray(this.offset + 4, this.offset + 4 + length);
        this.offset += 4 + length;
        return value;
    }

    /** Whether every byte has been read. */
    get done(): boolean {
        return this.offset === this.blob.length;
    }
}

/** The size in bits of a positive `mpint` (big-endian, maybe with a leading zero byte). */
function mpintBits(value: Buffer): number {
    let i = 0;
    while (i < value.length && value[i] === 0) i++;
    if (i === value.length) return 0;
    return (value.length - i - 1) * 8 + (32 - Math.clz32(value[i]!));
}

/** A parsed pinned host key. */
export interface ParsedHostKey {
    readonly type: HostKeyType;
    /** The decoded key blob. */
    readonly blob: Buffer;
}

/** What a host key line must look like; the base64 is checked separately. */
const HOST_KEY_LINE = /^(\S+) ([A-Za-z0-9+/]+={0,2})$/;

/**
 * Parses a pinned host key (`TYPE BASE64`). Returns the key, or why it is not
 * a whole key of a supported type: wrong form, unsupported type, base64 that
 * does not decode exactly, a blob of another type than the line names, or a
 * blob whose fields do not have that type's sizes (ed25519: 51 bytes,
 * ECDSA P-256/384/521: 104/136/172 bytes, RSA: a modulus of at least
 * {@link MIN_RSA_MODULUS_BITS} bits).
 */
export function parseHostKey(hostKey: string): ParsedHostKey | { readonly problem: string } {
    const m = HOST_KEY_LINE.exec(hostKey);
    if (!m) return { problem: "is not of the form 'TYPE BASE64'" };
    const [, type, base64] = m as unknown as [string, string, string];
    if (!(HOST_KEY_TYPES as readonly string[]).includes(type)) {
        return { problem: `has type '${type}'; supported: ${HOST_KEY_TYPES.join(", ")}` };
    }
    const blob = Buffer.from(base64, "base64");
    // Node decodes leniently: only a canonical encoding round-trips (no missing or extra character).
    if (base64.length % 4 !== 0 || blob.toString("base64") !== base64) {
        return { problem: "has base64 that does not decode exactly (a character is missing, extra or altered)" };
    }
    const reader = new BlobReader(blob);
    const named = reader.next()?.toString("latin1");
    if (named !== type) {
        return { problem: named === undefined ? `is not an SSH key blob` : `says ${type} but the key inside is ${JSON.stringify(named)}` };
    }
    const problem = keyFieldsProblem(type as HostKeyType, reader, blob.length);
    return problem === undefined ? { type: type as HostKeyType, blob } : { problem };
}

/** Why the fields after the type name do not make a key of `type`, or undefined when they do. */
function keyFieldsProblem(type: HostKeyType, reader: BlobReader, blobBytes: number): string | undefined {
    const truncated = (expected: number) => `is ${blobBytes} bytes; an ${type} key is ${expected} (truncated or altered)`;
    if (type === "ssh-ed25519") {
        const key = reader.next();
        return key?.length === 32 && reader.done ? undefined : truncated(51);
    }
    if (type === "ssh-rsa") {
        const exponent = reader.next();
        const modulus = reader.next();
        if (exponent === undefined || modulus === undefined || !reader.done || mpintBits(exponent) === 0) {
            return `is not a whole ssh-rsa key (${blobBytes} bytes; truncated or altered)`;
        }
        const bits = mpintBits(modulus);
        return bits >= MIN_RSA_MODULUS_BITS ? undefined : `is a ${bits}-bit RSA key; at least ${MIN_RSA_MODULUS_BITS} bits are required (pin the host's ed25519 key instead)`;
    }
    const { curve, pointBytes } = ECDSA_CURVES[type]!;
    const named = reader.next()?.toString("latin1");
    const point = reader.next();
    const expected = 4 + type.length + 4 + curve.length + 4 + pointBytes;
    if (named !== curve) return named === undefined ? truncated(expected) : `says ${type} but names the curve ${JSON.stringify(named)}`;
    return point?.length === pointBytes && point[0] === 4 && reader.done ? undefined : truncated(expected);
}
