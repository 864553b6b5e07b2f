/**
 * `scripts/pulumi` as a user meets it, with the real CLI and no VM: a
 * non-local stack lives in the user's own backend (never in the checkout),
 * the program's entry point runs through the public Automation API, flags are
 * accepted anywhere, one Ctrl-C cancels like the CLI's own, and a
 * build older than its sources refuses to run.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { REPO } from "../../tools/vm";

const MINUTE = 60_000;
const YAML_MAIN = /^main: (\S+)$/m;
const NS = "amarktai-infra";
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJrLw0/yHgIQgd1mOq03l/DYoJq/TmjmAsaEpj7CY3VG";

let dir: string;
let stack: string;
let configFile: string;
let env: NodeJS.ProcessEnv;

/** The environment of a user with their own file backend (standing in for Pulumi Cloud, S3, …). */
function userEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
    const base = { ...process.env };
    for (const k of ["PULUMI_BACKEND_URL", "PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_HOME"]) delete base[k];
    return { ...base, ...extra };
}

function run(cmd: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; stdin?: string } = {}) {
    const r = spawnSync(cmd, args, { cwd: options.cwd ?? REPO, env: options.env ?? env, input: options.stdin ?? "", encoding: "utf8" });
    return { code: r.status ?? 1, out: `${r.stdout}${r.stderr}` };
}

const scriptsPulumi = (args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; stdin?: string } = {}) =>
    run(path.join(options.cwd ?? REPO, "scripts", "pulumi"), args, options);

/** Every path under `root` (relative), or none when it does not exist. */
function listTree(root: string): string[] {
    if (!fs.existsSync(root)) return [];
    return (fs.readdirSync(root, { recursive: true }) as string[]).map(String);
}

function setHosts(hosts: object[]): void {
    setConfigValue("hosts", hosts);
}

/** Sets one config key of the stack to a structured value. */
function setConfigValue(key: string, value: object): void {
    const json = JSON.stringify({ [`${NS}:${key}`]: { value: JSON.stringify(value), objectValue: value, secret: false } });
    const r = scriptsPulumi(["config", "set-all", "--json", json, "--stack", stack, "--config-file", configFile]);
    assert.equal(r.code, 0, r.out);
}

before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-cli-"));
    fs.mkdirSync(path.join(dir, "backend"));
    fs.mkdirSync(path.join(dir, "home"));
    env = userEnv({ PULUMI_HOME: path.join(dir, "home"), PULUMI_BACKEND_URL: `file://${dir}/backend`, PULUMI_CONFIG_PASSPHRASE: crypto.randomBytes(8).toString("hex") });
    stack = `cli-${crypto.randomBytes(3).toString("hex")}`;
    configFile = path.join(dir, `Pulumi.${stack}.yaml`);
});

after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(path.join(REPO, `Pulumi.${stack}.yaml`), { force: true });
});

test("with PULUMI_BACKEND_URL set, scripts/pulumi and plain pulumi keep a non-local stack there, and nothing under the checkout", { timeout: 5 * MINUTE }, () => {
    const stateBefore = listTree(path.join(REPO, ".pulumi-state"));
    const init = scriptsPulumi(["stack", "init", stack, "--non-interactive"]);
    assert.equal(init.code, 0, init.out);
    assert.doesNotMatch(init.out, /no Pulumi backend is configured/);
    // `stack init` writes the stack's config file beside Pulumi.yaml; keep it out of the checkout.
    fs.renameSync(path.join(REPO, `Pulumi.${stack}.yaml`), configFile);
    setHosts([{ address: "192.0.2.1", hostKey: HOST_KEY }]);
    const key = run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "key")]);
    assert.equal(key.code, 0, key.out);
    const setKey = scriptsPulumi(["config", "set", "--secret", "sshPrivateKey", "--stack", stack, "--config-file", configFile], { stdin: fs.readFileSync(path.join(dir, "key"), "utf8") });
    assert.equal(setKey.code, 0, setKey.out);

    // `-s X` before the command: the program runs (served in-process where the language host is missing).
    const preview = scriptsPulumi(["-s", stack, "preview", "--config-file", configFile, "--non-interactive"]);
    assert.equal(preview.code, 0, preview.out);
    assert.match(preview.out, /\+ \d+ to create/);

    assert.ok(fs.existsSync(path.join(dir, "backend", ".pulumi", "stacks", NS, `${stack}.json`)), "the stack is in the user's backend");
    for (const cmd of [path.join(REPO, "scripts", "pulumi"), "pulumi"]) {
        const ls = run(cmd, ["stack", "ls", "--json"]);
        assert.equal(ls.code, 0, ls.out);
        assert.ok((JSON.parse(ls.out) as { name: string }[]).some((s) => s.name === stack), `${cmd} stack ls lists ${stack}`);
    }
    const stateAfter = listTree(path.join(REPO, ".pulumi-state"));
    assert.deepEqual(stateAfter, stateBefore, "nothing new under the checkout's .pulumi-state");
    assert.ok(!stateAfter.some((p) => p.includes(stack)));
});

test("with a `pulumi login` and no PULUMI_BACKEND_URL, a non-local stack goes to the logged-in backend", { timeout: 2 * MINUTE }, () => {
    const home = path.join(dir, "home-login");
    const backend = path.join(dir, "login-backend");
    fs.mkdirSync(backend);
    const loginEnv = userEnv({ PULUMI_HOME: home, PULUMI_CONFIG_PASSPHRASE: "x" });
    const login = run("pulumi", ["login", `file://${backend}`], { env: loginEnv });
    assert.equal(login.code, 0, login.out);
    const other = `${stack}-login`;
    try {
        const init = scriptsPulumi(["stack", "init", other, "--non-interactive"], { env: loginEnv });
        assert.equal(init.code, 0, init.out);
        assert.ok(fs.existsSync(path.join(backend, ".pulumi", "stacks", NS, `${other}.json`)));
        assert.ok(!listTree(path.join(REPO, ".pulumi-state")).some((p) => p.includes(other)));
    } finally {
        fs.rmSync(path.join(REPO, `Pulumi.${other}.yaml`), { force: true });
    }
});

test("through the public Automation API, the program's own entry point (Pulumi.yaml's main) previews a stack", { timeout: 5 * MINUTE }, async () => {
    // What any Pulumi user can run without this project's scripts: LocalWorkspace with the compiled entry point.
    const workDir = path.join(dir, "automation");
    fs.mkdirSync(workDir);
    fs.copyFileSync(path.join(REPO, "Pulumi.yaml"), path.join(workDir, "Pulumi.yaml"));
    const main = (YAML_MAIN.exec(fs.readFileSync(path.join(REPO, "Pulumi.yaml"), "utf8")) ?? [])[1];
    assert.equal(main, "dist/index.js");
    const entry = path.join(REPO, main!);
    fs.symlinkSync(path.join(REPO, "dist"), path.join(workDir, "dist"));
    const auto = await LocalWorkspace.createOrSelectStack(
        {
            stackName: `${stack}-auto`,
            projectName: NS,
            program: async () => {
                delete require.cache[entry];
                return require(entry);
            },
        },
        { workDir, envVars: { PULUMI_BACKEND_URL: env.PULUMI_BACKEND_URL!, PULUMI_CONFIG_PASSPHRASE: env.PULUMI_CONFIG_PASSPHRASE!, PULUMI_HOME: env.PULUMI_HOME! } },
    );
    await auto.setAllConfig({
        [`${NS}:hosts`]: { value: JSON.stringify([{ address: "192.0.2.1", hostKey: HOST_KEY }]) },
        [`${NS}:sshPrivateKey`]: { value: fs.readFileSync(path.join(dir, "key"), "utf8"), secret: true },
    });
    let out = "";
    const preview = await auto.preview({ onOutput: (o) => (out += o), diff: true });
    assert.ok((preview.changeSummary.create ?? 0) > 0, out);
    assert.match(out, /pulumi-nodejs:dynamic\/amarktai:ServiceActivation/);
    assert.ok(fs.existsSync(path.join(dir, "backend", ".pulumi", "stacks", NS, `${stack}-auto.json`)));
});

/** The pid of the in-process program server whose parent is `pid`, if any. */
function inlineServerOf(pid: number): number | undefined {
    for (const entry of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        try {
            const status = fs.readFileSync(`/proc/${entry}/status`, "utf8");
            const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8");
            if (new RegExp(`^PPid:\\s+${pid}$`, "m").test(status) && cmdline.includes("pulumi-inline.js")) return Number(entry);
        } catch {
            // the process went away
        }
    }
    return undefined;
}

const alive = (pid: number) => fs.existsSync(`/proc/${pid}`);

test("`--stack=X up`, then one Ctrl-C: the CLI cancels once, waits for the pending step, and exits cleanly", { timeout: 5 * MINUTE }, async () => {
    // A fake host that accepts the SSH connection and never answers: the first step hangs until we let it go.
    const sockets: net.Socket[] = [];
    let connected!: () => void;
    const connection = new Promise<void>((resolve) => (connected = resolve));
    const server = net.createServer((s) => {
        sockets.push(s);
        connected();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    setHosts([{ address: "127.0.0.1", port: (server.address() as net.AddressInfo).port, hostKey: HOST_KEY }]);
    // One dial only: by default a dial the host drops is retried for timeouts.connectSec (a booting VM), and the
    // cancelled CLI would wait that long for the pending step; this test is about the cancel, not the wait.
    setConfigValue("timeouts", { connectSec: 0 });
    try {
        const child = spawn(path.join(REPO, "scripts", "pulumi"), [`--stack=${stack}`, "up", "--yes", "--skip-preview", "--non-interactive", "--config-file", configFile], { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        let cancelled!: () => void;
        const cancelSeen = new Promise<void>((resolve) => (cancelled = resolve));
        const onData = (d: Buffer) => {
            out += d.toString();
            if (/received; cancelling/.test(out)) cancelled();
        };
        child.stdout.on("data", onData);
        child.stderr.on("data", onData);
        const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("close", (code, signal) => resolve({ code, signal })));

        await connection;
        const serverPid = inlineServerOf(child.pid!);
        child.kill("SIGINT");
        await cancelSeen;
        // Let the hanging step fail now; a cancelled CLI waits for it rather than abandoning it.
        for (const s of sockets) s.destroy();
        const { code, signal } = await exited;

        assert.equal(signal, null, "the CLI exits by itself, not by a signal");
        assert.notEqual(code, 0);
        assert.equal(out.match(/\^C received/g)?.length, 1, `exactly one cancel, no forced termination:\n${out}`);
        assert.doesNotMatch(out, /\^C received; terminating/);
        assert.match(out, /HostPrepare .*creating failed/, "the pending step finished (failed) instead of being abandoned");
        // scripts/pulumi serves the program in-process exactly where the Node.js language host is missing.
        const languageHost = spawnSync("bash", ["-c", 'source scripts/lib/env.sh && command -v pulumi-language-nodejs && [ -z "${AMARKTAI_FORCE_INLINE:-}" ]'], { cwd: REPO, env }).status === 0;
        assert.equal(serverPid === undefined, languageHost, languageHost ? "an in-process program server runs beside the language host" : "no in-process program server found");
        const deadline = Date.now() + MINUTE;
        while (serverPid !== undefined && alive(serverPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        assert.ok(serverPid === undefined || !alive(serverPid), "the in-process program server ended with the CLI");
    } finally {
        for (const s of sockets) s.destroy();
        server.close();
    }
});

test("a source edited after the last build: preview stops and names `npm run build`", { timeout: 5 * MINUTE }, () => {
    // A copy of the checkout (sources, build, scripts; dependencies linked), so the real one stays untouched.
    const copy = path.join(dir, "checkout");
    fs.mkdirSync(copy);
    for (const entry of ["index.ts", "components", "scripts", "dist", "Pulumi.yaml", "package.json", "tsconfig.json"]) {
        fs.cpSync(path.join(REPO, entry), path.join(copy, entry), { recursive: true, preserveTimestamps: true });
    }
    fs.symlinkSync(path.join(REPO, "node_modules"), path.join(copy, "node_modules"));
    const edited = path.join(copy, "components", "config", "schema.ts");
    fs.appendFileSync(edited, "\n// an edit not yet built\n");
    const r = scriptsPulumi(["preview", "-s", stack, "--config-file", configFile, "--non-interactive"], { cwd: copy });
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /older than its sources \(components\/config\/schema\.ts changed since the last build\); run `npm run build`/);
});
