/**
 * The Pulumi program: reads the stack configuration, validates all of it
 * before any resource exists (so a bad value never reaches a host), and
 * instantiates the Amarktai API service.
 */
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, SecretConfig, StackConfig, loadConfig } from "./config";
import { AppSourceFile } from "./files";
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

/** Reads the app's source directory (relative to the project directory) into a list of files. */
export function readAppSource(dir: string): AppSourceFile[] {
    const root = path.resolve(dir);
    if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) {
        throw new ConfigError([`app.sourceDir: ${JSON.stringify(dir)} is not a directory (relative paths start at the project directory)`]);
    }
    const out: AppSourceFile[] = [];
    const walk = (rel: string) => {
        for (const entry of fs.readdirSync(path.join(root, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
            if (entry.name === "__pycache__" || entry.name.startsWith(".")) continue;
            const relPath = rel ? `${rel}/${entry.name}` : entry.name;
            if (entry.isDirectory()) walk(relPath);
            else if (entry.isFile()) out.push({ relativePath: relPath, content: fs.readFileSync(path.join(root, relPath), "utf8") });
        }
    };
    walk("");
    return out;
}

/** The validated configuration, or a RunError that lists every bad key (no stack trace, no host touched). */
export function validatedConfig(namespace: string): { config: StackConfig; secrets: SecretConfig } {
    try {
        return loadConfig(readRawConfig(namespace), namespace);
    } catch (e) {
        if (e instanceof ConfigError) {
            throw new pulumi.RunError(e.message);
        }
        throw e;
    }
}

/** The program: returns the stack outputs. */
export function main(): Record<string, unknown> {
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
