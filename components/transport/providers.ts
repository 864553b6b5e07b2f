/**
 * The implementations behind the library's dynamic resources. They run in the
 * Pulumi engine's dynamic-provider process (loaded by `resources.ts`), talk to
 * hosts over {@link runAsRoot}, and never echo a secret into a message.
 */
import { randomBytes, randomUUID } from "crypto";
import type * as pulumi from "@pulumi/pulumi";
import { PrepareSpec, activationScript, detachedScript, parseManifestLine, prepareScript, readEnvValueScript, removalScript, stageFileScript, unstageFileScript } from "../host/scripts";
import { MANAGED_MARKER } from "../systemd/service";
import { sha256 } from "./hash";
import { SshConnection, runAsRoot } from "./ssh";

type Provider = Required<Pick<pulumi.dynamic.ResourceProvider, "check" | "diff" | "create" | "update" | "delete">>;

/** A JSON text with sorted object keys, for comparing plain values. */
export function stableJson(value: unknown): string {
    return JSON.stringify(value, (_key, v: unknown) =>
        v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
    );
}

/** Which machine a connection reaches: a different one means a replacement. */
function machine(c: SshConnection | undefined): unknown {
    return c ? { host: c.host, port: c.port } : undefined;
}

/** How a connection logs in, without its key: a change re-runs the operation on the same machine. */
function login(c: SshConnection | undefined): unknown {
    return c ? { host: c.host, port: c.port, user: c.user, hostKey: c.hostKey } : undefined;
}

/**
 * Compares old outputs with new inputs. `connection` counts as changed when
 * the login changes (user, pinned host key) and as a replacement only when
 * the machine changes (address, port); the private key alone never counts
 * (rotating it must not touch the host). Other keys in `replaceOn` force a
 * replacement. Replacements delete first: old and new would share paths on
 * the host.
 */
export function diffProps(olds: Record<string, unknown>, news: Record<string, unknown>, compare: readonly string[], replaceOn: readonly string[] = []): pulumi.dynamic.DiffResult {
    const differs = (k: string, forReplace: boolean) =>
        k === "connection"
            ? stableJson((forReplace ? machine : login)(olds[k] as SshConnection)) !== stableJson((forReplace ? machine : login)(news[k] as SshConnection))
            : stableJson(olds[k]) !== stableJson(news[k]);
    const changed = compare.filter((k) => differs(k, false));
    const replaces = replaceOn.filter((k) => differs(k, true));
    return { changes: changed.length > 0 || replaces.length > 0, replaces, deleteBeforeReplace: replaces.length > 0 };
}


// ---------------------------------------------------------------- host preparation

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

const hostPrepare: Provider = {
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

// ---------------------------------------------------------------- staged files

/** Inputs of a HostFile resource. */
export interface HostFileInputs {
    connection: SshConnection;
    /** The service whose staging directory holds the file. */
    service: string;
    /** `PATH MODE OWNER:GROUP EFFECT` (see formatManifestLine). */
    file: string;
    content: string;
    /** Redacted text for reviewers; not used on the host. */
    view?: string;
}

/** What a HostFile keeps in state: the content is not kept, only its hash. */
interface HostFileOutputs extends Omit<HostFileInputs, "content"> {
    contentSha256: string;
}

async function stage(inputs: HostFileInputs): Promise<HostFileOutputs> {
    const file = parseManifestLine(inputs.file);
    await runAsRoot(inputs.connection, stageFileScript(inputs.service, file), { stdin: inputs.content, what: `staging ${file.path}` });
    const { content, ...rest } = inputs;
    return { ...rest, contentSha256: sha256(content) };
}

const hostFile: Provider = {
    async check(_olds, news) {
        return { inputs: news };
    },
    async diff(_id, olds: HostFileOutputs, news: HostFileInputs) {
        const newsForCompare = { ...news, contentSha256: typeof news.content === "string" ? sha256(news.content) : news.content };
        return diffProps(olds as unknown as Record<string, unknown>, newsForCompare as unknown as Record<string, unknown>, ["connection", "file", "contentSha256", "view"], ["connection", "service"]);
    },
    async create(inputs: HostFileInputs) {
        return { id: `${inputs.service}/${parseManifestLine(inputs.file).id}`, outs: await stage(inputs) };
    },
    async update(_id, _olds, news: HostFileInputs) {
        return { outs: await stage(news) };
    },
    async delete(_id, props: HostFileOutputs) {
        const file = parseManifestLine(props.file);
        await runAsRoot(props.connection, unstageFileScript(props.service, file), { what: `unstaging ${file.path}` });
    },
};

// ---------------------------------------------------------------- activation

/** Inputs of a ServiceActivation resource: compact, because previews print them. */
export interface ServiceActivationInputs {
    connection: SshConnection;
    /** The service name (the unit is `<service>.service`). */
    service: string;
    /** Every managed file, one `PATH MODE OWNER:GROUP EFFECT` line each. */
    files: string[];
    /** A short hash of each file's content by path: a change re-runs the activation. */
    contentHashes: Record<string, string>;
    /** The health URL probed inside the host, and how long a start may take. */
    health: { url: string; timeoutSec: number };
    /** Set only when `pulumi destroy` should also remove data and the user. */
    purge?: { paths: string[]; user: string; group: string };
}

async function activate(inputs: ServiceActivationInputs, previous?: ServiceActivationInputs): Promise<ServiceActivationInputs & { activatedAt: string }> {
    const files = inputs.files.map(parseManifestLine);
    const livePaths = new Set(files.map((f) => f.path));
    const removed = (previous?.files ?? []).map(parseManifestLine).filter((f) => !livePaths.has(f.path));
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

const serviceActivation: Provider = {
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
        const files = props.files.map(parseManifestLine).filter((f) => f.effect === "systemd" || f.effect === "journald");
        await runAsRoot(props.connection, removalScript({ serviceName: props.service, unitName, files, marker: MANAGED_MARKER, ...(props.purge ? { purge: props.purge } : {}) }), {
            what: `removing ${unitName}`,
        });
    },
};

// ---------------------------------------------------------------- random secrets

/** Inputs of a RandomSecret resource. */
export interface RandomSecretInputs {
    /** Number of random bytes (the value is their base64url text). */
    bytes: number;
}

const randomSecret: Provider = {
    async check(_olds, news) {
        const bytes = (news as RandomSecretInputs).bytes;
        if (!Number.isInteger(bytes) || bytes < 16 || bytes > 1024) {
            return { failures: [{ property: "bytes", reason: "must be an integer from 16 to 1024" }] };
        }
        return { inputs: news };
    },
    async diff(_id, olds, news) {
        return diffProps(olds, news, ["bytes"], ["bytes"]);
    },
    async create(inputs: RandomSecretInputs) {
        return { id: randomUUID(), outs: { bytes: inputs.bytes, value: randomBytes(inputs.bytes).toString("base64url") } };
    },
    async update(_id, olds) {
        return { outs: olds };
    },
    async delete() {
        // Nothing outside the state.
    },
};

/** Every provider, by the kind name used in `resources.ts`. */
export const providers: Record<string, Provider> = { hostPrepare, hostFile, serviceActivation, randomSecret };
