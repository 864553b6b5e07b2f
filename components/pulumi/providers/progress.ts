/**
 * Shows the transport's progress (waiting for a host's SSH, a long step) in
 * the display of `pulumi up`, live and without cluttering its summary.
 *
 * The providers run in the SDK's dynamic-provider process, which the CLI
 * starts with the engine's address as its only argument but which never
 * connects to it: there `pulumi.log.*` falls back to console output, which the
 * CLI shows as a permanent message of the stack (the ephemeral flag is lost).
 * So in that process the messages go to the engine's `Log` RPC directly, as
 * ephemeral info: the stack's row shows the latest one while it is current,
 * and the summary keeps none. Anywhere else (the program's own process) they
 * go through `pulumi.log.info` as ephemeral messages.
 */
import * as path from "path";
import type * as Pulumi from "@pulumi/pulumi";
import { ProgressReporter, setProgressReporter } from "../../transport";

type EngineGrpc = typeof import("@pulumi/pulumi/proto/engine_grpc_pb");
type EngineProto = typeof import("@pulumi/pulumi/proto/engine_pb");
type GrpcJs = typeof import("@grpc/grpc-js");

/** The dynamic-provider entry point of the SDK, which the CLI runs with the engine's address. */
const DYNAMIC_PROVIDER_MAIN = /[\\/]@pulumi[\\/]pulumi[\\/]cmd[\\/]dynamic-provider[\\/]index\.js$/;

/**
 * The engine's address when this process is the SDK's dynamic-provider
 * process (`node …/cmd/dynamic-provider/index.js ENGINE_ADDRESS`), else `undefined`.
 */
export function dynamicProviderEngineAddress(argv: readonly string[] = process.argv, mainFile: string | undefined = require.main?.filename): string | undefined {
    if (!mainFile || !DYNAMIC_PROVIDER_MAIN.test(mainFile)) return undefined;
    const address = argv[2];
    return address && /^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/.test(address) ? address : undefined;
}

/**
 * A reporter sending each message to the engine at `address` as ephemeral
 * info without a resource (the stack's row shows it), in order; a message
 * the engine does not take goes to `fallback`.
 */
export function engineProgressReporter(address: string, fallback: ProgressReporter): ProgressReporter {
    let send: ((message: string) => Promise<void>) | undefined;
    let last = Promise.resolve();
    const connect = (): ((message: string) => Promise<void>) => {
        // The SDK's own gRPC and protocol modules: the ones its runtime speaks to the engine with.
        const sdkDir = path.dirname(require.resolve("@pulumi/pulumi/package.json"));
        const grpc = require(require.resolve("@grpc/grpc-js", { paths: [sdkDir] })) as GrpcJs;
        const engineGrpc = require("@pulumi/pulumi/proto/engine_grpc_pb") as EngineGrpc;
        const engineProto = require("@pulumi/pulumi/proto/engine_pb") as EngineProto;
        const client = new engineGrpc.EngineClient(address, grpc.credentials.createInsecure());
        return (message) =>
            new Promise<void>((resolve) => {
                const request = new engineProto.LogRequest();
                request.setSeverity(engineProto.LogSeverity.INFO);
                request.setMessage(message);
                request.setUrn("");
                request.setEphemeral(true);
                client.log(request, (err) => {
                    if (err) fallback(message);
                    resolve();
                });
            });
    };
    return (message) => {
        last = last.then(async () => {
            try {
                send ??= connect();
                await send(message);
            } catch {
                fallback(message);
            }
        });
    };
}

/** Ephemeral info through the SDK's log: the engine's when this process has one, the console otherwise. Loaded on first use. */
const pulumiLogReporter: ProgressReporter = (message) => {
    const pulumi = require("@pulumi/pulumi") as typeof Pulumi;
    void pulumi.log.info(message, undefined, undefined, true);
};

/** Installs the reporter that shows the transport's progress in `pulumi up` (see the file's comment for why two ways). */
export function reportTransportProgressToPulumi(): void {
    const address = dynamicProviderEngineAddress();
    setProgressReporter(address ? engineProgressReporter(address, pulumiLogReporter) : pulumiLogReporter);
}
