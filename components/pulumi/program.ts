/**
 * The Pulumi program: reads the stack configuration, validates all of it
 * before any resource exists (so a bad value never reaches a host), and
 * instantiates the Amarktai API service.
 */
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, ConfigSecrecy, SecretConfig, StackConfig, loadConfig } from "../config";
import { AppSourceFile, readAppSource } from "../plan";
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

/** `runtime.isConfigSecret` (marked internal in the SDK's typings, exported by its runtime): whether Pulumi holds a config key as a secret. */
const isConfigSecret: (fullKey: string) => boolean = (require("@pulumi/pulumi/runtime/config") as { isConfigSecret: (k: string) => boolean }).isConfigSecret;

/** Which of the project's keys Pulumi holds as secrets (set with `--secret`, or from an ESC `fn::secret`). */
export function configSecrecy(namespace: string): ConfigSecrecy {
    return { isSecret: (key) => isConfigSecret(`${namespace}:${key}`) };
}

/** The validated configuration, or a RunError that lists every bad key (no stack trace, no host touched). */
export function validatedConfig(namespace: string): { config: StackConfig; secrets: SecretConfig } {
    try {
        return loadConfig(readRawConfig(namespace), namespace, configSecrecy(namespace));
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
        unitFile: service.unitText,
    };
}
