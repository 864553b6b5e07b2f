/**
 * The stack the operator works on: its validated config (hosts, pinned host
 * keys, the SSH key, the service's names and paths), read with the Pulumi
 * CLI from the stack's backend exactly as `pulumi up` reads it.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { ConfigError, HostConfig, SecretConfig, StackConfig, loadConfig } from "../config";
import { OperatedService, hostName } from "../model";
import { planOperatedService } from "../plan";
import { SshConnection } from "../transport";
import { OperatorArgs } from "./args";

/** A stack that cannot be read: the message says why and what to do. */
export class StackReadError extends Error {}

/** One host the operator runs on. */
export interface OperatedHost {
    /** Its `name`, else its address. */
    readonly name: string;
    readonly connection: SshConnection;
}

/** What the operator command knows of a stack. */
export interface OperatedStack {
    /** The project's name, the config namespace. */
    readonly project: string;
    readonly service: OperatedService;
    readonly hosts: readonly OperatedHost[];
    /** Hosts restarted at once (`rollout.maxUnavailable`). */
    readonly batchSize: number;
}

/** The project's name from `Pulumi.yaml` (its top-level `name:`). */
export function projectName(projectDir: string): string {
    const file = path.join(projectDir, "Pulumi.yaml");
    let text: string;
    try {
        text = fs.readFileSync(file, "utf8");
    } catch {
        throw new StackReadError(`no Pulumi.yaml in ${projectDir}: run in the project's directory or give -C DIR`);
    }
    const name = /^name:\s*["']?([A-Za-z0-9_.-]+)["']?\s*$/m.exec(text)?.[1];
    if (name === undefined) throw new StackReadError(`${file} has no top-level name:`);
    return name;
}

/** Runs the Pulumi CLI and returns its stdout; its stderr is the error's message on failure. */
function pulumiOutput(args: readonly string[], cwd: string): Promise<string> {
    return new Promise((resolve, reject) => {
        const child = spawn("pulumi", [...args, "--non-interactive"], { cwd, stdio: ["ignore", "pipe", "pipe"] });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout.on("data", (d: Buffer) => out.push(d));
        child.stderr.on("data", (d: Buffer) => err.push(d));
        child.on("error", (e) => reject(new StackReadError(`cannot run pulumi (${e.message}); install the Pulumi CLI or use scripts/ops in the checkout`)));
        child.on("close", (code) => {
            if (code === 0) resolve(Buffer.concat(out).toString("utf8"));
            else reject(new StackReadError(`pulumi ${args.slice(0, 2).join(" ")} failed: ${Buffer.concat(err).toString("utf8").trim()}`));
        });
    });
}

/**
 * The raw config values of `namespace` from `pulumi config --json
 * --show-secrets` (keys without the namespace, values as the program reads
 * them: text, objects as JSON text).
 */
export function rawConfigOf(json: string, namespace: string): Record<string, string> {
    const parsed = JSON.parse(json) as Record<string, { value?: unknown }>;
    const raw: Record<string, string> = {};
    for (const [key, entry] of Object.entries(parsed)) {
        if (!key.startsWith(`${namespace}:`) || entry.value === undefined) continue;
        raw[key.slice(namespace.length + 1)] = typeof entry.value === "string" ? entry.value : JSON.stringify(entry.value);
    }
    return raw;
}

/** The SSH connections of the stack's hosts, dialled for at most `connectSec`. */
export function operatedHosts(config: StackConfig, secrets: SecretConfig, connectSec: number): OperatedHost[] {
    return config.hosts.map((h: HostConfig) => ({
        name: hostName(h),
        connection: { host: h.address, port: h.port, user: h.user, privateKey: secrets.sshPrivateKey, hostKey: h.hostKey, waits: { ...config.timeouts, connectSec } },
    }));
}

/** Only the hosts `--host` names (all when none), or a usage error listing the stack's hosts. */
export function selectHosts(hosts: readonly OperatedHost[], names: readonly string[]): OperatedHost[] {
    if (names.length === 0) return [...hosts];
    const unknown = names.filter((n) => !hosts.some((h) => h.name === n || h.connection.host === n));
    if (unknown.length > 0) throw new StackReadError(`--host ${unknown.join(", ")}: not a host of this stack; its hosts are ${hosts.map((h) => h.name).join(", ")}`);
    return hosts.filter((h) => names.includes(h.name) || names.includes(h.connection.host));
}

/** Reads and validates the stack's config (every problem named, as `pulumi up` names them) and picks its hosts. */
export async function readOperatedStack(args: Pick<OperatorArgs, "stack" | "configFile" | "cwd" | "hosts" | "connectTimeoutSec">): Promise<OperatedStack> {
    const cwd = path.resolve(args.cwd ?? process.cwd());
    const project = projectName(cwd);
    const json = await pulumiOutput(["config", "--json", "--show-secrets", ...(args.stack ? ["--stack", args.stack] : []), ...(args.configFile ? ["--config-file", path.resolve(args.configFile)] : [])], cwd);
    let loaded: { config: StackConfig; secrets: SecretConfig };
    try {
        loaded = loadConfig(rawConfigOf(json, project), project);
    } catch (e) {
        if (e instanceof ConfigError) throw new StackReadError(e.message);
        throw e;
    }
    const hosts = selectHosts(operatedHosts(loaded.config, loaded.secrets, args.connectTimeoutSec), args.hosts);
    return { project, service: planOperatedService(loaded.config), hosts, batchSize: loaded.config.rollout.maxUnavailable };
}
