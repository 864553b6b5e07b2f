/**
 * `SystemdService`: the Pulumi component that runs a Python (uvicorn) API as a
 * hardened systemd service on one or more hosts over SSH.
 */
import * as pulumi from "@pulumi/pulumi";
import { HostConfig, StackConfig } from "../config";
import { hostKeyFingerprint, hostName, sha256 } from "../model";
import { AppSourceFile, envFileText, envFileView, planService } from "../plan";
import { HostFile, HostPrepare, RandomSecret, ServiceActivation } from "./resources";
import type { ActivationFile } from "./providers/service-activation";

/** A short content hash for change detection (64 bits: plenty to notice a change, short in previews). */
function shortHash(text: string): string {
    return sha256(text).slice(0, 16);
}

/** Arguments of {@link SystemdService}. */
export interface SystemdServiceArgs {
    /** The validated stack configuration (see `components/config`). */
    readonly config: StackConfig;
    /** The SSH private key; pass a secret. */
    readonly sshPrivateKey: pulumi.Input<string>;
    /** Secret `.env` entries; `JWT_SECRET` is generated when absent. */
    readonly secretEnv: pulumi.Input<Record<string, string>>;
    /** Files of the app to copy into the working directory (optional). */
    readonly appFiles?: readonly AppSourceFile[];
}

/** What one host ends up with. */
export interface HostOutputs {
    readonly name: string;
    readonly address: string;
    /** The health URL, as probed inside the host. */
    readonly healthUrl: string;
    /** When the last activation finished. */
    readonly activatedAt: pulumi.Output<string>;
}

/**
 * The resource names of one service on one host: `<component>-<host key
 * fingerprint>-<part>`. Only the pinned host key identifies the machine, so
 * renaming a host or changing its address, port or login keeps every name;
 * `aliases` adopt the names earlier releases used (`<component>-<host
 * name>-<part>`), so their state migrates without a delete or a create.
 */
export function hostResourceNaming(component: string, host: Pick<HostConfig, "name" | "address" | "hostKey">): { stem: string; name(part: string): string; opts(part: string): pulumi.CustomResourceOptions } {
    const stem = `${component}-${hostKeyFingerprint(host.hostKey)}`;
    const legacy = `${component}-${hostName(host)}`;
    return {
        stem,
        name: (part) => `${stem}-${part}`,
        opts: (part) => (legacy === stem ? {} : { aliases: [{ name: `${legacy}-${part}` }] }),
    };
}

/** The activations of the batch before the one host `index` is in (batches of `batchSize`, in host order). */
export function previousBatch<T>(activations: readonly T[], index: number, batchSize: number): T[] {
    const batch = Math.floor(index / batchSize);
    return batch === 0 ? [] : activations.slice((batch - 1) * batchSize, batch * batchSize);
}

/**
 * Runs the configured API as `<serviceName>.service` on every host: prepares
 * the host, stages each file (unit, drop-ins, journald drop-in, `.env`, app
 * files), then activates them with verification, one reload, at most one
 * restart, a health check, and rollback on failure.
 */
export class SystemdService extends pulumi.ComponentResource {
    /** Per-host results. */
    readonly hosts: HostOutputs[];
    /** The rendered unit file (no secrets). */
    readonly unitText: string;

    constructor(name: string, args: SystemdServiceArgs, opts?: pulumi.ComponentResourceOptions) {
        super("amarktai:index:SystemdService", name, {}, opts);
        const { config } = args;
        const plan = planService(config, args.appFiles);
        this.unitText = plan.systemd.unit.text;

        const privateKey = pulumi.secret(pulumi.output(args.sshPrivateKey));
        const connectionOf = (host: HostConfig) => ({ host: host.address, port: host.port, user: host.user, hostKey: host.hostKey, privateKey });
        const naming = config.hosts.map((host) => hostResourceNaming(name, host));
        // Who owns the service on each host: recorded there by the activation, checked by every delete.
        const ownerOf = (index: number) => `${pulumi.getProject()}/${pulumi.getStack()}/${naming[index]!.stem}`;
        const prepares = config.hosts.map((host, index) => {
            const n = naming[index]!;
            return new HostPrepare(
                n.name("prepare"),
                {
                    connection: connectionOf(host),
                    spec: plan.prepare,
                    adoptJwtFrom: config.paths.envFile,
                },
                { parent: this, ...n.opts("prepare") },
            );
        });

        const secretEnv = pulumi.output(args.secretEnv);
        const needsJwt = secretEnv.apply((s) => !("JWT_SECRET" in s));
        // Generated once per stack and shared by every host, so tokens stay valid across hosts.
        const jwt = new RandomSecret(`${name}-jwt-secret`, { bytes: 48 }, { parent: this });
        // JWT_SECRET: from config, else the one the (first) host already has, else generated once for the stack.
        const allSecretEnv = pulumi
            .all([secretEnv, jwt.value, needsJwt, prepares[0]!.adoptedJwtSecret])
            .apply(([s, generated, needs, adopted]) => (needs ? { ...s, JWT_SECRET: adopted || generated } : s));
        const envText = pulumi.secret(allSecretEnv.apply((s) => envFileText(config.env, s)));
        // What previews show for the .env: plain values, and a keyed fingerprint per secret (declassified on purpose).
        const fingerprintKey = new RandomSecret(`${name}-env-fingerprint-key`, { bytes: 32 }, { parent: this });
        const envView = pulumi.unsecret(pulumi.all([allSecretEnv, fingerprintKey.value]).apply(([s, key]) => envFileView(config.env, s, key)));

        const healthUrl = plan.healthUrl;
        const activationFiles: Record<string, ActivationFile> = Object.fromEntries(
            plan.files.map(({ file: { path, ...rest } }) => [path, rest]),
        );

        // Rolling update: the activations of batch k wait for every activation of batch k-1 (host order).
        const batchSize = config.rollout.maxUnavailable;
        const activations: ServiceActivation[] = [];
        this.hosts = config.hosts.map((host, index) => {
            const hname = hostName(host);
            const n = naming[index]!;
            const owner = ownerOf(index);
            const connection = connectionOf(host);
            const prepare = prepares[index]!;
            const contentHashes: Record<string, pulumi.Input<string>> = {};
            const staged = plan.files.map((pf) => {
                const isEnv = pf.file === plan.envFile;
                const content = isEnv ? envText : pulumi.output(pf.text ?? "");
                contentHashes[pf.file.path] = isEnv ? pulumi.secret(envText.apply(shortHash)) : shortHash(pf.text ?? "");
                const view = isEnv ? { view: envView } : {};
                return new HostFile(
                    n.name(pf.label),
                    { connection, service: config.serviceName, file: pf.file, content, ...view, owner },
                    { parent: this, dependsOn: [prepare], ...n.opts(pf.label) },
                );
            });
            const activation = new ServiceActivation(
                n.name("activation"),
                {
                    connection,
                    service: config.serviceName,
                    files: activationFiles,
                    contentHashes,
                    health: { url: healthUrl, timeoutSec: plan.healthTimeoutSec },
                    ...(plan.purge ? { purge: plan.purge } : {}),
                    owner,
                },
                { parent: this, dependsOn: [prepare, ...staged, ...previousBatch(activations, index, batchSize)], ...n.opts("activation") },
            );
            activations.push(activation);
            return { name: hname, address: host.address, healthUrl, activatedAt: activation.activatedAt };
        });
        this.registerOutputs({ hosts: this.hosts, unitText: this.unitText });
    }
}
