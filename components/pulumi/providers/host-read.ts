/**
 * One read of a service's host per refresh: every resource of that service
 * on that host asks for what it cares about (files, links, the account,
 * directories, releases), the requests that arrive together (a refresh reads
 * all resources at once) are merged, and one script answers them all over the
 * host's pooled connection. Results are kept for the life of the provider
 * process (one Pulumi command).
 */
import { HostRead, parseHostRead, readHostScript } from "../../host";
import { MANAGED_MARKER } from "../../model";
import { SshConnection, runAsRoot } from "../../transport";

/** How long a read waits for the other resources of its host to ask too. */
const GATHER_MS = 400;

/** What one resource asks to read. */
export interface HostReadRequest {
    /** Managed files: path → holds a secret. */
    readonly files?: Readonly<Record<string, boolean>>;
    /** Root-owned links, reported with their target. */
    readonly links?: readonly string[];
    /** The service's account. */
    readonly account?: { readonly user: string; readonly group: string };
    /** Directories, reported with owner and mode. */
    readonly directories?: readonly string[];
    /** Releases, reported built, runnable and as installed. */
    readonly releases?: readonly { readonly releasesDir: string; readonly id: string }[];
}

interface Batch {
    readonly files: Map<string, boolean>;
    readonly links: Set<string>;
    readonly directories: Set<string>;
    readonly releases: Map<string, { releasesDir: string; id: string }>;
    account?: { user: string; group: string };
    started: boolean;
    readonly result: Promise<HostRead>;
}

const batches = new Map<string, Batch>();

/** The batch key: one machine login and one service. */
function keyOf(c: SshConnection, service: string): string {
    return `${c.user}@${c.host}:${c.port}/${service}`;
}

const releaseKey = (r: { releasesDir: string; id: string }) => `${r.releasesDir}/${r.id}`;

/** Whether a started batch already answers everything `request` asks. */
function covers(batch: Batch, request: HostReadRequest): boolean {
    return (
        Object.keys(request.files ?? {}).every((p) => batch.files.has(p)) &&
        (request.links ?? []).every((l) => batch.links.has(l)) &&
        (request.directories ?? []).every((d) => batch.directories.has(d)) &&
        (request.releases ?? []).every((r) => batch.releases.has(releaseKey(r))) &&
        (!request.account || (batch.account?.user === request.account.user && batch.account.group === request.account.group))
    );
}

function merge(batch: Batch, request: HostReadRequest): void {
    for (const [p, secret] of Object.entries(request.files ?? {})) batch.files.set(p, secret);
    for (const l of request.links ?? []) batch.links.add(l);
    for (const d of request.directories ?? []) batch.directories.add(d);
    for (const r of request.releases ?? []) batch.releases.set(releaseKey(r), { releasesDir: r.releasesDir, id: r.id });
    if (request.account) batch.account = { ...request.account };
}

/** Reads what `request` asks of `service` from its host, sharing one script with the other resources of that host. */
export function readHost(connection: SshConnection, service: string, request: HostReadRequest): Promise<HostRead> {
    const key = keyOf(connection, service);
    const existing = batches.get(key);
    if (existing && (!existing.started || covers(existing, request))) {
        if (!existing.started) merge(existing, request);
        return existing.result;
    }
    let start!: () => void;
    const gate = new Promise<void>((resolve) => (start = resolve));
    const batch: Batch = {
        files: new Map(),
        links: new Set(),
        directories: new Set(),
        releases: new Map(),
        started: false,
        result: gate.then(async () => {
            batch.started = true;
            const script = readHostScript({
                serviceName: service,
                unitName: `${service}.service`,
                files: [...batch.files].map(([path, secret]) => ({ path, secret })),
                links: [...batch.links],
                marker: MANAGED_MARKER,
                ...(batch.account ? { account: batch.account } : {}),
                directories: [...batch.directories],
                releases: [...batch.releases.values()],
            });
            return parseHostRead((await runAsRoot(connection, script, { what: `reading ${service}.service back` })).stdout);
        }),
    };
    merge(batch, request);
    batches.set(key, batch);
    setTimeout(start, GATHER_MS);
    return batch.result;
}

/** Forgets every read (tests). */
export function forgetHostReads(): void {
    batches.clear();
}
