/**
 * `render`: writes every file a stack would put on each host (unit, drop-ins,
 * journald drop-in, `.env` with secrets redacted, app files) into a folder,
 * without any SSH, and prints a summary. For reviews and CI.
 *
 *   scripts/render --stack prod [--config-file FILE] [--out DIR]
 *
 * Reads the stack's configuration with the Pulumi CLI (secrets are decrypted
 * only to learn which .env keys exist, and are never written).
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { ConfigError, loadConfig } from "../../components/config";
import { hostName } from "../../components/model";
import { planPrepare, readAppSource, renderHostFiles } from "../../components/plan";

const NS = "amarktai-infra";

function arg(name: string): string | undefined {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : undefined;
}

/** The stack's config as raw strings per key, as the program would see it. */
function stackConfig(stack: string, configFile?: string): Record<string, string> {
    const args = ["config", "--json", "--show-secrets", "--stack", stack, ...(configFile ? ["--config-file", configFile] : [])];
    const json = JSON.parse(execFileSync("pulumi", args, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] })) as Record<string, { value?: string }>;
    const raw: Record<string, string> = {};
    for (const [key, entry] of Object.entries(json)) {
        if (key.startsWith(`${NS}:`) && entry.value !== undefined) raw[key.slice(NS.length + 1)] = entry.value;
    }
    return raw;
}

function main(): void {
    const stack = arg("--stack");
    if (!stack) {
        console.error("usage: scripts/render --stack NAME [--config-file FILE] [--out DIR]");
        process.exit(2);
    }
    const out = path.resolve(arg("--out") ?? path.join("out", "render", stack));
    let loaded;
    try {
        loaded = loadConfig(stackConfig(stack, arg("--config-file")), NS);
    } catch (e) {
        if (e instanceof ConfigError) {
            console.error(e.message);
            process.exit(1);
        }
        throw e;
    }
    const { config, secrets } = loaded;
    const appFiles = config.app.sourceDir ? readAppSource(config.app.sourceDir) : [];
    const files = renderHostFiles(config, Object.keys(secrets.secretEnv), appFiles);
    fs.rmSync(out, { recursive: true, force: true });
    console.log(`stack ${stack}: ${files.length} files per host, written under ${path.relative(process.cwd(), out) || "."}/<host>/`);
    for (const host of config.hosts) {
        const dir = path.join(out, hostName(host));
        for (const f of files) {
            const target = path.join(dir, f.path);
            fs.mkdirSync(path.dirname(target), { recursive: true });
            fs.writeFileSync(target, f.text);
        }
        console.log(`\n${hostName(host)} (${host.user}@${host.address}:${host.port})`);
        for (const f of files) {
            console.log(`  ${f.mode} ${`${f.owner}:${f.group}`.padEnd(18)} ${String(f.text.split("\n").length - 1).padStart(4)} lines  ${f.path}`);
        }
    }
}

main();
