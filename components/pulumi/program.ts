/**
 * The Pulumi program: reads the stack configuration, validates all of it
 * before any resource exists (so a bad value never reaches a host), and
 * instantiates the Amarktai API service.
 */
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, ConfigSecrecy, SecretConfig, StackConfig, loadConfig } from "../config";
import { AppSourceFile, readAppSource } from "../plan";
import { CONFIG_SECRET_KEYS_ENV } from "./config-secret-keys";
import { packageRoot, staleBuildMessage } from "./fresh-build";
import { SystemdService } from "./service";

/** Reads every config value of the project's namespace, keyed without the namespace. */
export function readRawConfig(namespace: string): Record<string, string> {
    const raw: Record<string, string> = {};
    for (const [key, value] of Object.entries(pulumi.runtime.allConfig())) {
        if (key.startsWith(`${namespace}:`)) {
            raw[key.slice(namespace.length + 1)] = value;
        }
    }
    return raw;
}

export { CONFIG_SECRET_KEYS_ENV };

/**
 * Which of the project's keys Pulumi holds as secrets (set with `--secret`,
 * or from an ESC `fn::secret`), from {@link CONFIG_SECRET_KEYS_ENV}; or
 * `undefined` when the program was not told (the variable is unset, as
 * under the Automation API's own inline-program server), so the secrecy
 * rules cannot be applied. Empty or `null` means no key is secret, as the
 * SDK reads it.
 */
export function configSecrecy(namespace: string, env: NodeJS.ProcessEnv = process.env): ConfigSecrecy | undefined {
    const raw = env[CONFIG_SECRET_KEYS_ENV];
    if (raw === undefined) return undefined;
    let parsed: unknown;
    try {
        parsed = raw.trim() === "" ? [] : JSON.parse(raw);
    } catch {
        parsed = undefined;
    }
    if (parsed === null) parsed = [];
    if (!Array.isArray(parsed) || !parsed.every((k) => typeof k === "string")) {
        throw new pulumi.RunError(`${CONFIG_SECRET_KEYS_ENV} is not a JSON array of config keys, so which keys are secret is unknown; run the program with the Pulumi CLI or scripts/pulumi`);
    }
    const secretKeys = new Set<string>(parsed);
    return { isSecret: (key) => secretKeys.has(`${namespace}:${key}`) };
}

/** Said once when the secrecy rules cannot be applied (see {@link configSecrecy}). */
export const SECRECY_UNKNOWN_WARNING =
    `which config keys are secret is not known here (${CONFIG_SECRET_KEYS_ENV} is not set): a value set with --secret in a plain key (env, overrides, …) is not refused, and sshPrivateKey or secretEnv stored in plain text is not reported (sshPrivateKey and secretEnv are still kept secret in the state)`;

/** The validated configuration, or a RunError that lists every bad key (no stack trace, no host touched). */
export function validatedConfig(namespace: string): { config: StackConfig; secrets: SecretConfig } {
    try {
        const secrecy = configSecrecy(namespace);
        if (secrecy === undefined) void pulumi.log.warn(SECRECY_UNKNOWN_WARNING);
        return loadConfig(readRawConfig(namespace), namespace, secrecy);
    } catch (e) {
        if (e instanceof ConfigError) {
            throw new pulumi.RunError(e.message);
        }
        throw e;
    }
}

/** The program: returns the stack outputs. */
export function main(): Record<string, unknown> {
    // Never run code older than the checkout's sources (an installed package has none to compare).
    const root = packageRoot(__dirname);
    const stale = root === undefined ? undefined : staleBuildMessage(root);
    if (stale) throw new pulumi.RunError(stale);
    const namespace = pulumi.getProject();
    const { config, secrets } = validatedConfig(namespace);
    let appFiles: AppSourceFile[] = [];
    try {
        appFiles = config.app.sourceDir ? readAppSource(config.app.sourceDir) : [];
    } catch (e) {
        if (e instanceof ConfigError) throw new pulumi.RunError(`invalid stack configuration: ${namespace}:${e.problems[0]}`);
        throw e;
    }
    const service = new SystemdService(config.serviceName, {
        config,
        sshPrivateKey: pulumi.secret(secrets.sshPrivateKey),
        secretEnv: pulumi.secret(secrets.secretEnv),
        appFiles,
    });
    return {
        unitName: `${config.serviceName}.service`,
        hosts: service.hosts,
        // One line: previews print every output whenever one changes.
        packages: service.packages.apply((p) => p.join(" ")),
    };
}
