/**
 * `render`: writes every file a stack would put on each host (unit, drop-ins,
 * journald drop-in, `.env` with secrets redacted, app files) into a folder,
 * and prints the whole plan: the host preparation (user, directories with
 * modes, venv, requirements) and each file with mode, owner and size. The
 * plan is also written to `plan.txt` in the folder, so a recursive diff of
 * two renders shows every change a host would see.
 *
 *   scripts/render --stack prod [--config-file FILE] [--project-dir DIR] [--out DIR]
 *
 * For `--stack local` it reads the user's `.pulumi-state/Pulumi.local.yaml`
 * when `scripts/up-local.sh` has made it.
 *
 * Pure: it reads only `Pulumi.yaml` and the stack file (`Pulumi.<stack>.yaml`
 * beside it, or `--config-file`). No backend, no `stack init`, no secrets:
 * encrypted values are shown as `[secret]` and the SSH key is not needed. It
 * writes nothing but the output folder (default `out/render/<stack>`).
 */
import * as fs from "fs";
import * as path from "path";
import { ConfigError, StackConfig, loadConfig } from "../../components/config";
import { PrepareSpec, envStorePath, hostName } from "../../components/model";
import { PlannedRelease, RenderedHostFile, planPrepare, planRelease, readAppSource, renderHostFiles } from "../../components/plan";
import { SECRET_PLACEHOLDER, StackFileError, stackFileConfig } from "./stack-file";

const NS = "amarktai-infra";
const USAGE = "usage: scripts/render --stack NAME [--config-file FILE] [--project-dir DIR] [--out DIR]";

/** A refusal with a message for the user (no stack trace). */
class UsageError extends Error {}

function arg(argv: readonly string[], name: string): string | undefined {
    const i = argv.indexOf(name);
    if (i < 0) return undefined;
    const value = argv[i + 1];
    if (value === undefined || value.startsWith("--")) throw new UsageError(`${name} needs a value\n${USAGE}`);
    return value;
}

/** The stacks that have a stack file in `dir`. */
function stacksIn(dir: string): string[] {
    return fs
        .readdirSync(dir)
        .map((f) => /^Pulumi\.(.+)\.ya?ml$/.exec(f)?.[1])
        .filter((s): s is string => s !== undefined)
        .sort();
}

function readFile(file: string, what: string): string {
    try {
        return fs.readFileSync(file, "utf8");
    } catch {
        throw new UsageError(`${what} ${file} cannot be read`);
    }
}

/** The plan a reviewer reads: the host preparation, then each host's files. */
export function planText(stack: string, config: StackConfig, prepare: PrepareSpec, release: PlannedRelease, files: readonly RenderedHostFile[], notes: readonly string[]): string {
    const lines = [`stack ${stack}: ${config.hosts.length} host(s), service ${config.serviceName}.service, ${files.length} files per host`];
    for (const note of notes) lines.push(`  note: ${note}`);
    lines.push("", "host preparation (every host):");
    lines.push(`  service user ${prepare.user}, group ${prepare.group} (a system account without a login shell)`);
    for (const d of prepare.directories) lines.push(`  directory ${d.mode} ${`${d.owner}:${d.group}`.padEnd(18)} ${d.path}`);
    const requirements = release.preview.requirements.split("\n").filter((l) => l.trim() !== "" && !l.trim().startsWith("#"));
    // A release built from a lock is named after the lock, which only `up` resolves: render shows the id it cannot know as such.
    const where = release.resolution ? `in ${release.spec.releasesDir}/<id of the resolved lock>` : `${release.spec.id} in ${release.spec.releasesDir}/${release.spec.id}`;
    lines.push(`  release ${where}: ${Object.keys(release.preview.files).length} app file(s), venv (${release.spec.installer})`);
    lines.push(`  links: ${release.spec.venvLink}${release.spec.appLink ? ` and ${release.spec.appLink}` : ""} -> ${release.spec.releasesDir}/current/…`);
    lines.push(`  requirements: ${requirements.length > 0 ? requirements.join(" ") : "(none)"}`);
    if (release.resolution) lines.push("  resolved by up once per change, on the first host, into a lock with hashes that every host installs (releases.reproducible)");
    for (const host of config.hosts) {
        lines.push("", `${hostName(host)} (${host.user}@${host.address}:${host.port})`);
        for (const f of files) {
            lines.push(`  ${f.mode} ${`${f.owner}:${f.group}`.padEnd(18)} ${String(f.text.split("\n").length - 1).padStart(4)} lines  ${f.path}`);
        }
    }
    return lines.join("\n") + "\n";
}

function main(argv: readonly string[]): void {
    const stack = arg(argv, "--stack");
    if (!stack) throw new UsageError(USAGE);
    const out = path.resolve(arg(argv, "--out") ?? path.join("out", "render", stack));
    const projectDir = path.resolve(arg(argv, "--project-dir") ?? ".");
    const projectFile = path.join(projectDir, "Pulumi.yaml");
    if (!fs.existsSync(projectFile)) throw new UsageError(`no Pulumi.yaml in ${projectDir}: run from the project directory or pass --project-dir`);
    const given = arg(argv, "--config-file");
    // The local stack's settings are the user's copy, once up-local.sh has made it (see README).
    const localSettings = path.join(projectDir, ".pulumi-state", "Pulumi.local.yaml");
    const stackFile = given ? path.resolve(given) : stack === "local" && fs.existsSync(localSettings) ? localSettings : path.join(projectDir, `Pulumi.${stack}.yaml`);
    if (!fs.existsSync(stackFile)) {
        const known = stacksIn(projectDir);
        throw new UsageError(`no stack file ${path.relative(process.cwd(), stackFile) || stackFile} for stack '${stack}'` + (known.length ? ` (stack files here: ${known.join(", ")})` : "") + "; pass --config-file FILE to render another file");
    }
    const { raw, secretPaths } = stackFileConfig(
        { text: readFile(projectFile, "project file"), file: path.basename(projectFile) },
        { text: readFile(stackFile, "stack file"), file: path.basename(stackFile) },
        NS,
    );
    const notes: string[] = [];
    // Not needed to render; the schema still checks its shape when it is given in plain text.
    if (raw.sshPrivateKey === undefined || raw.sshPrivateKey === SECRET_PLACEHOLDER) raw.sshPrivateKey = "(PRIVATE KEY not needed to render)";
    if (raw.secretEnv === SECRET_PLACEHOLDER) {
        delete raw.secretEnv;
        notes.push(`${NS}:secretEnv is encrypted as a whole: its key names cannot be listed without the stack's secrets`);
    }
    const shown = secretPaths.filter((p) => p !== "sshPrivateKey" && p !== "secretEnv");
    if (shown.length > 0) notes.push(`encrypted, shown as ${SECRET_PLACEHOLDER}: ${shown.join(", ")}`);
    const { config, secrets } = loadConfig(raw, NS);
    // The app's source directory is relative to the project directory, as for the program.
    process.chdir(projectDir);
    const appFiles = config.app.sourceDir ? readAppSource(config.app.sourceDir) : [];
    const files = renderHostFiles(config, Object.keys(secrets.secretEnv), appFiles);
    const release = planRelease(config, appFiles, envStorePath(config.serviceName));
    const plan = planText(stack, config, planPrepare(config, release), release, files, notes);

    fs.rmSync(out, { recursive: true, force: true });
    fs.mkdirSync(out, { recursive: true });
    for (const host of config.hosts) {
        for (const f of files) {
            const target = path.join(out, hostName(host), f.path);
            fs.mkdirSync(path.dirname(target), { recursive: true });
            fs.writeFileSync(target, f.bytes ?? f.text);
            fs.chmodSync(target, parseInt(f.mode, 8) | 0o200);
        }
    }
    fs.writeFileSync(path.join(out, "plan.txt"), plan);
    process.stdout.write(plan);
    console.log(`\nwritten under ${out}/<host>/ (plan in plan.txt)`);
}

try {
    main(process.argv.slice(2));
} catch (e) {
    if (e instanceof ConfigError || e instanceof StackFileError || e instanceof UsageError) {
        console.error(`render: ${e.message}`);
        process.exit(e instanceof UsageError && e.message === USAGE ? 2 : 1);
    }
    // Anything else: the message, never a stack trace.
    console.error(`render: ${(e as Error).message ?? String(e)}`);
    process.exit(1);
}
