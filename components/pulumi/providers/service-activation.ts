/** The ServiceActivation provider: verify, swap in, reload once, restart at most once, health-check, roll back. */
import { ForeignDropInPolicy, HostRead, activationScript, detachedScript, removalScript, socketUnitOf, unitDropInDir } from "../../host";
import { ForeignDropIn, MANAGED_MARKER, ManagedFile, PurgeSpec, ReleaseSpec, STATE_SCHEMA_VERSION, dropInDirectiveLines, hostKeyFingerprint } from "../../model";
import { SshConnection, runAsRoot } from "../../transport";
import { Provider, diffProps, hostWorkNeeded, readResult } from "./diff";
import { activationFilesOf } from "./legacy";
import { holdsSecrets } from "./host-file";
import { readHost } from "./host-read";

/** The activation's view of a managed file, keyed by its path (so adding one file previews as one `+` line). */
export type ActivationFile = Omit<ManagedFile, "path">;

/** Inputs of a ServiceActivation resource: compact, because previews print them. */
export interface ServiceActivationInputs {
    connection: SshConnection;
    /** The service name (the unit is `<service>.service`). */
    service: string;
    /** Every managed file by path: mode, owner and kind. (A list of lines in state written by release 0.1.0.) */
    files: Record<string, ActivationFile>;
    /** Root-owned links the activation keeps, link path → target (the notes' `.env` path → the real file). */
    links?: Record<string, string>;
    /** The service's account, the only one besides root trusted to own directories the activation works in. */
    account?: { user: string; group: string };
    /** A short hash of each file's content by path: a change re-runs the activation. */
    contentHashes: Record<string, string>;
    /** The health URL probed inside the host, and how long a start may take. */
    health: { url: string; timeoutSec: number };
    /** Set only when `pulumi destroy` should also remove data and the user. */
    purge?: PurgeSpec;
    /** `<project>/<stack>/<resource>`: recorded on the host as the service's owner (absent in older state). */
    owner?: string;
    /** What the activation does with unmanaged drop-ins of the unit (default `refuse`). */
    foreignDropIns?: ForeignDropInPolicy;
    /**
     * The `.env` keys holding secrets, names only (`secretEnv`'s and JWT_SECRET): their values are redacted,
     * on the host, from the journal excerpt of a failed start. Absent (older state): every `.env` value is.
     * Not compared: a change to them changes the `.env`, whose content hash re-runs the activation anyway.
     */
    secretEnvKeys?: string[];
    /** The release to switch to (built by the host's AppRelease); absent in state written before releases. */
    release?: ActivationRelease;
}

/** What a refresh found on the host that differs from the last activation; absent when nothing does. */
export interface ActivationDrift {
    /** `systemctl is-enabled`, `is-active` when not `enabled`, `active`. */
    unit?: string;
    /** Managed files that differ: what differs. */
    files?: Record<string, string>;
    /** Unmanaged drop-ins of the unit: path → hash and directive names (never their text). */
    foreignDropIns?: Record<string, ForeignDropInDrift>;
    /** What the next `up` does about them. */
    foreignDropInsAction?: string;
}

/**
 * How drift shows an unmanaged drop-in: the SHA-256 of its bytes (so a changed value is drift too) and
 * one line per section naming its directives, with values only where plainly not secret
 * (`[Service] Environment, MemoryMax=50M`); a link or anything but a plain file is never read.
 */
export type ForeignDropInDrift = { sha256: string; directives: string[] } | { notAPlainFile: true };

/** The drift view of a drop-in the host read summarised. */
export function foreignDropInDrift(found: ForeignDropIn): ForeignDropInDrift {
    return found.kind === "link" ? { notAPlainFile: true } : { sha256: found.sha256, directives: dropInDirectiveLines(found) };
}

/** What the activation needs of a release. */
export type ActivationRelease = Pick<ReleaseSpec, "id" | "releasesDir" | "venvLink" | "appLink" | "keep">;

/** What an activation keeps in state. */
export interface ServiceActivationOutputs extends ServiceActivationInputs {
    activatedAt: string;
    /** How many activations this resource ran; recorded on the host with the owner. */
    generation?: number;
    schemaVersion?: number;
    /** Set by a refresh that found drift: the next up activates again. */
    drift?: ActivationDrift;
    /** Unmanaged journald drop-ins a refresh found (reported, never acted on: they belong to the host's admin). */
    journaldDropIns?: string[];
}

/** Compares the host's state with the last activation. */
export function driftOf(props: ServiceActivationOutputs, host: HostRead): ActivationDrift {
    const drift: ActivationDrift = {};
    const files: Record<string, string> = {};
    for (const f of activationFilesOf(props.files)) {
        const live = host.files[f.path];
        if (!live) continue;
        if (live.state !== "present") {
            files[f.path] = `${live.state} on the host`;
            continue;
        }
        const what: string[] = [];
        const wanted = props.contentHashes?.[f.path];
        if (wanted !== undefined && live.sha256.slice(0, wanted.length) !== wanted) what.push("content differs");
        if (live.mode !== f.mode) what.push(`mode ${live.mode} (wants ${f.mode})`);
        if (live.owner !== f.owner || live.group !== f.group) what.push(`owner ${live.owner}:${live.group} (wants ${f.owner}:${f.group})`);
        if (what.length > 0) files[f.path] = what.join(", ");
    }
    for (const [path, target] of Object.entries(props.links ?? {})) {
        const live = host.links[path];
        if (live !== undefined && live !== target) files[path] = live === "" ? `not a root-owned link to ${target}` : `links to ${live} (wants ${target})`;
    }
    if (Object.keys(files).length > 0) drift.files = files;
    if (host.unit.enabled !== "enabled" || host.unit.active !== "active") drift.unit = `${host.unit.enabled || "unknown"}, ${host.unit.active || "unknown"}`;
    // A socket-activated service whose socket unit someone disabled or stopped: the next up enables and starts it again.
    const socketUnit = socketUnitOf({ unitName: `${props.service}.service`, files: activationFilesOf(props.files) });
    if (socketUnit !== undefined && host.socket && (host.socket.enabled !== "enabled" || host.socket.active !== "active")) {
        drift.unit = `${drift.unit ? `${drift.unit}; ` : ""}${socketUnit}: ${host.socket.enabled || "unknown"}, ${host.socket.active || "unknown"}`;
    }
    const dropInDir = `${unitDropInDir(`${props.service}.service`)}/`;
    const foreign = Object.fromEntries(Object.entries(host.foreign).filter(([path]) => path.startsWith(dropInDir)).map(([path, found]) => [path, foreignDropInDrift(found)]));
    if (Object.keys(foreign).length > 0) {
        drift.foreignDropIns = foreign;
        drift.foreignDropInsAction =
            props.foreignDropIns === "remove"
                ? "removed by the next up (foreignDropIns: remove)"
                : "up refuses to activate until they are removed or adopted as overrides (foreignDropIns: refuse)";
    }
    return drift;
}

/** What an activation's diff compares. */
const COMPARED = ["connection", "files", "links", "account", "contentHashes", "health", "purge", "owner", "foreignDropIns", "release"] as const;

/** The service's account for state written before `account` was an input: the owner of the first file not owned by root. */
function accountOf(files: readonly ManagedFile[]): { user: string; group: string } {
    const f = files.find((x) => x.owner !== "root") ?? files.find((x) => x.group !== "root");
    return { user: f?.owner && f.owner !== "root" ? f.owner : "amarktai", group: f?.group ?? "amarktai" };
}

async function activate(inputs: ServiceActivationInputs, previous?: ServiceActivationOutputs): Promise<ServiceActivationOutputs> {
    const files = activationFilesOf(inputs.files);
    const livePaths = new Set(files.map((f) => f.path));
    const removed = activationFilesOf(previous?.files).filter((f) => !livePaths.has(f.path));
    const unitName = `${inputs.service}.service`;
    const generation = (previous?.generation ?? 0) + 1;
    await runAsRoot(
        inputs.connection,
        detachedScript(
            `activate ${unitName}`,
            activationScript({
                serviceName: inputs.service,
                unitName,
                files,
                removed,
                marker: MANAGED_MARKER,
                links: Object.entries(inputs.links ?? {}).map(([path, target]) => ({ path, target })),
                account: inputs.account ?? accountOf(files),
                healthUrl: inputs.health.url,
                healthTimeoutSec: inputs.health.timeoutSec,
                ...(inputs.owner ? { ownership: { owner: inputs.owner, generation } } : {}),
                ...(inputs.foreignDropIns ? { foreignDropIns: inputs.foreignDropIns } : {}),
                ...(inputs.secretEnvKeys ? { secretEnvKeys: inputs.secretEnvKeys } : {}),
                ...(inputs.release ? { release: inputs.release } : {}),
            }),
        ),
        { what: `activating ${unitName}` },
    );
    return { ...inputs, activatedAt: new Date().toISOString(), generation, schemaVersion: STATE_SCHEMA_VERSION };
}

export const serviceActivation: Provider = {
    async check(_olds, news) {
        return { inputs: news };
    },
    async diff(_id, olds, news) {
        return diffProps(olds, news, COMPARED, ["service"]);
    },
    async create(inputs: ServiceActivationInputs) {
        return { id: `${hostKeyFingerprint(inputs.connection.hostKey)}/${inputs.service}.service`, outs: await activate(inputs) };
    },
    async update(_id, olds: ServiceActivationOutputs, news: ServiceActivationInputs) {
        // A new address, port or login only: record it; nothing on the host changes. (A new owner, as when
        // state from an older release is migrated, runs the activation once: it records the owner on the host.)
        if (!hostWorkNeeded(olds as unknown as Record<string, unknown>, news as unknown as Record<string, unknown>, COMPARED)) {
            return { outs: { ...news, activatedAt: olds.activatedAt, generation: olds.generation ?? 0, schemaVersion: STATE_SCHEMA_VERSION } };
        }
        return { outs: await activate(news, olds) };
    },
    async delete(_id, props: ServiceActivationOutputs) {
        const unitName = `${props.service}.service`;
        // The unit, its drop-ins and the journald drop-in go; the .env and app files are data and stay (unless purging).
        const files = activationFilesOf(props.files).filter((f) => f.effect === "systemd" || f.effect === "journald");
        const ownership = props.owner ? { owner: props.owner, generation: props.generation ?? 0 } : undefined;
        await runAsRoot(
            props.connection,
            removalScript({ serviceName: props.service, unitName, files, marker: MANAGED_MARKER, ...(props.purge ? { purge: props.purge } : {}), ...(ownership ? { ownership } : {}) }),
            { what: `removing ${unitName}` },
        );
    },
    async read(id, props: ServiceActivationOutputs) {
        const files = activationFilesOf(props.files);
        const host = await readHost(props.connection, props.service, { files: Object.fromEntries(files.map((f) => [f.path, holdsSecrets(f)])), links: Object.keys(props.links ?? {}) });
        const drift = driftOf(props, host);
        const journaldDropIns = Object.keys(host.foreign).filter((p) => !p.startsWith(`${unitDropInDir(`${props.service}.service`)}/`));
        const { journaldDropIns: _j, ...rest } = props;
        const refreshed = { ...rest, ...(journaldDropIns.length > 0 ? { journaldDropIns } : {}) };
        // Drift is shown as a property the next up makes go away.
        return readResult(id, refreshed, drift, ["activatedAt", "generation", "schemaVersion", "journaldDropIns"]);
    },
};
