/**
 * One read of a service's host per refresh: every resource of that service
 * on that host asks for the files it cares about, the requests that arrive
 * together (a refresh reads all resources at once) are merged, and one
 * script answers them all over the host's pooled connection. Results are kept
 * for the life of the provider process (one Pulumi command).
 */
import { HostRead, parseHostRead, readHostScript } from "../../host";
import { MANAGED_MARKER } from "../../model";
import { SshConnection, runAsRoot } from "../../transport";

/** How long a read waits for the other resources of its host to ask too. */
const GATHER_MS = 400;

interface Batch {
    readonly files: Map<string, boolean>;
    readonly links: Set<string>;
    started: boolean;
    readonly result: Promise<HostRead>;
}

const batches = new Map<string, Batch>();

/** The batch key: one machine login and one service. */
function keyOf(c: SshConnection, service: string): string {
    return `${c.user}@${c.host}:${c.port}/${service}`;
}

/** Reads `files` (path → holds a secret) of `service` from its host, sharing one script with the other resources of that host. */
export function readHost(connection: SshConnection, service: string, files: Record<string, boolean>, links: readonly string[] = []): Promise<HostRead> {
    const key = keyOf(connection, service);
    const existing = batches.get(key);
    if (existing && (!existing.started || (Object.keys(files).every((p) => existing.files.has(p)) && links.every((l) => existing.links.has(l))))) {
        for (const [p, secret] of Object.entries(files)) existing.files.set(p, secret);
        for (const l of links) existing.links.add(l);
        return existing.result;
    }
    const wanted = new Map(Object.entries(files));
    const wantedLinks = new Set(links);
    let start!: () => void;
    const gate = new Promise<void>((resolve) => (start = resolve));
    const batch: Batch = {
        files: wanted,
        links: wantedLinks,
        started: false,
        result: gate.then(async () => {
            batch.started = true;
            const script = readHostScript({ serviceName: service, unitName: `${service}.service`, files: [...wanted].map(([path, secret]) => ({ path, secret })), links: [...wantedLinks], marker: MANAGED_MARKER });
            return parseHostRead((await runAsRoot(connection, script, { what: `reading ${service}.service back` })).stdout);
        }),
    };
    batches.set(key, batch);
    setTimeout(start, GATHER_MS);
    return batch.result;
}

/** Forgets every read (tests). */
export function forgetHostReads(): void {
    batches.clear();
}
