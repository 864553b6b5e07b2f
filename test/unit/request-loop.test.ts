/**
 * The request loop that measures downtime on a test host: its Python loop run
 * here with python3 against real loopback HTTP servers of this process (healthy,
 * gone, back again, slow, answering 503), and its starter and stopper run with
 * bash on this machine (the `setsid` launcher: no systemd as PID 1 here).
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { ChildProcess, execFile, spawn } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { REQUEST_LOOP_PY, RequestLoop, RequestLoopResult, RunOnHost, formatRequestLoop } from "../support/request-loop";
import { closedPort } from "../support/net";

type TestContext = { after: (fn: () => void | Promise<void>) => void };

/** Waits until `check` holds, polling; fails naming `what` after `ms`. */
async function until(what: string, ms: number, check: () => boolean): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
        if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
    }
}

/** A temporary directory removed after the test. */
function scratch(t: TestContext, prefix: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    return dir;
}

/** A loopback HTTP server; `handle` gets each request's 1-based number, and `served` counts the requests it answered. */
interface TestServer {
    readonly port: number;
    readonly url: string;
    readonly served: () => number;
    /** Stops listening (later connections are refused). */
    readonly close: () => void;
}

type Handler = (n: number, res: http.ServerResponse, server: http.Server) => void;

const answer200: Handler = (_n, res) => res.end("ok");

/** Starts a server on `port` (0: one the kernel picks), closed after the test. */
async function serve(t: TestContext, handle: Handler = answer200, port = 0): Promise<TestServer> {
    let count = 0;
    let served = 0;
    const server = http.createServer((_req, res) => {
        res.on("finish", () => served++);
        handle(++count, res, server);
    });
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    const bound = (server.address() as net.AddressInfo).port;
    const close = () => {
        server.close();
        server.closeAllConnections();
    };
    t.after(close);
    return { port: bound, url: `http://127.0.0.1:${bound}/health`, served: () => served, close };
}

/** The Python loop running here: its files and its process. */
interface LocalLoop {
    readonly resultPath: string;
    readonly stopPath: string;
    readonly startedPath: string;
    readonly child: ChildProcess;
}

/** Runs REQUEST_LOOP_PY with python3 against `url`; killed after the test if still running. */
function runLoop(t: TestContext, url: string, bounds: { maxSeconds?: number; maxRequests?: number; intervalMs?: number }): LocalLoop {
    const dir = scratch(t, "request-loop-");
    const resultPath = path.join(dir, "result.json");
    const stopPath = path.join(dir, "stop");
    const args = [url, resultPath, stopPath, String(bounds.maxSeconds ?? 120), String(bounds.maxRequests ?? 1_000_000), String(bounds.intervalMs ?? 10)];
    const child = spawn("python3", ["-c", REQUEST_LOOP_PY, ...args], { stdio: ["ignore", "inherit", "inherit"] });
    t.after(() => {
        if (child.exitCode === null) child.kill("SIGKILL");
    });
    return { resultPath, stopPath, startedPath: `${resultPath}.started`, child };
}

/** The loop's result, once its file appears (up to `ms`). */
async function resultOf(loop: LocalLoop, ms = 60_000): Promise<RequestLoopResult> {
    await until("the loop's result file", ms, () => fs.existsSync(loop.resultPath));
    return JSON.parse(fs.readFileSync(loop.resultPath, "utf8")) as RequestLoopResult;
}

/** The invariants every result keeps. */
function assertConsistent(r: RequestLoopResult): void {
    assert.equal(r.requests, r.ok + r.failed, JSON.stringify(r));
    assert.equal(r.failures.length, Math.min(r.failed, 20), JSON.stringify(r));
    assert.ok(r.p50Ms <= r.maxWaitMs, JSON.stringify(r));
    assert.ok(Date.parse(r.startedAt) <= Date.parse(r.endedAt), JSON.stringify(r));
}

test("against a healthy server every request is answered 200, none fails, and the loop ends at its time bound", async (t) => {
    const server = await serve(t);
    const loop = runLoop(t, server.url, { maxSeconds: 1 });
    const r = await resultOf(loop);
    assertConsistent(r);
    assert.ok(r.requests > 0, JSON.stringify(r));
    assert.equal(r.ok, r.requests);
    assert.equal(r.requests, server.served());
    assert.equal(r.failed, 0);
    assert.deepEqual(r.failures, []);
    assert.equal(r.stoppedBy, "max-seconds");
    assert.ok(fs.existsSync(loop.startedPath), "the loop marks its first request");
    assert.ok(!fs.existsSync(`${loop.resultPath}.tmp`), "the result is renamed into place");
});

test("when the server stops listening mid-run, every later request is a failure naming the refused connection", async (t) => {
    // It answers four requests, then closes its listening socket before answering the fifth: the sixth on must be refused.
    const server = await serve(t, (n, res, http) => {
        if (n === 5) http.close();
        res.end("ok");
    });
    const loop = runLoop(t, server.url, { maxRequests: 12 });
    const r = await resultOf(loop);
    assertConsistent(r);
    assert.equal(server.served(), 5);
    assert.deepEqual([r.requests, r.ok, r.failed, r.stoppedBy], [12, 5, 7, "max-requests"]);
    for (const f of r.failures) assert.match(f.error, /^ConnectionRefusedError: .*Connection refused/, JSON.stringify(r.failures));
    const times = r.failures.map((f) => f.atMs);
    assert.deepEqual(times, [...times].sort((a, b) => a - b), "failures in the order they happened");
});

test("requests fail while nothing listens and are answered again once the server is back", async (t) => {
    const port = await closedPort();
    const loop = runLoop(t, `http://127.0.0.1:${port}/health`, {});
    // The marker follows the first request, made while nothing listened: at least that one was refused.
    await until("the loop's first request", 30_000, () => fs.existsSync(loop.startedPath));
    const server = await serve(t, answer200, port);
    await until("three answered requests", 30_000, () => server.served() >= 3);
    fs.writeFileSync(loop.stopPath, "");
    const r = await resultOf(loop);
    assertConsistent(r);
    assert.ok(r.failed >= 1, JSON.stringify(r));
    assert.equal(r.ok, server.served());
    assert.equal(r.stoppedBy, "stop-file");
    assert.match(r.failures[0]!.error, /^ConnectionRefusedError: .*Connection refused/);
    assert.ok(r.failures[0]!.atMs < 1000, "the first request is the first failure");
});

test("a 1.5 s answer is the longest wait, and slow is not failed", async (t) => {
    const server = await serve(t, (n, res) => (n === 2 ? setTimeout(() => res.end("ok"), 1500) : res.end("ok")));
    const loop = runLoop(t, server.url, { maxRequests: 4 });
    const r = await resultOf(loop);
    assertConsistent(r);
    assert.deepEqual([r.requests, r.ok, r.failed], [4, 4, 0]);
    assert.ok(r.maxWaitMs >= 1400, `longest wait ${r.maxWaitMs} ms`);
    assert.ok(r.p50Ms < 1400, `median ${r.p50Ms} ms`);
});

test("an answer other than 200 is a failure named by its status", async (t) => {
    const server = await serve(t, (n, res) => {
        res.statusCode = n === 2 ? 503 : 200;
        res.end();
    });
    const loop = runLoop(t, server.url, { maxRequests: 3 });
    const r = await resultOf(loop);
    assertConsistent(r);
    assert.deepEqual([r.requests, r.ok, r.failed], [3, 2, 1]);
    assert.equal(r.failures[0]!.error, "HTTP 503 Service Unavailable");
});

test("the stop file ends the loop, and its result says so", async (t) => {
    const server = await serve(t);
    const loop = runLoop(t, server.url, { maxSeconds: 600, intervalMs: 2000 });
    await until("the loop's first request", 30_000, () => server.served() >= 1);
    const exited = new Promise<number | null>((resolve) => loop.child.once("exit", (code) => resolve(code)));
    // The loop is in its 2 s pause: the stop file cuts it short.
    fs.writeFileSync(loop.stopPath, "");
    const r = await resultOf(loop);
    assertConsistent(r);
    assert.equal(r.stoppedBy, "stop-file");
    assert.equal(r.requests, server.served());
    assert.equal(await exited, 0);
});

test("the loop makes exactly its maximum number of requests", async (t) => {
    const server = await serve(t);
    const loop = runLoop(t, server.url, { maxRequests: 7 });
    const r = await resultOf(loop);
    assertConsistent(r);
    assert.deepEqual([r.requests, r.ok, r.stoppedBy], [7, 7, "max-requests"]);
    assert.equal(server.served(), 7);
});

/** Runs each script with bash on this machine, as a host's root shell would; `env` replaces the environment. */
function localShell(env?: NodeJS.ProcessEnv): RunOnHost {
    return (script, stdin) =>
        new Promise((resolve) => {
            const child = execFile("bash", ["-c", script], { encoding: "utf8", env: env ?? process.env }, (err, stdout, stderr) =>
                resolve({ stdout, stderr, code: err ? (typeof err.code === "number" ? err.code : 1) : 0 }),
            );
            child.stdin!.end(stdin ?? "");
        });
}

/** The state of process `pid` (`R`, `S`, `Z`, …), or "" once it is gone. */
function processState(pid: number): string {
    try {
        return fs.readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "").charAt(0);
    } catch {
        return "";
    }
}

test("RequestLoop starts the loop detached, returns once it has made a request, and stop returns the figures and leaves nothing behind", async (t) => {
    const parentDir = scratch(t, "request-loop-parent-");
    const server = await serve(t);
    const loop = await RequestLoop.start(localShell(), { url: server.url, launcher: "setsid", parentDir, intervalMs: 10 });
    assert.ok(server.served() >= 1, "start returns after the first request");
    const pid = Number(fs.readFileSync(path.join(loop.dir, "pid"), "utf8"));
    t.after(() => {
        if (!["", "Z"].includes(processState(pid))) process.kill(pid, "SIGKILL");
    });
    await until("five answered requests", 30_000, () => server.served() >= 5);
    const r = await loop.stop();
    assertConsistent(r);
    assert.equal(r.stoppedBy, "stop-file");
    assert.equal(r.failed, 0);
    assert.equal(r.requests, server.served());
    assert.ok(["", "Z"].includes(processState(pid)), `the loop's process ended (state ${processState(pid)})`);
    assert.deepEqual(fs.readdirSync(parentDir), [], "its files are removed");
    assert.match(formatRequestLoop("env change", r), new RegExp(`^env change: ${r.requests} requests, 0 failed, longest wait \\d+ ms$`));
    await assert.rejects(loop.stop(), /already stopped/);
});

test("a loop that dies before its first request fails start with its output, and leaves nothing behind", async (t) => {
    const parentDir = scratch(t, "request-loop-parent-");
    const bin = scratch(t, "request-loop-bin-");
    // A python3 that cannot run the loop.
    fs.writeFileSync(path.join(bin, "python3"), "#!/bin/sh\necho 'python3: broken interpreter' >&2\nexit 3\n", { mode: 0o755 });
    const run = localShell({ ...process.env, PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}` });
    await assert.rejects(RequestLoop.start(run, { url: "http://127.0.0.1:9/health", launcher: "setsid", parentDir }), /ended before its first request:\npython3: broken interpreter/);
    assert.deepEqual(fs.readdirSync(parentDir), []);
});

test("on a host the loop runs as its own transient unit, with systemd's variable expansion off", async () => {
    const scripts: string[] = [];
    const result: RequestLoopResult = { requests: 3, ok: 2, failed: 1, maxWaitMs: 1234.5, p50Ms: 2, failures: [{ atMs: 1500, error: "HTTP 503 Service Unavailable" }], startedAt: "2025-01-01T00:00:00.000Z", endedAt: "2025-01-01T00:00:01.000Z", stoppedBy: "stop-file" };
    const run: RunOnHost = async (script) => {
        scripts.push(script);
        return { stdout: scripts.length === 2 ? JSON.stringify(result) : "", stderr: "", code: 0 };
    };
    const loop = await RequestLoop.start(run, { url: "http://127.0.0.1:8000/health" });
    assert.match(loop.unit, /^request-loop-[0-9a-f]{12}$/);
    assert.equal(loop.dir, `/run/${loop.unit}`);
    assert.match(scripts[0]!, new RegExp(`^systemd-run --unit='${loop.unit}' --collect --quiet --expand-environment=no .* python3 -c '`, "m"));
    assert.match(scripts[0]!, /^set -euo pipefail$/m);
    assert.deepEqual(await loop.stop(), result);
    assert.equal(formatRequestLoop("env change", result), "env change: 3 requests, 1 failed, longest wait 1.2 s (first failure at 1.5 s: HTTP 503 Service Unavailable)");
});
