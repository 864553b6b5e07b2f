/** The HostFile provider: one managed file, staged on the host from stdin; the activation puts it live. */
import { stageFileScript, unstageFileScript } from "../../host";
import { ManagedFile, fileIdForPath, sha256 } from "../../model";
import { managedFileOf } from "./legacy";
import { SshConnection, runAsRoot } from "../../transport";
import { Provider, diffProps } from "./diff";

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
}

/** What a HostFile keeps in state: the content is not kept, only its hash. */
interface HostFileOutputs extends Omit<HostFileInputs, "content" | "file"> {
    /** A string in state written by release 0.1.0 (see legacy.ts). */
    file: ManagedFile | string;
    contentSha256: string;
}

async function stage(inputs: HostFileInputs): Promise<HostFileOutputs> {
    const file = inputs.file;
    await runAsRoot(inputs.connection, stageFileScript(inputs.service, file), { stdin: inputs.content, what: `staging ${file.path}` });
    const { content, ...rest } = inputs;
    return { ...rest, contentSha256: sha256(content) };
}

export const hostFile: Provider = {
    async check(_olds, news) {
        return { inputs: news };
    },
    async diff(_id, olds: HostFileOutputs, news: HostFileInputs) {
        const newsForCompare = { ...news, contentSha256: typeof news.content === "string" ? sha256(news.content) : news.content };
        return diffProps(olds as unknown as Record<string, unknown>, newsForCompare as unknown as Record<string, unknown>, ["connection", "file", "contentSha256", "view"], ["connection", "service"]);
    },
    async create(inputs: HostFileInputs) {
        return { id: `${inputs.service}/${fileIdForPath(inputs.file.path)}`, outs: await stage(inputs) };
    },
    async update(_id, _olds, news: HostFileInputs) {
        return { outs: await stage(news) };
    },
    async delete(_id, props: HostFileOutputs) {
        const file = managedFileOf(props.file);
        await runAsRoot(props.connection, unstageFileScript(props.service, file), { what: `unstaging ${file.path}` });
    },
};
