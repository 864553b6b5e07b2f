/** How the providers compare old state with new inputs. */
import type * as pulumi from "@pulumi/pulumi";
import type { SshConnection } from "../../transport";

/** The provider methods every resource of the library implements. */
export type Provider = Required<Pick<pulumi.dynamic.ResourceProvider, "check" | "diff" | "create" | "update" | "delete">>;

/** A JSON text with sorted object keys, for comparing plain values. */
export function stableJson(value: unknown): string {
    return JSON.stringify(value, (_key, v: unknown) =>
        v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
    );
}

/** Which machine a connection reaches: a different one means a replacement. */
function machine(c: SshConnection | undefined): unknown {
    return c ? { host: c.host, port: c.port } : undefined;
}

/** How a connection logs in, without its key: a change re-runs the operation on the same machine. */
function login(c: SshConnection | undefined): unknown {
    return c ? { host: c.host, port: c.port, user: c.user, hostKey: c.hostKey } : undefined;
}

/**
 * Compares old outputs with new inputs. `connection` counts as changed when
 * the login changes (user, pinned host key) and as a replacement only when
 * the machine changes (address, port); the private key alone never counts
 * (rotating it must not touch the host). Other keys in `replaceOn` force a
 * replacement. Replacements delete first: old and new would share paths on
 * the host.
 */
export function diffProps(olds: Record<string, unknown>, news: Record<string, unknown>, compare: readonly string[], replaceOn: readonly string[] = []): pulumi.dynamic.DiffResult {
    const differs = (k: string, forReplace: boolean) =>
        k === "connection"
            ? stableJson((forReplace ? machine : login)(olds[k] as SshConnection)) !== stableJson((forReplace ? machine : login)(news[k] as SshConnection))
            : stableJson(olds[k]) !== stableJson(news[k]);
    const changed = compare.filter((k) => differs(k, false));
    const replaces = replaceOn.filter((k) => differs(k, true));
    return { changes: changed.length > 0 || replaces.length > 0, replaces, deleteBeforeReplace: replaces.length > 0 };
}
