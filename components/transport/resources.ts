/**
 * The library's dynamic resources. Their providers are tiny stubs that load
 * `providers.js` at run time, so the code Pulumi serializes into the state is
 * small and stable across library versions: upgrading the library never shows
 * up as a diff.
 */
import * as pulumi from "@pulumi/pulumi";
import type { PrepareSpec } from "../host/scripts";
import type { SshConnection } from "./ssh";

/**
 * Finds and loads the provider implementations from the Pulumi project's
 * directory (the dynamic-provider process runs there): from an installed
 * `amarktai-infra` package, or from this repository's own build.
 * Self-contained on purpose: Pulumi serializes this function's text.
 */
function loadProviders(): Record<string, pulumi.dynamic.ResourceProvider> {
    const path = require("path");
    const fs = require("fs");
    const relative = path.join("dist", "components", "transport", "providers.js");
    // The repository itself: walk up from the program directory (it may be `dist/`) to our package.json.
    for (let dir = process.cwd(); ; dir = path.dirname(dir)) {
        const manifest = path.join(dir, "package.json");
        if (fs.existsSync(manifest) && JSON.parse(fs.readFileSync(manifest, "utf8")).name === "amarktai-infra" && fs.existsSync(path.join(dir, relative))) {
            return require(path.join(dir, relative)).providers;
        }
        if (path.dirname(dir) === dir) break;
    }
    // A project that installed amarktai-infra as a package.
    try {
        return require(require.resolve(`amarktai-infra/${relative}`, { paths: [process.cwd()] })).providers;
    } catch {
        throw new Error(`amarktai-infra: cannot find its provider code from ${process.cwd()}; run \`npm run build\` first`);
    }
}

/** A provider whose every method defers to the implementation named `kind`. */
function providerStub(kind: string): pulumi.dynamic.ResourceProvider {
    return {
        check: (olds, news) => loadProviders()[kind]!.check!(olds, news),
        diff: (id, olds, news) => loadProviders()[kind]!.diff!(id, olds, news),
        create: (inputs) => loadProviders()[kind]!.create(inputs),
        update: (id, olds, news) => loadProviders()[kind]!.update!(id, olds, news),
        delete: (id, props) => loadProviders()[kind]!.delete!(id, props),
    };
}

/** The Pulumi module of the library's resource types: `pulumi-nodejs:dynamic/amarktai:<Type>`. */
const MODULE = "amarktai";

/** Connection inputs; `privateKey` should be a secret Output. */
export type ConnectionInput = pulumi.Input<{ [K in keyof SshConnection]: pulumi.Input<SshConnection[K]> }>;

/** Arguments of {@link HostPrepare}. */
export interface HostPrepareArgs {
    connection: ConnectionInput;
    spec: pulumi.Input<PrepareSpec>;
    /** An env file on the host whose JWT_SECRET, if any, is adopted (see {@link HostPrepare.adoptedJwtSecret}). */
    adoptJwtFrom?: pulumi.Input<string>;
}

/** Prepares a host: prerequisites, the service user, directories, the venv and its requirements. */
export class HostPrepare extends pulumi.dynamic.Resource {
    /**
     * The JWT_SECRET the host's env file already had when it was prepared ("" if none): adopting it keeps
     * tokens valid when a hand-made install is taken over, and across `destroy` and `up`. Always secret.
     */
    declare readonly adoptedJwtSecret: pulumi.Output<string>;
    constructor(name: string, args: HostPrepareArgs, opts?: pulumi.CustomResourceOptions) {
        super(providerStub("hostPrepare"), name, { ...args, adoptedJwtSecret: undefined }, { ...opts, additionalSecretOutputs: ["connection", "adoptedJwtSecret"] }, MODULE, "HostPrepare");
    }
}

/** Arguments of {@link HostFile}. */
export interface HostFileArgs {
    connection: ConnectionInput;
    /** The service whose staging directory holds the file. */
    service: pulumi.Input<string>;
    /** `PATH MODE OWNER:GROUP EFFECT`, from `formatManifestLine`. */
    file: pulumi.Input<string>;
    /** The file's text. Pass a secret Output for files that hold secrets: it then never shows in previews or state. */
    content: pulumi.Input<string>;
    /** For secret files: a redacted text for reviewers (shown in previews instead of the hidden content). */
    view?: pulumi.Input<string>;
}

/** One managed file, staged on the host (content on stdin); the activation puts it live. */
export class HostFile extends pulumi.dynamic.Resource {
    /** SHA-256 of the staged content. */
    declare readonly contentSha256: pulumi.Output<string>;
    constructor(name: string, args: HostFileArgs, opts?: pulumi.CustomResourceOptions) {
        super(providerStub("hostFile"), name, { ...args, contentSha256: undefined }, { ...opts, additionalSecretOutputs: ["connection", "contentSha256"] }, MODULE, "HostFile");
    }
}

/** Arguments of {@link ServiceActivation}. */
export interface ServiceActivationArgs {
    connection: ConnectionInput;
    /** The service name; the unit is `<service>.service`. */
    service: pulumi.Input<string>;
    /** Every managed file, one `PATH MODE OWNER:GROUP EFFECT` line each. */
    files: pulumi.Input<pulumi.Input<string>[]>;
    /** A short hash of each file's content by path. */
    contentHashes: pulumi.Input<Record<string, pulumi.Input<string>>>;
    health: pulumi.Input<{ url: string; timeoutSec: number }>;
    /** Only when `pulumi destroy` should also remove data and the user. */
    purge?: pulumi.Input<{ paths: string[]; user: string; group: string }>;
}

/** Verifies, swaps in, reloads, restarts and health-checks one service on one host; rolls back on failure. */
export class ServiceActivation extends pulumi.dynamic.Resource {
    /** When the last activation finished. */
    declare readonly activatedAt: pulumi.Output<string>;
    constructor(name: string, args: ServiceActivationArgs, opts?: pulumi.CustomResourceOptions) {
        super(providerStub("serviceActivation"), name, { ...args, activatedAt: undefined }, { ...opts, additionalSecretOutputs: ["connection", "contentHashes"] }, MODULE, "ServiceActivation");
    }
}

/** Arguments of {@link RandomSecret}. */
export interface RandomSecretArgs {
    /** Random bytes in the value (default 32). */
    bytes?: pulumi.Input<number>;
}

/** A random value generated once and kept (encrypted) in the stack state, e.g. `JWT_SECRET`. */
export class RandomSecret extends pulumi.dynamic.Resource {
    /** The value, base64url; always secret. */
    declare readonly value: pulumi.Output<string>;
    constructor(name: string, args: RandomSecretArgs = {}, opts?: pulumi.CustomResourceOptions) {
        super(providerStub("randomSecret"), name, { bytes: args.bytes ?? 32, value: undefined }, { ...opts, additionalSecretOutputs: ["value"] }, MODULE, "RandomSecret");
    }
}
