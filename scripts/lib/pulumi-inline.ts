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
 */
import * as fs from "fs";
import * as path from "path";

function sdkRequire<T>(request: string): T {
    const sdkDir = path.dirname(require.resolve("@pulumi/pulumi/package.json"));
    return require(require.resolve(request, { paths: [sdkDir] })) as T;
}

/** Starts the LanguageRuntime server for the program; resolves with its port. */
async function startServer(): Promise<{ port: number; stop: () => void }> {
    const grpc = sdkRequire<typeof import("@grpc/grpc-js")>("@grpc/grpc-js");
    // The SDK's own inline-program server, as used by LocalWorkspace for inline programs.
    const { LanguageServer } = require("@pulumi/pulumi/automation/server");
    const langrpc = require("@pulumi/pulumi/proto/language_grpc_pb");
    const { grpcChannelOptions } = require("@pulumi/pulumi/runtime/settings");
    const { main } = require("../../components/pulumi/program");

    const server = new grpc.Server({ ...grpcChannelOptions });
    server.addService(langrpc.LanguageRuntimeService, new LanguageServer(async () => main()));
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
