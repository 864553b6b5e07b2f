/**
 * Turns raw stack configuration (what Pulumi hands the program) into the
 * validated spec, with errors that name the config key.
 */
import { z } from "zod";
import { hostName } from "../model";
import { LIMITS, envEntryBytes, interpreterEnvReason, isWithin, normalizePath, systemAccount } from "./boundary";
import { HostConfig, SecretConfig, ServiceConfig, StackConfig, secretConfigSchema, serviceConfigSchema, stackConfigSchema } from "./schema";

/** A configuration error: its message lists every bad key with what is allowed. */
export class ConfigError extends Error {
    /** One line per problem, each starting with the full config key. */
    readonly problems: readonly string[];
    constructor(problems: readonly string[]) {
        super(`invalid stack configuration:\n  - ${problems.join("\n  - ")}`);
        this.name = "ConfigError";
        this.problems = problems;
    }
}

/** Formats zod issues as `namespace:key.path: message` lines. Values are never echoed. */
export function describeIssues(error: z.ZodError, namespace: string): string[] {
    return error.issues.map((issue) => {
        const [top, ...rest] = issue.path.map(String);
        let key = top === undefined ? namespace : `${namespace}:${top}`;
        for (const part of rest) {
            key += /^\d+$/.test(part) ? `[${part}]` : `.${part}`;
        }
        let message = issue.message;
        if (issue.code === "invalid_key") {
            const inner = issue.issues.map((i) => i.message).join("; ");
            message = `key '${String(issue.path[issue.path.length - 1])}' ${inner}`;
        } else if (issue.code === "unrecognized_keys") {
            message = `unknown key(s) ${issue.keys.map((k) => `'${k}'`).join(", ")}; see docs/configuration.md`;
        }
        return `${key}: ${message}`;
    });
}

/** Top-level keys whose values are plain strings: never JSON-decoded. */
const STRING_KEYS = new Set(["serviceName", "description", "documentation", "user", "group", "hardening", "sshPrivateKey"]);

/**
 * Decodes one raw config value: Pulumi hands structured values to the
 * program as JSON text and plain values as strings.
 */
export function decodeConfigValue(key: string, raw: string): unknown {
    if (STRING_KEYS.has(key)) {
        return raw;
    }
    try {
        return JSON.parse(raw);
    } catch {
        return raw;
    }
}

/**
 * `pulumi config set --path 'env.FLAG' true` stores a boolean, and `1` a
 * number: an environment value given so is taken as its text (`"true"`,
 * `"1"`). A number whose text Pulumi may have rewritten (a fraction, or an
 * integer beyond 2^53, which it stores as a float) is refused: the text that
 * was typed is no longer known. Applies to `env` and to each override's
 * `environment`; secret values are always text.
 */
export function envScalarsAsText(key: string, value: unknown, namespace: string, problems: string[]): unknown {
    const asText = (map: unknown, path: string): unknown => {
        if (typeof map !== "object" || map === null || Array.isArray(map)) return map;
        return Object.fromEntries(
            Object.entries(map).map(([name, v]) => {
                if (typeof v === "boolean" || (typeof v === "number" && Number.isSafeInteger(v))) return [name, String(v)];
                if (typeof v === "number") {
                    problems.push(`${namespace}:${path}.${name}: is a number whose exact text is lost (Pulumi stores fractions and integers beyond 2^53 as floats); quote it in the stack file, or set it with --type string`);
                    return [name, String(v)];
                }
                return [name, v];
            }),
        );
    };
    if (key === "env") return asText(value, "env");
    if (key === "overrides" && typeof value === "object" && value !== null && !Array.isArray(value)) {
        return Object.fromEntries(
            Object.entries(value).map(([o, override]) => {
                if (typeof override !== "object" || override === null || !("environment" in override)) return [o, override];
                return [o, { ...override, environment: asText((override as { environment: unknown }).environment, `overrides.${o}.environment`) }];
            }),
        );
    }
    return value;
}

/** The keys of the plain and secret schemas, i.e. every config key the project reads. */
export const PLAIN_KEYS = Object.keys(stackConfigSchema.shape) as (keyof StackConfig)[];
/** The secret config keys. */
export const SECRET_KEYS = Object.keys(secretConfigSchema.shape) as (keyof SecretConfig)[];

/**
 * Cross-key rules of the privilege boundary: system accounts only with
 * `allowExistingUser`; the service's directories neither equal nor nested
 * in one another (except the working directory, which lives in `paths.app`),
 * and the `.env` directly in the working directory or the app directory.
 * One line per problem, each naming its key.
 */
export function boundaryProblems(config: ServiceConfig, namespace: string): string[] {
    const problems: string[] = [];
    for (const key of ["user", "group"] as const) {
        const hit = systemAccount(config[key]);
        if (hit !== undefined && !config.allowExistingUser) {
            problems.push(
                `${namespace}:${key}: '${config[key]}' is a system account (${hit.endsWith("-") || hit.endsWith("_") ? `${hit}*` : hit}); use an account of the service's own such as 'amarktai', or set allowExistingUser: true if you really mean to run as it`,
            );
        }
    }
    const p = {
        app: normalizePath(config.paths.app),
        workingDirectory: normalizePath(config.paths.workingDirectory),
        venv: normalizePath(config.paths.venv),
        logs: normalizePath(config.paths.logs),
        releases: normalizePath(config.paths.releases),
        envFile: normalizePath(config.paths.envFile),
    };
    const separate = ["app", "venv", "logs", "releases"] as const;
    for (const a of separate) {
        for (const b of separate) {
            if (a !== b && isWithin(p[a], p[b]) && (p[a] !== p[b] || a < b)) {
                problems.push(`${namespace}:paths.${a}: ${p[a]} ${p[a] === p[b] ? "is the same directory as" : "is inside"} paths.${b} (${p[b]}); app, venv, logs and releases must be separate directories, none inside another`);
            }
        }
    }
    if (!isWithin(p.workingDirectory, p.app)) {
        problems.push(`${namespace}:paths.workingDirectory: ${p.workingDirectory} must be paths.app (${p.app}) or a directory inside it`);
    }
    const envDir = p.envFile.slice(0, p.envFile.lastIndexOf("/")) || "/";
    if (envDir !== p.workingDirectory && envDir !== p.app) {
        problems.push(`${namespace}:paths.envFile: ${p.envFile} must be a file directly in paths.workingDirectory (${p.workingDirectory}) or paths.app (${p.app})`);
    }
    for (const key of ["app", "workingDirectory", "venv", "logs", "releases"] as const) {
        if (p.envFile === p[key]) {
            problems.push(`${namespace}:paths.envFile: ${p.envFile} is the directory paths.${key}; it must be a file`);
        }
    }
    return problems;
}

/**
 * Size rules (see {@link LIMITS}): each environment entry and all of them
 * together, and the command line, so a value that cannot be exec'd is
 * refused before any host is touched. Values are never echoed.
 */
export function limitProblems(config: ServiceConfig, secrets: SecretConfig, namespace: string): string[] {
    const problems: string[] = [];
    let total = 0;
    const entry = (key: string, name: string, value: string) => {
        const bytes = envEntryBytes(name, value);
        total += bytes;
        if (bytes > LIMITS.envEntryBytes) {
            problems.push(`${namespace}:${key}: the entry is ${bytes} bytes; one environment entry (NAME=value) may be at most ${LIMITS.envEntryBytes} bytes (the kernel refuses more than 131072 at exec)`);
        }
    };
    for (const [name, value] of Object.entries(config.env)) entry(`env.${name}`, name, value);
    for (const [name, value] of Object.entries(secrets.secretEnv)) entry(`secretEnv.${name}`, name, value);
    for (const [o, override] of Object.entries(config.overrides)) {
        for (const [name, value] of Object.entries(override.environment ?? {})) entry(`overrides.${o}.environment.${name}`, name, value);
    }
    // The longest ExecStart= any drop-in can produce (workers and the longest log level included).
    const command = `${config.paths.venv}/bin/python -m uvicorn ${config.app.module} --host ${config.app.bindHost} --port ${config.app.port} --workers 64 --timeout-worker-healthcheck ${config.app.workerHealthcheckTimeoutSec} --log-level critical`;
    if (Buffer.byteLength(command, "utf8") > LIMITS.commandLineBytes) {
        problems.push(`${namespace}:paths.venv: with app.module the service's command line is ${Buffer.byteLength(command, "utf8")} bytes; it may be at most ${LIMITS.commandLineBytes} bytes`);
    }
    if (total > LIMITS.envTotalBytes) {
        problems.push(`${namespace}:env: env, secretEnv and overrides.*.environment add up to ${total} bytes; the service's environment may be at most ${LIMITS.envTotalBytes} bytes in all`);
    }
    return problems;
}

/**
 * The environment rule: names that change where the service's code comes
 * from (see `INTERPRETER_ENV` in `boundary.ts`) are refused in `env`,
 * `secretEnv` and `overrides.*.environment` unless `allowInterpreterEnv`
 * lists them; an `allowInterpreterEnv` entry that allows nothing is refused
 * too (a misspelt name would otherwise look like a permission).
 */
export function interpreterEnvProblems(config: ServiceConfig, secretEnvNames: readonly string[], namespace: string): string[] {
    const problems: string[] = [];
    const allowed = new Set(config.allowInterpreterEnv);
    const check = (key: string, name: string) => {
        const why = interpreterEnvReason(name);
        if (why !== undefined && !allowed.has(name)) {
            problems.push(
                `${namespace}:${key}: ${name} may not be set: ${why}. It could undo "the service cannot change its own code"; if it points only at root-owned files, allow it with allowInterpreterEnv: ["${name}"]`,
            );
        }
    };
    for (const name of Object.keys(config.env)) check(`env.${name}`, name);
    for (const name of secretEnvNames) check(`secretEnv.${name}`, name);
    for (const [o, override] of Object.entries(config.overrides)) {
        for (const name of Object.keys(override.environment ?? {})) check(`overrides.${o}.environment.${name}`, name);
    }
    config.allowInterpreterEnv.forEach((name, i) => {
        if (interpreterEnvReason(name) === undefined) {
            problems.push(`${namespace}:allowInterpreterEnv[${i}]: ${name} is allowed without it; list only names env refuses (PATH, LD_*, PYTHONPATH and the other PYTHON* that load code, UVICORN_*, …)`);
        }
    });
    return problems;
}

/**
 * The address a host entry connects to, as one string per endpoint: DNS
 * names lower-cased without a trailing dot, IP addresses in their canonical
 * form (`127.1` and `127.0.0.1`, `::1` and `0:0::1` are one endpoint).
 */
export function canonicalAddress(address: string): string {
    const name = address.toLowerCase().replace(/\.$/, "");
    try {
        // http: URL parsing canonicalizes IPv4 shorthand (127.1) only for special schemes.
        return new URL(`http://${name.includes(":") ? `[${name}]` : name}`).hostname;
    } catch {
        return name;
    }
}

/**
 * Host identity rules: a machine is who its host key says it is, and what an
 * address and port reach. Two entries with one host key, or with one address
 * and port (whichever of the machine's several host keys, ed25519, ECDSA or
 * RSA, each pins), would deploy to one machine twice and fight over one service.
 */
export function hostIdentityProblems(hosts: readonly HostConfig[], namespace: string): string[] {
    const problems: string[] = [];
    const names = new Set<string>();
    const byKey = new Map<string, number>();
    const byEndpoint = new Map<string, number>();
    hosts.forEach((h, i) => {
        const name = hostName(h);
        if (names.has(name)) {
            problems.push(`${namespace}:hosts[${i}].name: '${name}' is used by another host; give each host a unique name`);
        }
        names.add(name);
        const other = (first: number) => `hosts[${i}] ('${name}') and hosts[${first}] ('${hostName(hosts[first]!)}')`;
        const key = h.hostKey.trim().split(/\s+/).slice(0, 2).join(" ");
        const sameKey = byKey.get(key);
        if (sameKey !== undefined) {
            problems.push(`${namespace}:hosts[${i}].hostKey: ${other(sameKey)} have the same host key, so they reach one machine; keep one entry (change its address, port or name instead)`);
        } else {
            byKey.set(key, i);
        }
        const endpoint = `${canonicalAddress(h.address)} port ${h.port}`;
        const sameEndpoint = byEndpoint.get(endpoint);
        if (sameEndpoint !== undefined) {
            problems.push(
                `${namespace}:hosts[${i}].address: ${other(sameEndpoint)} both connect to ${h.address} port ${h.port}, so they reach one machine (a machine has several host keys, ed25519, ECDSA and RSA, so different pinned keys do not make it two); keep one entry per address and port`,
            );
        } else {
            byEndpoint.set(endpoint, i);
        }
    });
    return problems;
}

/** How a config key was stored: which keys Pulumi holds as secrets. */
export interface ConfigSecrecy {
    /** True when the key (without namespace) holds a secret value in the stack config. */
    isSecret(key: string): boolean;
}

/** The exact command that stores each entry of a plaintext secret key as a secret. */
function setSecretCommand(key: string, value: unknown): string {
    if (key === "sshPrivateKey") {
        return "pulumi config set --secret sshPrivateKey < ~/.ssh/YOUR_DEPLOY_KEY";
    }
    const names = value && typeof value === "object" ? Object.keys(value as object) : [];
    const entries = (names.length > 0 ? names : ["NAME"]).map((n) => `pulumi config set --secret --path '${key}.${n}'`);
    return `${entries.join(" ; ")} (each prompts for its value, or reads it on stdin)`;
}

/** Whether a decoded config value is `{}`. */
function isEmptyObject(value: unknown): boolean {
    return typeof value === "object" && value !== null && !Array.isArray(value) && Object.keys(value).length === 0;
}

/**
 * Secrecy rules: a secret key stored as plaintext is refused with the command
 * that fixes it; a plain key holding a secret value is refused with where the
 * value belongs (a plain key's value is shown in previews and written to the
 * state in plain text, and `Environment=` lines are readable by any user
 * through `systemctl show`).
 */
export function secrecyProblems(rawByKey: Readonly<Record<string, string | undefined>>, secrecy: ConfigSecrecy, namespace: string): string[] {
    const problems: string[] = [];
    for (const [key, raw] of Object.entries(rawByKey)) {
        if (raw === undefined) continue;
        const secret = secrecy.isSecret(key);
        // An empty map (Pulumi.yaml's default `secretEnv: {}`) holds nothing to protect.
        if ((SECRET_KEYS as string[]).includes(key) && !secret && !isEmptyObject(decodeConfigValue(key, raw))) {
            problems.push(`${namespace}:${key}: is stored in plain text in the stack config (and would be in the state); set it as a secret instead: ${setSecretCommand(key, decodeConfigValue(key, raw))}`);
        } else if ((PLAIN_KEYS as string[]).includes(key) && secret) {
            const where =
                key === "env" || key === "overrides"
                    ? `a secret value belongs in secretEnv (pulumi config set --secret --path 'secretEnv.NAME'), which is written only to the root-owned .env; ${key === "overrides" ? "Environment= lines in a drop-in are readable by every user (systemctl show)" : "env holds plain entries only"}`
                    : `${key} is not a secret setting; set it without --secret (pulumi config set ${key} …)`;
            problems.push(`${namespace}:${key}: holds a value set with --secret, but ${key} is shown in previews and kept in plain text in the state; ${where}`);
        }
    }
    return problems;
}

/**
 * Validates raw values (`key → raw string`, as read from Pulumi config) for
 * both schemas at once, so one run reports every problem. Unknown keys in the
 * project namespace are refused too.
 */
export function loadConfig(
    rawByKey: Readonly<Record<string, string | undefined>>,
    namespace: string,
    secrecy?: ConfigSecrecy,
): { config: StackConfig; secrets: SecretConfig } {
    const plain: Record<string, unknown> = {};
    const secret: Record<string, unknown> = {};
    const problems: string[] = secrecy ? secrecyProblems(rawByKey, secrecy, namespace) : [];
    for (const [key, raw] of Object.entries(rawByKey)) {
        if (raw === undefined) {
            continue;
        }
        const value = envScalarsAsText(key, decodeConfigValue(key, raw), namespace, problems);
        if ((PLAIN_KEYS as string[]).includes(key)) {
            plain[key] = value;
        } else if ((SECRET_KEYS as string[]).includes(key)) {
            secret[key] = value;
        } else {
            problems.push(`${namespace}:${key}: unknown config key; known keys: ${[...PLAIN_KEYS, ...SECRET_KEYS].join(", ")}`);
        }
    }
    const plainResult = stackConfigSchema.safeParse(plain);
    if (!plainResult.success) {
        problems.push(...describeIssues(plainResult.error, namespace));
    }
    const secretResult = secretConfigSchema.safeParse(secret);
    if (!secretResult.success) {
        problems.push(...describeIssues(secretResult.error, namespace));
    }
    if (plainResult.success) {
        const overlapping = Object.keys(plainResult.data.env).filter((k) => secretResult.success && k in secretResult.data.secretEnv);
        for (const k of overlapping) {
            problems.push(`${namespace}:env.${k}: also set in secretEnv; set each .env key in one place only`);
        }
        const app = plainResult.data.app;
        if (app.requirementsFile !== undefined && app.sourceDir === undefined) {
            problems.push(`${namespace}:app.requirementsFile: needs app.sourceDir (the file is read from the app's directory)`);
        }
        problems.push(...hostIdentityProblems(plainResult.data.hosts, namespace));
        problems.push(...boundaryProblems(plainResult.data, namespace));
        if (secretResult.success) {
            problems.push(...interpreterEnvProblems(plainResult.data, Object.keys(secretResult.data.secretEnv), namespace));
            problems.push(...limitProblems(plainResult.data, secretResult.data, namespace));
        }
    }
    if (problems.length > 0 || !plainResult.success || !secretResult.success) {
        throw new ConfigError(problems);
    }
    return { config: plainResult.data, secrets: secretResult.data };
}

/**
 * Validates service settings given in code (every stack key but `hosts`, as a
 * plain object; omitted keys take the notes' defaults), for programs that use
 * `SystemdService` with their own hosts. Throws a {@link ConfigError} naming
 * each bad key, as `amarktai-infra:<key>`.
 */
export function serviceConfig(settings: Readonly<Record<string, unknown>> = {}, namespace = "amarktai-infra"): ServiceConfig {
    const result = serviceConfigSchema.safeParse(settings);
    if (!result.success) throw new ConfigError(describeIssues(result.error, namespace));
    const problems = [...boundaryProblems(result.data, namespace), ...interpreterEnvProblems(result.data, [], namespace), ...limitProblems(result.data, { sshPrivateKey: "", secretEnv: {} }, namespace)];
    if (problems.length > 0) throw new ConfigError(problems);
    return result.data;
}
