/** The HostFile provider: one managed file, staged on the host from stdin; the activation puts it live. */
import { LiveFile, stageFileScript, unstageFileScript } from "../../host";
import { ENV_ASSIGNMENT, ManagedFile, STATE_SCHEMA_VERSION, fileIdForPath, sha256 } from "../../model";
import { managedFileOf } from "./legacy";
import { SshConnection, runAsRoot } from "../../transport";
import { Provider, diffProps, hostWorkNeeded } from "./diff";
import { readHost } from "./host-read";

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
    /** For files that hold secrets: SHA-256 of each `KEY=value` line by key (a secret output), so a refresh can say which keys drifted. */
    lineHashes?: Record<string, string>;
    /** After a refresh that found drift, for non-secret files: the text the host has. */
    content?: string;
    schemaVersion?: number;
}

/** Whether a file holds secrets: not readable by others (the `.env`). Its text never leaves the host on a read. */
export function holdsSecrets(file: Pick<ManagedFile, "mode">): boolean {
    return (parseInt(file.mode, 8) & 0o4) === 0;
}

/** SHA-256 of each `KEY=value` line, by key. */
function lineHashesOf(content: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const line of content.split("\n")) {
        const m = ENV_ASSIGNMENT.exec(line);
        if (m) out[m[1]!] = sha256(line);
    }
    return out;
}

/**
 * The reviewer's view of a drifted secret file: the last view with each key
 * that differs on the host marked (`[differs on the host]`, `[missing on the
 * host]`, `[on the host only]`). Never a value: the host sends key names and
 * line hashes only.
 */
export function driftedView(view: string | undefined, wanted: Record<string, string> | undefined, live: LiveFile): string {
    if (live.state !== "present") return `(${live.state} on the host: put back by the next up)`;
    if (!wanted || !live.keyHashes) return `${view ?? ""}\n(differs on the host)`.trim();
    const onHost = live.keyHashes;
    const lines = (view ?? "").split("\n").map((line) => {
        const key = ENV_ASSIGNMENT.exec(line)?.[1];
        if (!key || !(key in wanted)) return line;
        if (!(key in onHost)) return `${key}=[missing on the host]`;
        return onHost[key] === wanted[key] ? line : `${key}=[differs on the host]`;
    });
    const extra = Object.keys(onHost).filter((k) => !(k in wanted)).map((k) => `${k}=[on the host only]`);
    return [...lines, ...extra].join("\n");
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
    return { ...rest, contentSha256: sha256(content), ...(holdsSecrets(inputs.file) ? { lineHashes: lineHashesOf(content) } : {}), schemaVersion: STATE_SCHEMA_VERSION };
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
    async read(id, props: HostFileOutputs) {
        // What the host has: a different hash, mode or owner (or no file) makes the next up stage the file again.
        const file = managedFileOf(props.file);
        const secret = holdsSecrets(file);
        const live = (await readHost(props.connection, props.service, { files: { [file.path]: secret } })).files[file.path];
        if (!live) return { id, props };
        const same = live.state === "present" && live.sha256 === props.contentSha256 && live.mode === file.mode && live.owner === file.owner && live.group === file.group;
        if (same) return { id, props };
        const liveFile = live.state === "present" ? { ...file, mode: live.mode, owner: live.owner, group: live.group } : file;
        const { contentSha256: _c, lineHashes: _l, schemaVersion: _s, content: _t, ...inputs } = props;
        const shown = secret
            ? { view: driftedView(props.view, props.lineHashes, live) }
            : { content: live.state === "present" ? (live.text ?? `(differs on the host, sha256 ${live.sha256})`) : `(${live.state} on the host)` };
        const refreshed = { ...inputs, file: liveFile, ...shown };
        return { id, props: { ...props, ...refreshed, contentSha256: live.state === "present" ? live.sha256 : `(${live.state} on the host)` }, inputs: refreshed };
    },
};
