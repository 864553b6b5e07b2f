/** The pinned host key: its blob, the algorithms ssh2 may negotiate for it, and the message when a host presents another. */

/** The raw key blob of a `type base64` public key line. */
export function hostKeyBlob(hostKey: string): Buffer {
    const parts = hostKey.trim().split(/\s+/);
    if (parts.length < 2) {
        throw new Error(`pinned host key is not of the form 'TYPE BASE64': ${JSON.stringify(hostKey)}`);
    }
    return Buffer.from(parts[1]!, "base64");
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
