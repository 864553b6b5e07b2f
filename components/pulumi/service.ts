/**
 * `SystemdService`: the Pulumi component that runs a Python (uvicorn) API as a
 * hardened systemd service on one or more hosts over SSH.
 */
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { ConfigError, HostConfig, ServiceConfig, hostIdentityProblems, hostSchema, interpreterEnvProblems } from "../config";
import { HostWaits, hostKeyFingerprint, hostName, sha256 } from "../model";
import { AppSourceFile, ServicePlan, adoptionExpectations, adoptionSurveyTargets, envFileText, envFileView, planService, readAppSource } from "../plan";
import { AppRelease, HostAdoption, HostFile, HostPrepare, RandomSecret, ResolvedRequirements, ServiceActivation } from "./resources";
import { tarArchive } from "../host";
import * as path from "path";
import type { ActivationFile } from "./providers/service-activation";

/** A short content hash for change detection (64 bits: plenty to notice a change, short in previews). */
function shortHash(text: string): string {
    return sha256(text).slice(0, 16);
}

/**
 * One host to deploy to. Everything but `name` may be an Output of another
 * resource (say, the VM the same program creates), so one `pulumi up` can
 * create a machine and deploy onto it.
 */
export interface HostTarget {
    /**
     * A short, stable name (letters, digits, `.`, `_`, `-`). Resource names come from the host key's
     * fingerprint when `hostKey` is a plain string, else from this name, never from an Output's value:
     * it is required then, and must not change afterwards.
     */
    readonly name?: string;
    /** The address SSH connects to (IP or DNS name). */
    readonly address: pulumi.Input<string>;
    /** The SSH port; default 22. */
    readonly port?: pulumi.Input<number>;
    /** The SSH login: an ordinary user with passwordless sudo, or `root`; default `ubuntu`. */
    readonly user?: pulumi.Input<string>;
    /** The host's public key (`ssh-ed25519 AAAA…`), pinned: a host presenting another key is refused. */
    readonly hostKey: pulumi.Input<string>;
    /** The SSH private key for this host; default: the service's `sshPrivateKey`. Kept secret. */
    readonly privateKey?: pulumi.Input<string>;
    /**
     * Take over a hand-made install of the service notes on this host (see the config key `hosts[i].adopt`).
     * A plain value: it decides which resources exist.
     */
    readonly adopt?: boolean;
}

/** Arguments of {@link SystemdService}. */
export interface SystemdServiceArgs {
    /**
     * The service's settings: `serviceConfig({...})` in code, or the validated stack configuration
     * (`loadConfig`), whose `hosts` are used when `hosts` below is not given.
     */
    readonly config: ServiceConfig & { readonly hosts?: readonly HostConfig[] };
    /** The hosts, values or Inputs; default: `config.hosts`. */
    readonly hosts?: readonly HostTarget[];
    /** The SSH private key for every host without its own `privateKey`; pass a secret. */
    readonly sshPrivateKey?: pulumi.Input<string>;
    /** Secret `.env` entries; `JWT_SECRET` is generated when absent. */
    readonly secretEnv: pulumi.Input<Record<string, pulumi.Input<string>>>;
    /**
     * The app's files, deployed as part of each release exactly as given (with or without
     * `app.sourceDir`). Default: the files of `config.app.sourceDir` (relative to the program's
     * directory), when it is set; else none (a venv-only release).
     */
    readonly appFiles?: readonly AppSourceFile[];
}

/** What one host ends up with. */
export interface HostOutputs {
    /** The host's `name`, else its address. */
    readonly name: pulumi.Output<string>;
    readonly address: pulumi.Output<string>;
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
export function hostResourceNaming(
    component: string,
    host: Pick<HostTarget, "name" | "address" | "hostKey">,
): { stem: string; name(part: string): string; opts(part: string): pulumi.CustomResourceOptions } {
    if (typeof host.hostKey !== "string") {
        // The key is an Output (e.g. of the VM this program creates): name by the stable `name`, never by a value.
        if (!host.name) {
            throw new ConfigError([`amarktai-infra:hosts: a host whose hostKey comes from another resource needs a stable 'name' (resource names must not depend on Output values)`]);
        }
        const stem = `${component}-${host.name}`;
        return { stem, name: (part) => `${stem}-${part}`, opts: () => ({}) };
    }
    const stem = `${component}-${hostKeyFingerprint(host.hostKey)}`;
    const earlier = host.name ?? (typeof host.address === "string" ? hostName({ address: host.address }) : undefined);
    const legacy = earlier === undefined ? stem : `${component}-${earlier}`;
    return {
        stem,
        name: (part) => `${stem}-${part}`,
        opts: (part) => (legacy === stem ? {} : { aliases: [{ name: `${legacy}-${part}` }] }),
    };
}

/**
 * Checks one host value against the config schema: at once for a plain value,
 * when it resolves for an Output (an up then fails naming the key, before the
 * host is contacted).
 */
function checkedHostValue<T extends string | number>(index: number, key: keyof HostConfig, value: pulumi.Input<T>, schema: z.ZodType<T>): pulumi.Output<T> {
    const check = (v: T): T => {
        const result = schema.safeParse(v);
        if (!result.success) throw new ConfigError([`amarktai-infra:hosts[${index}].${key}: ${result.error.issues[0]!.message}`]);
        return result.data;
    };
    if (!pulumi.Output.isInstance(value) && !(value instanceof Promise)) check(value as T);
    return pulumi.output(value).apply((v) => check(v as T));
}

/** The namespace the component's errors name keys in (as the stack configuration's). */
const NAMESPACE = "amarktai-infra";

/**
 * The rules that span entries, for hosts and secrets given in code as well as
 * in the stack configuration (where `loadConfig` applies them first): no two
 * hosts on one machine (one host key, or one address and port), and no
 * `secretEnv` name that changes where the service's code comes from. Throws at
 * once for plain values; for Outputs, the returned Output fails when they
 * resolve, and every connection waits on it, so nothing reaches a host first.
 */
function crossEntryGuard(config: ServiceConfig, hosts: readonly HostTarget[], secretEnvArg: SystemdServiceArgs["secretEnv"], secretEnv: pulumi.Output<Record<string, string>>): pulumi.Output<true> {
    const check = (problems: string[]): true => {
        if (problems.length > 0) throw new ConfigError(problems);
        return true;
    };
    const asConfig = (h: { name?: string; address: string; port: number; user: string; hostKey: string }): HostConfig => ({ ...(h.name !== undefined ? { name: h.name } : {}), address: h.address, port: h.port, user: h.user, hostKey: h.hostKey });
    const plain = hosts.every((h) => [h.address, h.port, h.user, h.hostKey].every((v) => v === undefined || typeof v === "string" || typeof v === "number"));
    if (plain) {
        check(hostIdentityProblems(hosts.map((h) => asConfig({ name: h.name, address: h.address as string, port: (h.port as number | undefined) ?? 22, user: (h.user as string | undefined) ?? "ubuntu", hostKey: h.hostKey as string })), NAMESPACE));
    }
    const identity = plain
        ? pulumi.output(true as const)
        : pulumi
              .all(hosts.map((h) => pulumi.all([pulumi.output(h.address), pulumi.output(h.port ?? 22), pulumi.output(h.user ?? "ubuntu"), pulumi.output(h.hostKey)])))
              .apply((resolved) => check(hostIdentityProblems(resolved.map(([address, port, user, hostKey], i) => asConfig({ name: hosts[i]!.name, address, port, user, hostKey })), NAMESPACE)));
    // A plain object's names are known now, whatever its values are; an Output's only when it resolves.
    if (!pulumi.Output.isInstance(secretEnvArg) && !(secretEnvArg instanceof Promise)) {
        check(interpreterEnvProblems(config, Object.keys(secretEnvArg as Record<string, unknown>), NAMESPACE));
        return identity;
    }
    // Names only (never values): the check's result is not secret.
    const names = pulumi.unsecret(secretEnv.apply((s) => Object.keys(s)));
    return pulumi.all([identity, names]).apply(([, secretNames]) => check(interpreterEnvProblems(config, secretNames, NAMESPACE)));
}

/** The SSH connection inputs of one host, validated; the private key is always a secret. */
function connectionOf(host: HostTarget, index: number, defaultKey: pulumi.Input<string> | undefined, waits: HostWaits, guard: pulumi.Output<true>) {
    const key = host.privateKey ?? defaultKey;
    if (key === undefined) throw new ConfigError([`amarktai-infra:hosts[${index}]: no SSH private key (set the service's sshPrivateKey or the host's privateKey)`]);
    const shape = hostSchema.shape;
    return {
        // Every resource's connection waits on the cross-entry rules: a violation fails the up before any SSH session.
        host: pulumi.all([checkedHostValue(index, "address", host.address, shape.address), guard]).apply(([address]) => address),
        port: checkedHostValue(index, "port", host.port ?? 22, shape.port.unwrap()),
        user: checkedHostValue(index, "user", host.user ?? "ubuntu", shape.user.unwrap()),
        hostKey: checkedHostValue(index, "hostKey", host.hostKey, shape.hostKey),
        privateKey: pulumi.secret(pulumi.output(key)),
        waits,
    };
}

/** The activations of the batch before the one host `index` is in (batches of `batchSize`, in host order). */
export function previousBatch<T>(activations: readonly T[], index: number, batchSize: number): T[] {
    const batch = Math.floor(index / batchSize);
    return batch === 0 ? [] : activations.slice((batch - 1) * batchSize, batch * batchSize);
}

/**
 * What of a plan depends on the requirements' lock: the release (its id
 * covers the lock), its archive's hash, the requirements it installs, and
 * the links into it. Plain data (an Output of it crosses to the resources).
 */
function lockedParts(plan: ServicePlan) {
    const { id, releasesDir, venvLink, appLink, keep } = plan.release.spec;
    return {
        spec: plan.release.spec,
        archiveSha256: sha256(tarArchive(plan.release.entries)),
        requirements: plan.release.preview.requirements,
        links: Object.fromEntries(plan.links.map((l) => [l.path, l.target])),
        activationRelease: { id, releasesDir, venvLink, ...(appLink ? { appLink } : {}), keep },
    };
}

/**
 * Runs the configured API as `<serviceName>.service` on every host: prepares
 * the host, builds the release (app files + venv) beside the live one, stages
 * each file (unit, drop-ins, journald drop-in, `.env`), then activates them
 * batch by batch with verification, one reload, the switch to the release,
 * at most one restart, a health check, and rollback on failure.
 */
export class SystemdService extends pulumi.ComponentResource {
    /** Per-host results. */
    readonly hosts: HostOutputs[];
    /** The rendered unit file (no secrets). */
    readonly unitText: string;
    /**
     * What every host installs, `name==version`: the resolved set (`releases.reproducible`), else the
     * requirements as written.
     */
    readonly packages: pulumi.Output<string[]>;

    constructor(name: string, args: SystemdServiceArgs, opts?: pulumi.ComponentResourceOptions) {
        super("amarktai:index:SystemdService", name, {}, opts);
        const { config } = args;
        const hosts: readonly HostTarget[] = args.hosts ?? config.hosts ?? [];
        if (hosts.length === 0) throw new ConfigError(["amarktai-infra:hosts: must list at least one host"]);
        const appFiles = args.appFiles ?? (config.app.sourceDir !== undefined ? readAppSource(config.app.sourceDir) : []);
        const plan = planService(config, appFiles);
        this.unitText = plan.systemd.unit.text;

        const secretEnv = pulumi.output(args.secretEnv);
        const guard = crossEntryGuard(config, hosts, args.secretEnv, secretEnv);
        const connections = hosts.map((host, index) => connectionOf(host, index, args.sshPrivateKey, config.timeouts, guard));
        // Resources take each connection as one secret: previews show it as one line, `connection: [secret]`, instead of
        // thirteen unchanged lines on every updated resource (the host is named by the resource and the stack's outputs).
        const quietConnections = connections.map((c) => pulumi.secret(c));
        const connectionOfIndex = (index: number) => quietConnections[index]!;
        const naming = hosts.map((host) => hostResourceNaming(name, host));
        // Who owns the service on each host: recorded there by the activation, checked by every delete.
        const ownerOf = (index: number) => `${pulumi.getProject()}/${pulumi.getStack()}/${naming[index]!.stem}`;
        // Hosts with `adopt`: the hand-made install is surveyed (preview) and taken over (up) before the preparation.
        const adoptionExpected = pulumi.secret(
            pulumi.output(args.secretEnv).apply((s) => ({ ...adoptionExpectations(config, plan, Object.keys(s).sort()), allowInterpreterEnv: config.allowInterpreterEnv })),
        );
        const adoptions = hosts.map((host, index) => {
            if (!host.adopt) return undefined;
            const n = naming[index]!;
            return new HostAdoption(
                n.name("adoption"),
                {
                    connection: connectionOfIndex(index),
                    spec: adoptionSurveyTargets(config, plan),
                    expected: adoptionExpected,
                },
                { parent: this },
            );
        });
        const prepares = hosts.map((_host, index) => {
            const n = naming[index]!;
            const adoption = adoptions[index];
            return new HostPrepare(
                n.name("prepare"),
                {
                    connection: connectionOfIndex(index),
                    spec: plan.prepare,
                    adoptJwtFrom: config.paths.envFile,
                },
                { parent: this, ...n.opts("prepare"), ...(adoption ? { dependsOn: [adoption] } : {}) },
            );
        });

        const needsJwt = secretEnv.apply((s) => !("JWT_SECRET" in s));
        // Generated once per stack and shared by every host, so tokens stay valid across hosts.
        const jwt = new RandomSecret(`${name}-jwt-secret`, { bytes: 48 }, { parent: this });
        // JWT_SECRET: from config, else the one the (first) host already has, else generated once for the stack.
        const allSecretEnv = pulumi
            .all([secretEnv, jwt.value, needsJwt, prepares[0]!.adoptedJwtSecret])
            .apply(([s, generated, needs, adopted]) => (needs ? { ...s, JWT_SECRET: adopted || generated } : s));
        // An adopted host keeps the hand-made .env's values the config does not set (its own JWT_SECRET included): the
        // other hosts share one .env.
        const adoptedSecretEnv = (adoption: HostAdoption) => {
            // What the config sets wins (checked again here: the config may have gained a name since the adoption).
            return pulumi.all([allSecretEnv, secretEnv, adoption.carriedEnv]).apply(([s, configured, carried]) => ({
                ...s,
                ...Object.fromEntries(Object.entries(carried ?? {}).filter(([k]) => !(k in config.env) && !(k in configured))),
            }));
        };
        // What previews show for the .env: plain values, and a keyed fingerprint per secret (declassified on purpose).
        const fingerprintKey = new RandomSecret(`${name}-env-fingerprint-key`, { bytes: 32 }, { parent: this });
        /** A .env's text (secret), its reviewer view, and its secret key names (never values: a failed start's journal excerpt is redacted by them on the host). */
        const envOutputs = (env: pulumi.Output<Record<string, string>>) => ({
            text: pulumi.secret(env.apply((s) => envFileText(config.env, s))),
            view: pulumi.unsecret(pulumi.all([env, fingerprintKey.value]).apply(([s, key]) => envFileView(config.env, s, key))),
            secretKeys: pulumi.unsecret(env.apply((s) => [...new Set([...Object.keys(s), "JWT_SECRET"])].sort())),
        });
        // Rendered once for every host without an adoption, once per adopted host.
        const sharedEnv = envOutputs(allSecretEnv);
        const envOf = (index: number) => {
            const adoption = adoptions[index];
            return adoption ? envOutputs(adoptedSecretEnv(adoption)) : sharedEnv;
        };

        const healthUrl = plan.healthUrl;
        const release = plan.release;
        // Resolved once per change on the first host (once it is prepared); every host then builds its release from the lock.
        const resolution = release.resolution
            ? new ResolvedRequirements(`${name}-requirements`, { connection: connectionOfIndex(0), service: config.serviceName, resolution: release.resolution }, { parent: this, dependsOn: [prepares[0]!] })
            : undefined;
        const locked = resolution ? resolution.resolved.apply((lock) => lockedParts(planService(config, appFiles, lock))) : pulumi.output(lockedParts(plan));
        this.packages = resolution ? resolution.packages : pulumi.output(release.preview.requirements.split("\n").map((l) => l.replace(/(^|\s)#.*$/, "").trim()).filter((l) => l !== ""));
        const activationFiles: Record<string, ActivationFile> = Object.fromEntries(
            plan.files.map(({ file: { path, ...rest } }) => [path, rest]),
        );

        // Rolling update: the activations of batch k wait for every activation of batch k-1 (host order).
        const batchSize = config.rollout.maxUnavailable;
        const activations: ServiceActivation[] = [];
        this.hosts = hosts.map((host, index) => {
            const n = naming[index]!;
            const owner = ownerOf(index);
            const connection = connectionOfIndex(index);
            const prepare = prepares[index]!;
            const { text: envText, view: envView, secretKeys: secretEnvKeys } = envOf(index);
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
            // Built as soon as the host is prepared, on every host in parallel; the activation switches to it batch by batch.
            const built = new AppRelease(
                n.name("release"),
                {
                    connection,
                    service: config.serviceName,
                    release: locked.spec,
                    ...(config.app.sourceDir !== undefined ? { sourceDir: path.resolve(config.app.sourceDir) } : {}),
                    archiveSha256: locked.archiveSha256,
                    files: release.preview.files,
                    executables: release.preview.executables,
                    requirements: locked.requirements,
                    ...(Object.keys(release.preview.blobs).length > 0 ? { blobs: release.preview.blobs } : {}),
                },
                { parent: this, dependsOn: [prepare] },
            );
            const activation = new ServiceActivation(
                n.name("activation"),
                {
                    connection,
                    service: config.serviceName,
                    files: activationFiles,
                    links: locked.links,
                    account: { user: config.user, group: config.group },
                    contentHashes,
                    health: { url: healthUrl, timeoutSec: plan.healthTimeoutSec },
                    ...(plan.purge ? { purge: plan.purge } : {}),
                    owner,
                    foreignDropIns: config.foreignDropIns,
                    secretEnvKeys,
                    release: locked.activationRelease,
                },
                { parent: this, dependsOn: [prepare, built, ...staged, ...previousBatch(activations, index, batchSize)], ...n.opts("activation") },
            );
            activations.push(activation);
            const address = pulumi.output(connections[index]!.host);
            return { name: host.name !== undefined ? pulumi.output(host.name) : address, address, healthUrl, activatedAt: activation.activatedAt };
        });
        this.registerOutputs({ hosts: this.hosts, unitText: this.unitText, packages: this.packages });
    }
}
