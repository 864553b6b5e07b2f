/** The HostFile provider: one managed file, staged on the host from stdin; the activation puts it live. */
import { stageFileScript, unstageFileScript } from "../../host";
import { ManagedFile, STATE_SCHEMA_VERSION, fileIdForPath, sha256 } from "../../model";
import { managedFileOf } from "./legacy";
import { SshConnection, runAsRoot } from "../../transport";
import { Provider, diffProps, hostWorkNeeded } from "./diff";

/** Inputs of a HostFile resource. */
export interface HostFileInputs {
    connection: SshConnection;
    /** The service whose staging directory holds the file. */
    service: string;
    /** Where the file goes, its mode, owner and kind. */
    file: ManagedFile;
    content: string;
    /** Redacted text for reviewers; not used on the host. */
    view?: string;
    /** The resource that owns the service on the host (see `ownerRecordPath`); absent in older state. */
    owner?: string;
}

/** What a HostFile keeps in state: the content is not kept, only its hash. */
interface HostFileOutputs extends Omit<HostFileInputs, "content" | "file"> {
    /** A string in state written by release 0.1.0 (see legacy.ts). */
    file: ManagedFile | string;
    contentSha256: string;
    schemaVersion?: number;
}

/** What a HostFile's diff compares: the content by its hash. */
const COMPARED = ["connection", "file", "contentSha256", "view"] as const;

/** New inputs in the shape of the state: the content replaced by its hash. */
function comparable(news: HostFileInputs): Record<string, unknown> {
    return { ...news, contentSha256: typeof news.content === "string" ? sha256(news.content) : news.content };
}

/** The outputs for `inputs`: everything but the content, plus its hash and the schema version. */
function outputsOf(inputs: HostFileInputs): HostFileOutputs {
    const { content, ...rest } = inputs;
    return { ...rest, contentSha256: sha256(content), schemaVersion: STATE_SCHEMA_VERSION };
}

async function stage(inputs: HostFileInputs): Promise<HostFileOutputs> {
    const file = inputs.file;
    await runAsRoot(inputs.connection, stageFileScript(inputs.service, file), { stdin: inputs.content, what: `staging ${file.path}` });
    return outputsOf(inputs);
}

export const hostFile: Provider = {
    async check(_olds, news) {
        return { inputs: news };
    },
    async diff(_id, olds: HostFileOutputs, news: HostFileInputs) {
        return diffProps(olds as unknown as Record<string, unknown>, comparable(news), [...COMPARED, "owner"], ["service"]);
    },
    async create(inputs: HostFileInputs) {
        return { id: `${inputs.service}/${fileIdForPath(inputs.file.path)}`, outs: await stage(inputs) };
    },
    async update(_id, olds: HostFileOutputs, news: HostFileInputs) {
        // A new address, port, login or owner only: the staged copy is already right.
        if (!hostWorkNeeded(olds as unknown as Record<string, unknown>, comparable(news), COMPARED)) return { outs: outputsOf(news) };
        return { outs: await stage(news) };
    },
    async delete(_id, props: HostFileOutputs) {
        const file = managedFileOf(props.file);
        const ownership = props.owner ? { owner: props.owner, generation: Number.MAX_SAFE_INTEGER } : undefined;
        await runAsRoot(props.connection, unstageFileScript(props.service, file, ownership), { what: `unstaging ${file.path}` });
    },
    async read(id, props) {
        return { id, props };
    },
};
