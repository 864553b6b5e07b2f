/**
 * The ResolvedRequirements provider: resolves a service's requirements into a
 * lock once, on one host, and keeps the lock in state. It is resolved again
 * only when the resolution's id changes (the requirements, the installer or
 * the index settings); a new connection (another first host, a rotated key)
 * or a refresh never resolves again.
 */
import { detachedScript, leadWithScriptError, lockOfOutput, resolveRequirementsScript } from "../../host";
import { ResolutionSpec, STATE_SCHEMA_VERSION, lockedPackages } from "../../model";
import { checkedLock } from "../../plan";
import { RemoteCommandError, SshConnection, runAsRoot, waitsOf } from "../../transport";
import { Provider, stableJson } from "./diff";
import { sendUvToHost } from "./uv-deployer";

/** Inputs of a ResolvedRequirements resource. */
export interface ResolvedRequirementsInputs {
    /** The host the resolution runs on (only when it is created). */
    connection: SshConnection;
    service: string;
    resolution: ResolutionSpec;
}

/** What a ResolvedRequirements keeps in state. */
export interface ResolvedRequirementsOutputs extends ResolvedRequirementsInputs {
    /** The lock: every package pinned to one version, with its hashes. */
    resolved: string;
    /** The packages the lock pins, `name==version`. */
    packages: string[];
    schemaVersion: number;
}

async function resolve(inputs: ResolvedRequirementsInputs): Promise<ResolvedRequirementsOutputs> {
    const { connection, service, resolution } = inputs;
    if (resolution.installer === "uv" && resolution.uvSource === "deployer") await sendUvToHost(connection, resolution.uvMirror !== undefined ? { mirror: resolution.uvMirror } : {});
    let stdout: string;
    try {
        const script = detachedScript(`resolve the requirements of ${service}`, resolveRequirementsScript(resolution, waitsOf(connection)));
        stdout = (await runAsRoot(connection, script, { stdin: resolution.requirements, what: `resolving the requirements of ${service}`, streamLog: true })).stdout;
    } catch (e) {
        const message = e instanceof RemoteCommandError ? leadWithScriptError(e.message, e.result.stderr) : undefined;
        throw message !== undefined && e instanceof Error && message !== e.message ? new Error(message) : e;
    }
    const resolved = checkedLock(lockOfOutput(stdout));
    return { ...inputs, resolved, packages: lockedPackages(resolved), schemaVersion: STATE_SCHEMA_VERSION };
}

export const resolvedRequirements: Provider = {
    async check(_olds, news) {
        return { inputs: news };
    },
    async diff(_id, olds: ResolvedRequirementsOutputs, news: ResolvedRequirementsInputs) {
        // Only another resolution resolves again; everything else it was given is used when it is created, never after.
        const again = olds.resolution?.id !== news.resolution?.id || stableJson(olds.service) !== stableJson(news.service);
        return { changes: again, replaces: again ? ["resolution"] : [] };
    },
    async create(inputs: ResolvedRequirementsInputs) {
        return { id: `${inputs.service}/requirements/${inputs.resolution.id}`, outs: await resolve(inputs) };
    },
    async update(_id, olds: ResolvedRequirementsOutputs) {
        // Not reached (every change replaces); the lock stays as it is.
        return { outs: olds };
    },
    async delete() {
        // Nothing is on a host: the lock lives in state only.
    },
    async read(id, props) {
        return { id, props };
    },
};
