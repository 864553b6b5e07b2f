/** How hosts are named and identified. */
import { sha256 } from "./hash";

/** The name a host goes by in output: its `name`, else its address. Mutable: never part of a resource's identity. */
export function hostName(host: { readonly name?: string | undefined; readonly address: string }): string {
    return host.name ?? host.address;
}

/**
 * A short, stable fingerprint of a pinned host public key (`TYPE BASE64`):
 * the first 12 hex digits of the SHA-256 of its base64 blob. A machine is
 * who its host key says it is, so this (with the service name) is what
 * resource names are made of; address, port, login and the host's `name`
 * can change without touching the resource's identity.
 */
export function hostKeyFingerprint(hostKey: string): string {
    const blob = hostKey.trim().split(/\s+/)[1] ?? hostKey.trim();
    return sha256(blob).slice(0, 12);
}

/** The version of the state the library's resources write; older state is migrated by the providers. */
export const STATE_SCHEMA_VERSION = 2;
