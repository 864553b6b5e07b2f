/**
 * Runs the real Pulumi CLI with this project's program served in-process, the
 * way the Automation API runs inline programs: a LanguageRuntime gRPC server
 * here, `pulumi <command> --client=ADDR --exec-kind auto.inline` there. It is
 * used where the Node.js language host (`pulumi-language-nodejs`) is not
 * installed; everything else (engine, state, diff display, providers) is the
 * stock CLI.
 *
 * Usage: node dist/scripts/lib/pulumi-inline.js <pulumi arguments…>
 */
import { spawn } from "child_process";
import * as path from "path";

/** Subcommands that run the program and so need the in-process language runtime. */
const PROGRAM_COMMANDS = new Set(["up", "update", "preview", "pre", "destroy", "refresh"]);

function sdkRequire<T>(request: string): T {
    const sdkDir = path.dirname(require.resolve("@pulumi/pulumi/package.json"));
    return require(require.resolve(request, { paths: [sdkDir] })) as T;
}

async function run(args: string[]): Promise<number> {
    const command = args.find((a) => !a.startsWith("-"));
    if (!command || !PROGRAM_COMMANDS.has(command)) {
        return spawnPulumi(args);
    }
    const grpc = sdkRequire<typeof import("@grpc/grpc-js")>("@grpc/grpc-js");
    const { LanguageServer } = require("@pulumi/pulumi/automation/server");
    const langrpc = require("@pulumi/pulumi/proto/language_grpc_pb");
    const { grpcChannelOptions } = require("@pulumi/pulumi/runtime/settings");
    const { main } = require("../../components/pulumi/program");

    const server = new grpc.Server({ ...grpcChannelOptions });
    const languageServer = new LanguageServer(async () => main());
    server.addService(langrpc.LanguageRuntimeService, languageServer);
    const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err: Error | null, p: number) => (err ? reject(err) : resolve(p))),
    );
    try {
        return await spawnPulumi([...args, `--client=127.0.0.1:${port}`, "--exec-kind", "auto.inline"]);
    } finally {
        server.forceShutdown();
    }
}

function spawnPulumi(args: string[]): Promise<number> {
    return new Promise((resolve, reject) => {
        const child = spawn("pulumi", args, { stdio: "inherit" });
        child.on("error", (e) => reject(new Error(`cannot run the pulumi CLI (${e.message}); run scripts/setup.sh`)));
        child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
        for (const sig of ["SIGINT", "SIGTERM"] as const) {
            process.on(sig, () => child.kill(sig));
        }
    });
}

run(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
        console.error(`error: ${err.message}`);
        process.exit(1);
    },
);
