/** The HostPrepare provider: prerequisites, the service user, directories, the venv and its requirements. */
import { detachedScript, prepareScript, readEnvValueScript } from "../../host";
import { PrepareSpec, STATE_SCHEMA_VERSION, envStorePath, hostKeyFingerprint } from "../../model";
import { SshConnection, runAsRoot } from "../../transport";
import { Provider, diffProps, hostWorkNeeded } from "./diff";

/** Inputs of a HostPrepare resource. */
export interface HostPrepareInputs {
    connection: SshConnection;
    spec: PrepareSpec;
    /** The notes' env file path: an existing JWT_SECRET is adopted from the library's real `.env`, else from a hand-made file here (kept across destroy/up). */
    adoptJwtFrom?: string;
}

/** What a HostPrepare keeps in state. */
type HostPrepareOutputs = HostPrepareInputs & { adoptedJwtSecret: string; schemaVersion: number };

/** What a HostPrepare's diff compares. */
const COMPARED = ["connection", "spec", "adoptJwtFrom"] as const;

/** Prepares the host, then reads the JWT_SECRET an existing .env already has ("" when none). */
async function prepare(inputs: HostPrepareInputs): Promise<HostPrepareOutputs> {
    await runAsRoot(inputs.connection, detachedScript("prepare the host", prepareScript(inputs.spec)), { what: "preparing the host" });
    let adoptedJwtSecret = "";
    if (inputs.adoptJwtFrom) {
        try {
            adoptedJwtSecret = (await runAsRoot(inputs.connection, readEnvValueScript([envStorePath(inputs.spec.serviceName), inputs.adoptJwtFrom], "JWT_SECRET"), { what: "reading the existing JWT_SECRET" })).stdout;
        } catch {
            // Never let a secret-bearing output reach an error message.
            throw new Error(`could not read JWT_SECRET from ${inputs.adoptJwtFrom} on ${inputs.connection.host}`);
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
    async read(id, props) {
        return { id, props };
    },
};
