/**
 * A throwaway Pulumi stack of this project for tests: its own backend
 * directory and passphrase, its config file outside the checkout, and the
 * project's `scripts/pulumi` (the real CLI) to run commands.
 */
import { ChildProcess, spawn } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { REPO } from "./vm";

/** The result of one CLI run. */
export interface CliResult {
    readonly code: number;
    readonly stdout: string;
    readonly stderr: string;
    /** Wall time in seconds. */
    readonly seconds: number;
    /** With `measure`: CPU seconds (user + system) of the CLI and every process it started, and the largest one's peak RSS in MiB. */
    readonly usage?: { readonly cpuSeconds: number; readonly peakMiB: number };
}

/** Reports the resource usage of a command and all its descendants (see the file). */
const RUSAGE = path.join(REPO, "tools", "rusage.py");

const NS = "amarktai-infra";

/** A test stack. */
export class TestStack {
    readonly name: string;
    readonly dir: string;
    readonly configFile: string;
    /** The checkout whose `scripts/pulumi` (and program) this stack runs. */
    readonly repo: string;
    private readonly env: NodeJS.ProcessEnv;

    private constructor(name: string, dir: string, repo: string) {
        this.name = name;
        this.dir = dir;
        this.repo = repo;
        this.configFile = path.join(dir, `Pulumi.${name}.yaml`);
        this.env = {
            ...process.env,
            PULUMI_BACKEND_URL: `file://${path.join(dir, "state")}`,
            PULUMI_CONFIG_PASSPHRASE: crypto.randomBytes(16).toString("hex"),
            PULUMI_CONFIG_PASSPHRASE_FILE: "",
        };
    }

    /** Creates the stack with a fresh backend; `repo` is another built checkout of the project to run (default: this one). */
    static async create(prefix: string, repo = REPO): Promise<TestStack> {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), `amarktai-${prefix}-`));
        fs.mkdirSync(path.join(dir, "state"));
        const stack = new TestStack(`${prefix}-${crypto.randomBytes(3).toString("hex")}`, dir, repo);
        await stack.mustRun(["stack", "init", stack.name]);
        // `stack init` writes the stack file (with the encryption salt) beside Pulumi.yaml; keep it out of the checkout.
        const written = path.join(repo, `Pulumi.${stack.name}.yaml`);
        if (fs.existsSync(written)) {
            fs.renameSync(written, stack.configFile);
        } else {
            fs.writeFileSync(stack.configFile, "config: {}\n");
        }
        return stack;
    }

    /** Runs `scripts/pulumi ARGS --stack NAME --config-file FILE` (stack flags added for commands that take them). */
    run(args: string[], options: { stdin?: string; env?: NodeJS.ProcessEnv; onOutput?: (chunk: string) => void; measure?: boolean; /** Another checkout of the project (e.g. an older release) whose `scripts/pulumi` runs instead. */ checkout?: string } = {}): Promise<CliResult> {
        // `stack …` subcommands take no --config-file; `stack init` names its stack itself.
        const isInit = args[0] === "stack" && args[1] === "init";
        const stackFlags = isInit ? [] : args[0] === "stack" ? ["--stack", this.name] : ["--stack", this.name, "--config-file", this.configFile];
        const full = [...args, "--non-interactive", ...stackFlags];
        const started = Date.now();
        return new Promise((resolve, reject) => {
            const dir = options.checkout ?? this.repo;
            const cli = path.join(dir, "scripts", "pulumi");
            const [command, argv] = options.measure ? ["python3", [RUSAGE, cli, ...full]] : [cli, full];
            const child = spawn(command, argv, { cwd: dir, env: { ...this.env, ...options.env }, stdio: ["pipe", "pipe", "pipe"] });
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (d: Buffer) => {
                stdout += d.toString();
                options.onOutput?.(d.toString());
            });
            child.stderr.on("data", (d: Buffer) => {
                stderr += d.toString();
                options.onOutput?.(d.toString());
            });
            child.on("error", reject);
            child.on("close", (code) => {
                const m = options.measure ? /^RUSAGE wall=([\d.]+) cpu=([\d.]+) maxrss_kb=(\d+)$/m.exec(stderr) : null;
                const usage = m ? { cpuSeconds: Number(m[2]), peakMiB: Number(m[3]) / 1024 } : undefined;
                resolve({ code: code ?? 1, stdout, stderr, seconds: m ? Number(m[1]) : (Date.now() - started) / 1000, ...(usage ? { usage } : {}) });
            });
            child.stdin.end(options.stdin ?? "");
        });
    }

    /** Runs one of the project's scripts (e.g. `scripts/render`) with this stack's backend and passphrase. */
    script(script: string, args: string[]): Promise<CliResult> {
        const started = Date.now();
        return new Promise((resolve, reject) => {
            const child = spawn(path.join(this.repo, script), args, { cwd: this.repo, env: this.env, stdio: ["ignore", "pipe", "pipe"] });
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
            child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
            child.on("error", reject);
            child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr, seconds: (Date.now() - started) / 1000 }));
        });
    }

    /** Starts one of the project's scripts with this stack's backend and passphrase, its output piped (for commands that run until stopped). */
    spawnScript(script: string, args: string[]): ChildProcess {
        return spawn(path.join(this.repo, script), args, { cwd: this.repo, env: this.env, stdio: ["ignore", "pipe", "pipe"] });
    }

    /** Like {@link run}, but fails with the CLI's output when it exits non-zero. */
    async mustRun(args: string[], options: { stdin?: string; onOutput?: (chunk: string) => void } = {}): Promise<CliResult> {
        const r = await this.run(args, options);
        if (r.code !== 0) {
            throw new Error(`pulumi ${args.join(" ")} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
        }
        return r;
    }

    /** Sets plain config values (objects allowed), e.g. `{ hosts: [...], overrides: {...} }`. */
    async setConfig(values: Record<string, unknown>): Promise<void> {
        const json: Record<string, unknown> = {};
        for (const [key, value] of Object.entries(values)) {
            json[`${NS}:${key}`] =
                typeof value === "string"
                    ? { value, secret: false }
                    : { value: JSON.stringify(value), objectValue: value, secret: false };
        }
        await this.mustRun(["config", "set-all", "--json", JSON.stringify(json)]);
    }

    /** Sets a secret value (through stdin; `path` like `secretEnv.OPENAI_API_KEY` sets a nested one). */
    async setSecret(key: string, value: string): Promise<void> {
        await this.mustRun(["config", "set", "--secret", "--raw", ...(key.includes(".") ? ["--path"] : []), key], { stdin: value });
    }

    /** Removes config keys. */
    async removeConfig(...keys: string[]): Promise<void> {
        for (const key of keys) {
            await this.mustRun(["config", "rm", ...(key.includes(".") ? ["--path"] : []), key]);
        }
    }

    /** `pulumi up --yes --skip-preview`, printing progress to stderr. */
    up(extra: string[] = [], checkout?: string): Promise<CliResult> {
        return this.run(["up", "--yes", "--skip-preview", ...extra], { onOutput: progress, ...(checkout ? { checkout } : {}) });
    }

    /** Removes the stack's files. */
    cleanup(): void {
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}

/** Echoes CLI progress to the test runner's stderr (long operations stay visible). */
function progress(chunk: string): void {
    if (process.env.AMARKTAI_TEST_QUIET) return;
    process.stderr.write(chunk.replace(/^/gm, "    | "));
}
