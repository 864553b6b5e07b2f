/** The ServiceActivation provider: verify, swap in, reload once, restart at most once, health-check, roll back. */
import { activationScript, detachedScript, removalScript } from "../../host";
import { MANAGED_MARKER, ManagedFile, PurgeSpec } from "../../model";
import { SshConnection, runAsRoot } from "../../transport";
import { Provider, diffProps } from "./diff";
import { activationFilesOf } from "./legacy";

/** The activation's view of a managed file, keyed by its path (so adding one file previews as one `+` line). */
export type ActivationFile = Omit<ManagedFile, "path">;

/** Inputs of a ServiceActivation resource: compact, because previews print them. */
export interface ServiceActivationInputs {
    connection: SshConnection;
    /** The service name (the unit is `<service>.service`). */
    service: string;
    /** Every managed file by path: mode, owner and kind. (A list of lines in state written by release 0.1.0.) */
    files: Record<string, ActivationFile>;
    /** A short hash of each file's content by path: a change re-runs the activation. */
    contentHashes: Record<string, string>;
    /** The health URL probed inside the host, and how long a start may take. */
    health: { url: string; timeoutSec: number };
    /** Set only when `pulumi destroy` should also remove data and the user. */
    purge?: PurgeSpec;
}

async function activate(inputs: ServiceActivationInputs, previous?: ServiceActivationInputs): Promise<ServiceActivationInputs & { activatedAt: string }> {
    const files = activationFilesOf(inputs.files);
    const livePaths = new Set(files.map((f) => f.path));
    const removed = activationFilesOf(previous?.files).filter((f) => !livePaths.has(f.path));
    const unitName = `${inputs.service}.service`;
    await runAsRoot(
        inputs.connection,
        detachedScript(
            `activate ${unitName}`,
            activationScript({ serviceName: inputs.service, unitName, files, removed, marker: MANAGED_MARKER, healthUrl: inputs.health.url, healthTimeoutSec: inputs.health.timeoutSec }),
        ),
        { what: `activating ${unitName}` },
    );
    return { ...inputs, activatedAt: new Date().toISOString() };
}

export const serviceActivation: Provider = {
    async check(_olds, news) {
        return { inputs: news };
    },
    async diff(_id, olds, news) {
        return diffProps(olds, news, ["connection", "files", "contentHashes", "health", "purge"], ["connection", "service"]);
    },
    async create(inputs: ServiceActivationInputs) {
        return { id: `${inputs.connection.host}:${inputs.connection.port}/${inputs.service}.service`, outs: await activate(inputs) };
    },
    async update(_id, olds: ServiceActivationInputs, news: ServiceActivationInputs) {
        return { outs: await activate(news, olds) };
    },
    async delete(_id, props: ServiceActivationInputs) {
        const unitName = `${props.service}.service`;
        // The unit, its drop-ins and the journald drop-in go; the .env and app files are data and stay (unless purging).
        const files = activationFilesOf(props.files).filter((f) => f.effect === "systemd" || f.effect === "journald");
        await runAsRoot(props.connection, removalScript({ serviceName: props.service, unitName, files, marker: MANAGED_MARKER, ...(props.purge ? { purge: props.purge } : {}) }), {
            what: `removing ${unitName}`,
        });
    },
};
