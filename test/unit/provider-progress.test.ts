/**
 * The transport's progress reaches `pulumi up`: in the SDK's dynamic-provider
 * process the messages go to the engine's Log RPC as ephemeral info (checked
 * here against a stand-in engine; the real CLI shows them on the stack's row).
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as net from "net";
import * as grpc from "@grpc/grpc-js";
import * as engineGrpc from "@pulumi/pulumi/proto/engine_grpc_pb";
import * as engineProto from "@pulumi/pulumi/proto/engine_pb";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { dynamicProviderEngineAddress, engineProgressReporter } from "../../components/pulumi/providers/progress";

const DYNAMIC_PROVIDER = "/proj/node_modules/@pulumi/pulumi/cmd/dynamic-provider/index.js";

test("the engine's address is taken only in the SDK's dynamic-provider process", () => {
    assert.equal(dynamicProviderEngineAddress(["node", DYNAMIC_PROVIDER, "127.0.0.1:41477"], DYNAMIC_PROVIDER), "127.0.0.1:41477");
    assert.equal(dynamicProviderEngineAddress(["node", "/proj/index.js", "127.0.0.1:41477"], "/proj/index.js"), undefined);
    assert.equal(dynamicProviderEngineAddress(["node", DYNAMIC_PROVIDER], DYNAMIC_PROVIDER), undefined);
    assert.equal(dynamicProviderEngineAddress(["node", DYNAMIC_PROVIDER, "--flag"], DYNAMIC_PROVIDER), undefined);
    assert.equal(dynamicProviderEngineAddress(["node", DYNAMIC_PROVIDER, "127.0.0.1:1"], undefined), undefined);
});

/** Waits until `condition()` holds, polling; fails after `timeoutMs`. */
async function waitFor(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
    }
}

test("progress goes to the engine as ephemeral info without a resource, in order", async () => {
    const received: engineProto.LogRequest.AsObject[] = [];
    const server = new grpc.Server();
    server.addService(engineGrpc.EngineService, {
        log: (call: grpc.ServerUnaryCall<engineProto.LogRequest, Empty>, callback: grpc.sendUnaryData<Empty>) => {
            received.push(call.request.toObject());
            callback(null, new Empty());
        },
    } as unknown as grpc.UntypedServiceImplementation);
    const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    try {
        const fellBack: string[] = [];
        const report = engineProgressReporter(`127.0.0.1:${port}`, (m) => fellBack.push(m));
        report("waiting for SSH on ubuntu@h:22: connection refused (attempt 1, 0 s of 600 s)");
        report("waiting for SSH on ubuntu@h:22: connection refused (attempt 2, 1 s of 600 s)");
        await waitFor(() => received.length === 2, "two log requests");
        assert.deepEqual(
            received.map((r) => ({ message: r.message, ephemeral: r.ephemeral, urn: r.urn, severity: r.severity })),
            [1, 2].map((n) => ({
                message: `waiting for SSH on ubuntu@h:22: connection refused (attempt ${n}, ${n - 1} s of 600 s)`,
                ephemeral: true,
                urn: "",
                severity: engineProto.LogSeverity.INFO,
            })),
        );
        assert.deepEqual(fellBack, []);
    } finally {
        server.forceShutdown();
    }
});

test("a message the engine does not take goes to the fallback", async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", () => resolve()));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const fellBack: string[] = [];
    engineProgressReporter(`127.0.0.1:${port}`, (m) => fellBack.push(m))("waiting for SSH");
    await waitFor(() => fellBack.length === 1, "the fallback");
    assert.deepEqual(fellBack, ["waiting for SSH"]);
});
