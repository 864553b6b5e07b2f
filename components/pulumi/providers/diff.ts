/** How the providers compare old state with new inputs. */
import type * as pulumi from "@pulumi/pulumi";
import { STATE_SCHEMA_VERSION } from "../../model";
import type { SshConnection } from "../../transport";

/** The provider methods every resource of the library implements. */
export type Provider = Required<Pick<pulumi.dynamic.ResourceProvider, "check" | "diff" | "create" | "update" | "delete" | "read">>;

/** A JSON text with sorted object keys, for comparing plain values. */
export function stableJson(value: unknown): string {
    return JSON.stringify(value, (_key, v: unknown) =>
        v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
    );
}

/** How a connection reaches and logs in to its machine, without the private key. */
function login(c: SshConnection | undefined): unknown {
    return c ? { host: c.host, port: c.port, user: c.user, hostKey: c.hostKey } : undefined;
}

/** Whether `key` differs between old state and new inputs (`connection` by its login only: rotating the private key alone never counts). */
function differs(olds: Record<string, unknown>, news: Record<string, unknown>, key: string): boolean {
    return key === "connection"
        ? stableJson(login(olds[key] as SshConnection)) !== stableJson(login(news[key] as SshConnection))
        : stableJson(olds[key]) !== stableJson(news[key]);
}

/**
 * Whether a refresh recorded drift in `props` (the `drift` property a provider's
 * `read` sets: a non-empty object or text). Recorded drift is a change the next
 * `up` must make on the host, whatever the inputs say.
 */
export function hasDrift(props: Record<string, unknown>): boolean {
    const drift = props["drift"];
    return typeof drift === "string" ? drift !== "" : typeof drift === "object" && drift !== null && Object.keys(drift).length > 0;
}

/**
 * What a provider's `read` returns: the refreshed state without `drift`, or,
 * when `drift` is non-empty, the state and inputs with it, so that the next
 * preview shows it as a property `up` makes go away. `stateOnly` names the
 * outputs that are not inputs.
 */
export function readResult(id: string, refreshed: object, drift: unknown, stateOnly: readonly string[]): pulumi.dynamic.ReadResult {
    const { drift: _old, ...props } = refreshed as Record<string, unknown>;
    if (!hasDrift({ drift })) return { id, props };
    const inputs = Object.fromEntries(Object.entries(props).filter(([key]) => !stateOnly.includes(key)));
    return { id, props: { ...props, drift }, inputs: { ...inputs, drift } };
}

/** Whether state was written by an older release of the library (it is migrated by an update). */
export function isOlderState(olds: Record<string, unknown>): boolean {
    return olds["schemaVersion"] !== STATE_SCHEMA_VERSION;
}

/**
 * Compares old outputs with new inputs. A machine is identified by its
 * pinned host key, which is part of the resource's name: a changed address,
 * port or login is an in-place update (see {@link hostWorkNeeded}), never a
 * replacement. Keys in `replaceOn` (e.g. the service name: another unit on
 * the host) force a replacement, deleting first since old and new would
 * share paths. State written by an older release is always an update, which
 * migrates it.
 */
export function diffProps(olds: Record<string, unknown>, news: Record<string, unknown>, compare: readonly string[], replaceOn: readonly string[] = []): pulumi.dynamic.DiffResult {
    const changed = compare.filter((k) => differs(olds, news, k));
    const replaces = replaceOn.filter((k) => differs(olds, news, k));
    return { changes: changed.length > 0 || replaces.length > 0 || isOlderState(olds) || hasDrift(olds), replaces, deleteBeforeReplace: replaces.length > 0 };
}

/**
 * Whether an update must work on the host: a refresh recorded drift, or
 * something besides the connection changed. Changing only the address, port
 * or login user (or migrating older state) records the new state and touches
 * nothing on the host.
 */
export function hostWorkNeeded(olds: Record<string, unknown>, news: Record<string, unknown>, compare: readonly string[]): boolean {
    return hasDrift(olds) || compare.some((k) => k !== "connection" && differs(olds, news, k));
}
