/** The HostPrepare provider: prerequisites, the service user and group, and the service's directories. */
import { HostRead, detachedScript, prepareScript, readEnvValueScript } from "../../host";
import { PrepareSpec, STATE_SCHEMA_VERSION, envStorePath, hostKeyFingerprint } from "../../model";
import { RemoteCommandError, SshConnection, runAsRoot, waitsOf } from "../../transport";
import { Provider, diffProps, hostWorkNeeded, readResult } from "./diff";
import { readHost } from "./host-read";

/** Inputs of a HostPrepare resource. */
export interface HostPrepareInputs {
    connection: SshConnection;
    spec: PrepareSpec;
    /** The notes' env file path: an existing JWT_SECRET is adopted from the library's real `.env`, else from a hand-made file here (kept across destroy/up). */
    adoptJwtFrom?: string;
}

/** What a refresh found changed on the host since the preparation: shown in previews, repaired by the next `up`. */
export interface PrepareDrift {
    /** `user NAME` / `group NAME` → what is wrong. */
    account?: Record<string, string>;
    /** Directory path → what is wrong (owner, mode, missing, a link). */
    directories?: Record<string, string>;
}

/** What a HostPrepare keeps in state. */
type HostPrepareOutputs = HostPrepareInputs & { adoptedJwtSecret: string; schemaVersion: number; drift?: PrepareDrift };

/** How the host differs from what `spec` prepared: the account, and each directory's existence, owner and mode. */
export function prepareDriftOf(spec: PrepareSpec, host: HostRead): PrepareDrift {
    const drift: PrepareDrift = {};
    const account: Record<string, string> = {};
    if (host.account.users[spec.user] === false) account[`user ${spec.user}`] = "missing on the host";
    if (host.account.groups[spec.group] === false) account[`group ${spec.group}`] = "missing on the host";
    if (Object.keys(account).length > 0) drift.account = account;
    const directories: Record<string, string> = {};
    for (const d of spec.directories) {
        const live = host.dirs[d.path];
        if (!live) continue;
        if (live.state === "absent") directories[d.path] = "missing on the host";
        else if (live.state === "link") directories[d.path] = "a link on the host (the next up refuses to follow it: remove it)";
        else if (live.state === "other") directories[d.path] = "not a directory on the host (the next up refuses it: remove it)";
        else if (live.state === "present") {
            const what: string[] = [];
            if (live.owner !== d.owner || live.group !== d.group) what.push(`owner ${live.owner}:${live.group} (wants ${d.owner}:${d.group})`);
            if (live.mode !== d.mode) what.push(`mode ${live.mode} (wants ${d.mode})`);
            if (what.length > 0) directories[d.path] = what.join(", ");
        }
    }
    if (Object.keys(directories).length > 0) drift.directories = directories;
    return drift;
}


/** What a HostPrepare's diff compares. */
const COMPARED = ["connection", "spec", "adoptJwtFrom"] as const;

/** Prepares the host, then reads the JWT_SECRET an existing .env already has ("" when none). */
async function prepare(inputs: HostPrepareInputs): Promise<HostPrepareOutputs> {
    await runAsRoot(inputs.connection, detachedScript("prepare the host", prepareScript(inputs.spec, waitsOf(inputs.connection))), { what: "preparing the host", streamLog: true });
    let adoptedJwtSecret = "";
    if (inputs.adoptJwtFrom) {
        try {
            adoptedJwtSecret = (await runAsRoot(inputs.connection, readEnvValueScript([envStorePath(inputs.spec.serviceName), inputs.adoptJwtFrom], "JWT_SECRET", { user: inputs.spec.user, group: inputs.spec.group }), { what: "reading the existing JWT_SECRET" })).stdout;
        } catch (e) {
            // Never let a secret-bearing output reach an error message: only the helper's own refusal line, which names no value.
            const refusal = e instanceof RemoteCommandError ? /refused: [^\n]*/.exec(e.result.stderr)?.[0] : undefined;
            throw new Error(`could not read JWT_SECRET from ${inputs.adoptJwtFrom} on ${inputs.connection.host}${refusal ? ` (${refusal}); it is never replaced silently: fix that path, or set secretEnv.JWT_SECRET` : ""}`);
        }
    }
    return { ...inputs, adoptedJwtSecret, schemaVersion: STATE_SCHEMA_VERSION };
}

export const hostPrepare: Provider = {
    async check(_olds, news) {
        return { inputs: news };
    },
    async diff(_id, olds, news) {
        return diffProps(olds, news, COMPARED);
    },
    async create(inputs: HostPrepareInputs) {
        return { id: `${hostKeyFingerprint(inputs.connection.hostKey)}/prepare`, outs: await prepare(inputs) };
    },
    async update(_id, olds: HostPrepareOutputs, news: HostPrepareInputs) {
        // A new address, port or login only (or older state): nothing to redo on the host.
        if (!hostWorkNeeded(olds as unknown as Record<string, unknown>, news as unknown as Record<string, unknown>, COMPARED)) {
            return { outs: { ...news, adoptedJwtSecret: olds.adoptedJwtSecret ?? "", schemaVersion: STATE_SCHEMA_VERSION } };
        }
        return { outs: await prepare(news) };
    },
    async delete() {
        // Data, the user and the venv are kept; purging is the activation's job when asked for.
    },
    async read(id, props: HostPrepareOutputs) {
        // State written before directories were a spec (release 0.1.0) is migrated by the next up, not read.
        if (!props.spec || !Array.isArray(props.spec.directories)) return { id, props };
        const host = await readHost(props.connection, props.spec.serviceName, {
            account: { user: props.spec.user, group: props.spec.group },
            directories: props.spec.directories.map((d) => d.path),
        });
        // Drift is shown as a property the next up makes go away (it prepares the host again).
        return readResult(id, props, prepareDriftOf(props.spec, host), ["adoptedJwtSecret", "schemaVersion"]);
    },
};
