import { test } from "node:test";
import * as assert from "node:assert/strict";
import { MANAGED_MARKER } from "../../components/model";
import { renderSystemdFiles } from "../../components/systemd";
import { testConfig } from "../support/config";

const body = (text: string) => text.split("\n").filter((l) => !l.startsWith("#")).join("\n").trim();

test("the workers override resets ExecStart, then sets the command with --workers", () => {
    const { dropIns } = renderSystemdFiles(testConfig({ app: { socketActivation: false }, overrides: { workers: { workers: 4 } } }));
    assert.equal(dropIns.length, 1);
    assert.equal(dropIns[0]!.path, "/etc/systemd/system/amarktai-api.service.d/10-workers.conf");
    assert.equal(
        body(dropIns[0]!.text),
        "[Service]\nExecStart=\nExecStart=/var/amarktai/venv/bin/python -m uvicorn server:app --host 127.0.0.1 --port 8000 --workers 4 --timeout-worker-healthcheck 30 --log-level info",
    );
});

test("with socket activation the workers override serves fd 3, and a reload of two or more workers is uvicorn's own worker-by-worker restart (SIGHUP)", () => {
    const { dropIns } = renderSystemdFiles(testConfig({ overrides: { workers: { workers: 4 } } }));
    assert.equal(
        body(dropIns[0]!.text),
        "[Service]\nExecStart=\nExecStart=/var/amarktai/venv/bin/python -m uvicorn server:app --fd 3 --workers 4 --timeout-worker-healthcheck 30 --log-level info\nExecReload=\nExecReload=/bin/kill -HUP $MAINPID",
    );
    const one = renderSystemdFiles(testConfig({ overrides: { workers: { workers: 1 } } }));
    assert.match(body(one.dropIns[0]!.text), /^ExecReload=\/bin\/kill -TERM \$MAINPID$/m, "one worker has no supervisor: a graceful stop behind the socket");
});

test("memory and CPU limits render as in the notes", () => {
    const { dropIns } = renderSystemdFiles(testConfig({ overrides: { memory: { order: 10, memoryMax: "2G", memoryHigh: "1.5G" }, cpu: { order: 20, cpuQuota: "200%" } } }));
    assert.deepEqual(
        dropIns.map((d) => [d.path.split("/").pop(), body(d.text)]),
        [
            ["10-memory.conf", "[Service]\nMemoryHigh=1.5G\nMemoryMax=2G"],
            ["20-cpu.conf", "[Service]\nCPUQuota=200%"],
        ],
    );
});

test("extra dependencies go in [Unit]; Restart=no for debugging goes in [Service]", () => {
    const { dropIns } = renderSystemdFiles(
        testConfig({ overrides: { deps: { order: 10, after: ["network.target", "mongodb.service", "redis.service"], requires: ["mongodb.service"] }, debug: { order: 20, restart: "no" } } }),
    );
    assert.equal(body(dropIns[0]!.text), "[Unit]\nAfter=network.target mongodb.service redis.service\nRequires=mongodb.service");
    assert.equal(body(dropIns[1]!.text), "[Service]\nRestart=no");
});

test("an explicit order sets the NN prefix and the application order", () => {
    const { dropIns } = renderSystemdFiles(testConfig({ overrides: { late: { order: 90, restart: "no" }, early: { order: 5, cpuQuota: "50%" } } }));
    assert.deepEqual(dropIns.map((d) => d.path.split("/").pop()), ["05-early.conf", "90-late.conf"]);
});

test("drop-ins follow `order`, not the names or the key order Pulumi hands the program (sorted)", () => {
    // As a stack file reads: workers, memory, cpu. Pulumi passes the object to the program with its keys sorted.
    const written = { workers: { order: 10, workers: 4 }, memory: { order: 20, memoryMax: "2G" }, cpu: { order: 30, cpuQuota: "200%" } };
    const asPulumiHandsIt = JSON.parse(JSON.stringify(Object.fromEntries(Object.entries(written).sort(([a], [b]) => (a < b ? -1 : 1)))));
    assert.deepEqual(Object.keys(asPulumiHandsIt), ["cpu", "memory", "workers"]);
    const { dropIns } = renderSystemdFiles(testConfig({ overrides: asPulumiHandsIt }));
    assert.deepEqual(dropIns.map((d) => d.path.split("/").pop()), ["10-workers.conf", "20-memory.conf", "30-cpu.conf"]);
});

test("a single override needs no order and gets 10", () => {
    const { dropIns } = renderSystemdFiles(testConfig({ overrides: { debug: { restart: "no" } } }));
    assert.deepEqual(dropIns.map((d) => d.path.split("/").pop()), ["10-debug.conf"]);
});

test("a later ExecStart reset keeps the workers set by an earlier drop-in", () => {
    const { dropIns } = renderSystemdFiles(testConfig({ overrides: { workers: { order: 10, workers: 3 }, verbose: { order: 20, logLevel: "debug" } } }));
    assert.match(dropIns[1]!.text, /^ExecStart=.* --workers 3 --timeout-worker-healthcheck 30 --log-level debug$/m);
});

test("every drop-in starts with the managed-file marker", () => {
    const { dropIns } = renderSystemdFiles(testConfig({ overrides: { a: { order: 10, restart: "no" }, b: { order: 20, workers: 2 }, c: { order: 30, environment: { X: "1" } } } }));
    assert.equal(dropIns.length, 3);
    for (const d of dropIns) assert.equal(d.text.split("\n")[0], `# ${MANAGED_MARKER}`, d.path);
});

test("override environment entries are quoted and % is escaped", () => {
    const { dropIns } = renderSystemdFiles(testConfig({ overrides: { env: { environment: { GREETING: 'say "hi" 100%' } } } }));
    assert.match(dropIns[0]!.text, /^Environment="GREETING=say \\"hi\\" 100%%"$/m);
});

test("journald limits render as a drop-in under journald.conf.d", () => {
    const { journald } = renderSystemdFiles(testConfig({ journald: { systemMaxUse: "1G", systemKeepFree: "2G", maxRetentionSec: "30day" } }));
    assert.equal(journald!.path, "/etc/systemd/journald.conf.d/60-amarktai-infra-amarktai-api.conf");
    assert.equal(body(journald!.text), "[Journal]\nSystemMaxUse=1G\nSystemKeepFree=2G\nMaxRetentionSec=30day");
    assert.equal(renderSystemdFiles(testConfig()).journald, undefined);
});
