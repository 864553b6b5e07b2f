/**
 * The library's dynamic resources. Their providers are tiny stubs that load
 * `providers.js` at run time, so the code Pulumi serializes into the state is
 * small and stable across library versions: upgrading the library never shows
 * up as a diff.
 */
import * as pulumi from "@pulumi/pulumi";
import type { SshConnection } from "../../transport";

/**
 * Finds and loads the provider implementations from the Pulumi project's
 * directory (the dynamic-provider process runs there): from an installed
 * `amarktai-infra` package, or from this repository's own build.
 * Self-contained on purpose: Pulumi serializes this function's text.
 */
function loadProviders(): Record<string, pulumi.dynamic.ResourceProvider> {
    const path = require("path");
    const fs = require("fs");
    const relative = path.join("dist", "components", "pulumi", "providers", "index.js");
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

/** One stub per kind, shared by every resource of that kind (the SDK serializes each provider object once). */
const stubs = new Map<string, pulumi.dynamic.ResourceProvider>();

/** The provider of kind `kind`: a stub whose every method defers to the implementation named `kind`. */
function providerStub(kind: string): pulumi.dynamic.ResourceProvider {
    let stub = stubs.get(kind);
    if (!stub) {
        stub = stubOf(kind);
        stubs.set(kind, stub);
    }
    return stub;
}

/** A provider whose every method defers to the implementation named `kind`. */
function stubOf(kind: string): pulumi.dynamic.ResourceProvider {
    return {
        check: (olds, news) => loadProviders()[kind]!.check!(olds, news),
        diff: (id, olds, news) => loadProviders()[kind]!.diff!(id, olds, news),
        create: (inputs) => loadProviders()[kind]!.create(inputs),
        update: (id, olds, news) => loadProviders()[kind]!.update!(id, olds, news),
        delete: (id, props) => loadProviders()[kind]!.delete!(id, props),
        read: (id, props) => loadProviders()[kind]!.read!(id, props),
    };
}

/** The Pulumi module of the library's resource types: `pulumi-nodejs:dynamic/amarktai:<Type>`. */
const MODULE = "amarktai";

/** The constructor of a library resource taking `Args` and exposing `Outputs` beside its inputs. */
export type LibraryResourceClass<Args, Outputs> = new (name: string, args: Args, opts?: pulumi.CustomResourceOptions) => pulumi.dynamic.Resource & Outputs;

/** How one resource type of the library is served and what it keeps secret. */
export interface LibraryResourceType<Outputs> {
    /** The provider implementation's name (see `../providers/index.ts`). */
    readonly kind: string;
    /** The type name: `pulumi-nodejs:dynamic/amarktai:<type>`. */
    readonly type: string;
    /** Outputs the provider adds to the inputs. */
    readonly outputs: readonly (keyof Outputs & string)[];
    /** Properties kept secret in state: the connection (it holds the private key) and secret outputs. */
    readonly secretOutputs: readonly string[];
}

/** Makes the class of one library resource type. */
export function libraryResource<Args extends object, Outputs>(t: LibraryResourceType<Outputs>): LibraryResourceClass<Args, Outputs> {
    class Resource extends pulumi.dynamic.Resource {
        constructor(name: string, args: Args, opts?: pulumi.CustomResourceOptions) {
            const props: pulumi.Inputs = { ...args };
            for (const output of t.outputs) props[output] = undefined;
            super(providerStub(t.kind), name, props, { ...opts, additionalSecretOutputs: [...t.secretOutputs] }, MODULE, t.type);
        }
    }
    return Resource as unknown as LibraryResourceClass<Args, Outputs>;
}

/** Connection inputs; `privateKey` should be a secret Output. */
export type ConnectionInput = pulumi.Input<{ [K in keyof SshConnection]: pulumi.Input<SshConnection[K]> }>;

/** What every resource that works on a host takes. */
export interface HostArgs {
    /** How to reach the host; `privateKey` should be a secret Output. */
    connection: ConnectionInput;
}

