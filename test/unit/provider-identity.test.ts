import { test } from "node:test";
import * as assert from "node:assert/strict";
import { providers } from "../../components/pulumi/providers";
import { diffProps, hasDrift, hostWorkNeeded, readResult } from "../../components/pulumi/providers/diff";
import { STATE_SCHEMA_VERSION, sha256 } from "../../components/model";
import { TEST_HOST } from "../support/config";

// An address nothing listens on: an update that tried to reach the host would fail.
const UNREACHABLE = { host: "192.0.2.1", port: 9, user: "ubuntu", hostKey: TEST_HOST.hostKey, privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n" };
const MOVED = { ...UNREACHABLE, host: "192.0.2.2", port: 2200, user: "admin" };
const FILE = { path: "/etc/systemd/system/amarktai-api.service", mode: "0644", owner: "root", group: "root", effect: "systemd" as const };
const OWNER = "amarktai-infra/prod/amarktai-api-0123456789ab";

const activationState = {
    connection: UNREACHABLE,
    service: "amarktai-api",
    files: { [FILE.path]: { mode: FILE.mode, owner: FILE.owner, group: FILE.group, effect: FILE.effect } },
    contentHashes: { [FILE.path]: "0123456789abcdef" },
    health: { url: "http://127.0.0.1:8000/health", timeoutSec: 60 },
    owner: OWNER,
    activatedAt: "2026-01-01T00:00:00.000Z",
    generation: 2,
    schemaVersion: STATE_SCHEMA_VERSION,
};
const { activatedAt: _a, generation: _g, schemaVersion: _s, ...activationInputs } = activationState;

/** An AppRelease's inputs but the connection. */
const releaseInputs = {
    service: "amarktai-api",
    release: { id: "aaaaaaaaaaaaaaaa", releasesDir: "/var/amarktai/releases", venvLink: "/var/amarktai/venv", keep: 3 },
    archiveSha256: sha256("archive"),
    files: { "server.py": "app = None\n" },
    executables: [],
    requirements: "uvicorn==0.38.0\n",
};

test("a new address, port or login is an in-place update of every resource that reaches the host, never a replacement", async () => {
    const fileState = { connection: UNREACHABLE, service: "amarktai-api", file: FILE, contentSha256: sha256("unit\n"), owner: OWNER, schemaVersion: STATE_SCHEMA_VERSION };
    const cases: [string, Record<string, unknown>, Record<string, unknown>][] = [
        ["hostFile", fileState, { connection: MOVED, service: "amarktai-api", file: FILE, content: "unit\n", owner: OWNER }],
        ["serviceActivation", activationState, { ...activationInputs, connection: MOVED }],
        ["hostPrepare", { connection: UNREACHABLE, spec: { user: "a" }, adoptedJwtSecret: "", schemaVersion: STATE_SCHEMA_VERSION }, { connection: MOVED, spec: { user: "a" } }],
        ["appRelease", { ...releaseInputs, connection: UNREACHABLE, schemaVersion: STATE_SCHEMA_VERSION }, { ...releaseInputs, connection: MOVED }],
        ["hostAdoption", { connection: UNREACHABLE, spec: { serviceName: "amarktai-api" }, backupDir: "/b", carriedEnv: {}, adoptedAt: "t", schemaVersion: STATE_SCHEMA_VERSION }, { connection: MOVED, spec: { serviceName: "amarktai-api" } }],
    ];
    // Every provider is covered but randomSecret (no host) and resolvedRequirements (its host is used once, when it is
    // created: a new connection is no change at all, see release-resolution.test.ts).
    assert.deepEqual(cases.map(([kind]) => kind).sort(), Object.keys(providers).filter((k) => k !== "randomSecret" && k !== "resolvedRequirements").sort());
    for (const [kind, olds, news] of cases) {
        const d = await providers[kind]!.diff("id", olds, news);
        assert.equal(d.changes, true, `${kind}: the new connection is recorded`);
        assert.deepEqual(d.replaces, [], `${kind}: no replacement`);
        assert.equal(d.deleteBeforeReplace, false, kind);
        // The update records the new connection without reaching the host (which would fail here).
        const { outs } = (await providers[kind]!.update!("id", olds, news)) as { outs: Record<string, unknown> };
        assert.deepEqual(outs["connection"], MOVED, kind);
    }
});

test("rotating only the private key changes nothing", async () => {
    const d = await providers["serviceActivation"]!.diff("id", activationState, { ...activationInputs, connection: { ...UNREACHABLE, privateKey: "other" } });
    assert.equal(d.changes, false);
});

test("a connection-only update keeps the activation's time and generation", async () => {
    const { outs } = (await providers["serviceActivation"]!.update!("id", activationState, { ...activationInputs, connection: MOVED })) as { outs: Record<string, unknown> };
    assert.equal(outs["activatedAt"], activationState.activatedAt);
    assert.equal(outs["generation"], 2);
});

test("state without a schema version (written by an older release) is an update that migrates it", async () => {
    const { schemaVersion: _v, ...older } = activationState;
    const d = await providers["serviceActivation"]!.diff("id", older, activationInputs);
    assert.equal(d.changes, true);
    assert.deepEqual(d.replaces, []);
    const secret = await providers["randomSecret"]!.update!("id", { bytes: 32, value: "kept" }, { bytes: 32 });
    assert.deepEqual(secret.outs, { bytes: 32, value: "kept", schemaVersion: STATE_SCHEMA_VERSION }, "a random secret keeps its value");
});

test("another service name on the same machine replaces (another unit), deleting first", async () => {
    const d = await providers["serviceActivation"]!.diff("id", activationState, { ...activationInputs, service: "other-api" });
    assert.deepEqual(d.replaces, ["service"]);
    assert.equal(d.deleteBeforeReplace, true);
});

test("drift recorded by a refresh, as an object or as text, is a change that works on the host; none is no change", () => {
    const state = { connection: TEST_HOST, spec: { a: 1 }, schemaVersion: STATE_SCHEMA_VERSION };
    const inputs = { connection: TEST_HOST, spec: { a: 1 } };
    assert.equal(diffProps(state, inputs, ["connection", "spec"]).changes, false);
    assert.equal(hostWorkNeeded(state, inputs, ["connection", "spec"]), false);
    for (const drift of [{ directories: { "/x": "missing on the host" } }, "not on the host: the next up builds it again"]) {
        assert.equal(diffProps({ ...state, drift }, inputs, ["connection", "spec"]).changes, true);
        assert.equal(hostWorkNeeded({ ...state, drift }, inputs, ["connection", "spec"]), true);
    }
    for (const none of [{}, "", undefined]) assert.equal(hasDrift({ ...state, drift: none }), false);
});

test("a read with drift returns it in the state and the inputs (without state-only keys); without drift it drops an old one", () => {
    const refreshed = { spec: { a: 1 }, schemaVersion: STATE_SCHEMA_VERSION, drift: { old: "x" } };
    assert.deepEqual(readResult("id", refreshed, {}, ["schemaVersion"]), { id: "id", props: { spec: { a: 1 }, schemaVersion: STATE_SCHEMA_VERSION } });
    assert.deepEqual(readResult("id", refreshed, "broken", ["schemaVersion"]), {
        id: "id",
        props: { spec: { a: 1 }, schemaVersion: STATE_SCHEMA_VERSION, drift: "broken" },
        inputs: { spec: { a: 1 }, drift: "broken" },
    });
});
