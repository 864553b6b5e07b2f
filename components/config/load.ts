/**
 * Turns raw stack configuration (what Pulumi hands the program) into the
 * validated spec, with errors that name the config key.
 */
import { z } from "zod";
import { hostName } from "../model";
import { SecretConfig, ServiceConfig, StackConfig, secretConfigSchema, serviceConfigSchema, stackConfigSchema } from "./schema";

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
            message = `unknown key(s) ${issue.keys.map((k) => `'${k}'`).join(", ")}; see the README's configuration reference`;
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

/** The keys of the plain and secret schemas, i.e. every config key the project reads. */
export const PLAIN_KEYS = Object.keys(stackConfigSchema.shape) as (keyof StackConfig)[];
/** The secret config keys. */
export const SECRET_KEYS = Object.keys(secretConfigSchema.shape) as (keyof SecretConfig)[];

/**
 * Validates raw values (`key → raw string`, as read from Pulumi config) for
 * both schemas at once, so one run reports every problem. Unknown keys in the
 * project namespace are refused too.
 */
export function loadConfig(rawByKey: Readonly<Record<string, string | undefined>>, namespace: string): { config: StackConfig; secrets: SecretConfig } {
    const plain: Record<string, unknown> = {};
    const secret: Record<string, unknown> = {};
    const problems: string[] = [];
    for (const [key, raw] of Object.entries(rawByKey)) {
        if (raw === undefined) {
            continue;
        }
        const value = decodeConfigValue(key, raw);
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
        const names = new Set<string>();
        plainResult.data.hosts.forEach((h, i) => {
            const name = hostName(h);
            if (names.has(name)) {
                problems.push(`${namespace}:hosts[${i}].name: '${name}' is used by another host; give each host a unique name`);
            }
            names.add(name);
        });
        // A machine is who its host key says it is: two entries with one key would fight over one service.
        const byKey = new Map<string, number>();
        plainResult.data.hosts.forEach((h, i) => {
            const key = h.hostKey.trim().split(/\s+/).slice(0, 2).join(" ");
            const first = byKey.get(key);
            if (first !== undefined) {
                problems.push(
                    `${namespace}:hosts[${i}].hostKey: hosts[${i}] ('${hostName(h)}') and hosts[${first}] ('${hostName(plainResult.data.hosts[first]!)}') have the same host key, so they reach one machine; keep one entry (change its address, port or name instead)`,
                );
            } else {
                byKey.set(key, i);
            }
        });
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
    return result.data;
}
