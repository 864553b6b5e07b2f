/**
 * Serves this project's program to the Pulumi CLI in-process, the way the
 * Automation API runs inline programs: a LanguageRuntime gRPC server here, and
 * `pulumi <command> --client=ADDR --exec-kind auto.inline` run by
 * `scripts/pulumi`, which then *becomes* that CLI process (bash `exec`), so
 * the terminal, prompts and Ctrl-C are exactly the stock CLI's. Used where the
 * Node.js language host (`pulumi-language-nodejs`) is not installed.
 *
 * Usage: node dist/scripts/lib/pulumi-inline.js PORT_FIFO
 *   writes `PORT` (or `error: …`) as one line to PORT_FIFO, then serves until
 *   its standard input closes (the CLI holding the other end has exited).
 *   With `AMARKTAI_PROGRAM_DIR` (set by `scripts/pulumi --cwd DIR`), it serves
 *   the compiled program of the Pulumi project in that directory instead.
 */
import * as fs from "fs";
import * as path from "path";
import { CONFIG_SECRET_KEYS_ENV } from "../../components/pulumi/config-secret-keys";

function sdkRequire<T>(request: string): T {
    const sdkDir = path.dirname(require.resolve("@pulumi/pulumi/package.json"));
    return require(require.resolve(request, { paths: [sdkDir] })) as T;
}

/**
 * The compiled entry point of the Node.js Pulumi project in `dir`: its
 * package.json `main`, or for a TypeScript `main` the same file under the
 * `outDir` of its tsconfig.json (compile it first with its own `tsc`).
 */
function compiledProgramOf(dir: string): string {
    const manifest = path.join(dir, "package.json");
    const main: string = fs.existsSync(manifest) ? (JSON.parse(fs.readFileSync(manifest, "utf8")).main ?? "index.js") : "index.js";
    let entry = path.resolve(dir, main);
    if (/\.ts$/.test(main)) {
        const tsconfig = path.join(dir, "tsconfig.json");
        const outDir: string | undefined = fs.existsSync(tsconfig) ? JSON.parse(fs.readFileSync(tsconfig, "utf8")).compilerOptions?.outDir : undefined;
        entry = path.resolve(dir, outDir ?? ".", main.replace(/\.ts$/, ".js"));
    }
    if (!fs.existsSync(entry)) throw new Error(`the program ${entry} of ${dir} does not exist: compile it first (\`npx tsc\` in ${dir})`);
    return entry;
}

/** Runs the program of the project in `dir` afresh (its own modules reloaded, so a preview and an update each run it) and returns its exports: the stack outputs. */
function runProgramOf(dir: string): unknown {
    const entry = compiledProgramOf(dir);
    const own = (file: string) => file.startsWith(dir + path.sep) && !file.includes(`${path.sep}node_modules${path.sep}`);
    for (const file of Object.keys(require.cache)) if (own(file)) delete require.cache[file];
    return require(entry);
}

/** Starts the LanguageRuntime server for the program; resolves with its port. */
async function startServer(): Promise<{ port: number; stop: () => void }> {
    const grpc = sdkRequire<typeof import("@grpc/grpc-js")>("@grpc/grpc-js");
    // Not public in the SDK, and no public export does the same: the public Automation API
    // (`@pulumi/pulumi/automation`: LocalWorkspace, Stack) starts this very server but also runs
    // the CLI itself, non-interactively, so it cannot hand the terminal to the stock CLI. Needed:
    // - `LanguageServer` (automation/server): the inline-program LanguageRuntime service that
    //   LocalWorkspace uses; it sets up the SDK's run state for the program;
    // - `LanguageRuntimeService` (proto/language_grpc_pb): the service definition to register it;
    // - `grpcChannelOptions` (runtime/settings): the SDK's message-size limits for the server.
    // The SDK version is pinned (package.json); the e2e tests drive the CLI through this server.
    const { LanguageServer } = require("@pulumi/pulumi/automation/server");
    const langrpc = require("@pulumi/pulumi/proto/language_grpc_pb");
    const { grpcChannelOptions } = require("@pulumi/pulumi/runtime/settings");
    const programDir = process.env.AMARKTAI_PROGRAM_DIR;
    const program = programDir ? async () => runProgramOf(programDir) : async () => require("../../components/pulumi/program").main();

    const server = new grpc.Server({ ...grpcChannelOptions });
    const languageServer = new LanguageServer(program);
    // A language host hands the program the secret config keys in PULUMI_CONFIG_SECRET_KEYS
    // (pulumi-language-nodejs does); the SDK's inline server keeps them to itself, so the run
    // request's list (the public LanguageRuntime protocol) is put there for the program.
    const run = languageServer.run.bind(languageServer);
    languageServer.run = (call: { request: { getConfigsecretkeysList(): string[] } }, callback: unknown) => {
        process.env[CONFIG_SECRET_KEYS_ENV] = JSON.stringify(call.request.getConfigsecretkeysList() ?? []);
        return run(call, callback);
    };
    server.addService(langrpc.LanguageRuntimeService, languageServer);
    const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err: Error | null, p: number) => (err ? reject(err) : resolve(p))),
    );
    return { port, stop: () => server.forceShutdown() };
}

async function serve(portFifo: string): Promise<void> {
    // A Ctrl-C in the terminal reaches the whole process group, the CLI included: the CLI cancels
    // (and may still need the program while it winds down), so this server ignores it and lives
    // until the CLI has exited.
    process.on("SIGINT", () => undefined);
    let started: { port: number; stop: () => void };
    try {
        started = await startServer();
    } catch (e) {
        fs.writeFileSync(portFifo, `error: ${(e as Error).message.split("\n")[0]}\n`);
        process.exit(1);
    }
    fs.writeFileSync(portFifo, `${started.port}\n`);
    process.stdin.on("data", () => undefined);
    process.stdin.on("close", () => {
        started.stop();
        process.exit(0);
    });
    process.stdin.resume();
}

const fifo = process.argv[2];
if (!fifo) {
    console.error("usage: pulumi-inline.js PORT_FIFO (run through scripts/pulumi)");
    process.exit(2);
}
serve(fifo).catch((e: Error) => {
    console.error(`error: ${e.message}`);
    process.exit(1);
});
