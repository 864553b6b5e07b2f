/** The HostPrepare provider: prerequisites, the service user, directories, the venv and its requirements. */
import { detachedScript, prepareScript, readEnvValueScript } from "../../host";
import { PrepareSpec } from "../../model";
import { SshConnection, runAsRoot } from "../../transport";
import { Provider, diffProps } from "./diff";

/** Inputs of a HostPrepare resource. */
export interface HostPrepareInputs {
    connection: SshConnection;
    spec: PrepareSpec;
    /** An env file whose existing JWT_SECRET is adopted (kept across destroy/up and from hand-made installs). */
    adoptJwtFrom?: string;
}

/** Prepares the host, then reads the JWT_SECRET an existing .env already has ("" when none). */
async function prepare(inputs: HostPrepareInputs): Promise<HostPrepareInputs & { adoptedJwtSecret: string }> {
    await runAsRoot(inputs.connection, detachedScript("prepare the host", prepareScript(inputs.spec)), { what: "preparing the host" });
    let adoptedJwtSecret = "";
    if (inputs.adoptJwtFrom) {
        try {
            adoptedJwtSecret = (await runAsRoot(inputs.connection, readEnvValueScript(inputs.adoptJwtFrom, "JWT_SECRET"), { what: "reading the existing JWT_SECRET" })).stdout;
        } catch {
            // Never let a secret-bearing output reach an error message.
            throw new Error(`could not read JWT_SECRET from ${inputs.adoptJwtFrom} on ${inputs.connection.host}`);
        }
    }
    return { ...inputs, adoptedJwtSecret };
}

export const hostPrepare: Provider = {
    async check(_olds, news) {
        return { inputs: news };
    },
    async diff(_id, olds, news) {
        return diffProps(olds, news, ["connection", "spec", "adoptJwtFrom"], ["connection"]);
    },
    async create(inputs: HostPrepareInputs) {
        return { id: `${inputs.connection.host}:${inputs.connection.port}`, outs: await prepare(inputs) };
    },
    async update(_id, _olds, news: HostPrepareInputs) {
        return { outs: await prepare(news) };
    },
    async delete() {
        // Data, the user and the venv are kept; purging is the activation's job when asked for.
    },
};
