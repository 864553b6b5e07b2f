/**
 * `releases.uvSource: deployer` on the machine running Pulumi: the pinned uv
 * wheel is downloaded once (from the mirror's copy of PyPI's path), checked,
 * cached and reused; a wheel whose checksum differs is refused and never cached.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { createHash } from "crypto";
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { PinnedWheel, UV_VERSION } from "../../components/model";
import { pinnedUvWheel, uvCacheDir } from "../../components/pulumi/providers/uv-deployer";

const FAKE_WHEEL = Buffer.from("PK fake uv wheel bytes\n");
const WHEEL_PATH = "/packages/aa/bb/uv-0.9.5-py3-none-manylinux_2_17_x86_64.whl";
/** A pin shaped like the real one: on PyPI's file server, so the mirror serves it under the same path. */
const pin = (sha256: string): Record<string, PinnedWheel> => ({ x86_64: { url: `https://files.pythonhosted.org${WHEEL_PATH}`, sha256 } });
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** A local mirror serving the fake wheel at its PyPI path, counting requests. */
async function mirror(t: { after: (fn: () => void) => void }, body = FAKE_WHEEL): Promise<{ url: string; requests: string[] }> {
    const requests: string[] = [];
    const server = http.createServer((req, res) => {
        requests.push(req.url ?? "");
        if (req.url === WHEEL_PATH) res.writeHead(200, { "content-type": "application/octet-stream" }).end(body);
        else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    t.after(() => server.close());
    return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/`, requests };
}

function cacheDir(t: { after: (fn: () => void) => void }): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-uv-cache-"));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    return path.join(dir, "uv");
}

test("the wheel is downloaded once from the mirror's copy of its PyPI path, cached by version and architecture, and reused", async (t) => {
    const server = await mirror(t);
    const dir = cacheDir(t);
    const options = { mirror: server.url, cacheDir: dir, wheels: pin(sha(FAKE_WHEEL)) };
    assert.deepEqual(await pinnedUvWheel("x86_64", options), FAKE_WHEEL);
    assert.deepEqual(server.requests, [WHEEL_PATH]);
    const cached = fs.readdirSync(dir);
    assert.equal(cached.length, 1);
    assert.match(cached[0]!, new RegExp(`^uv-${UV_VERSION.replace(/\./g, "\\.")}-x86_64-[0-9a-f]{16}\\.whl$`));
    assert.deepEqual(await pinnedUvWheel("x86_64", options), FAKE_WHEEL);
    assert.deepEqual(server.requests, [WHEEL_PATH], "no second request");
});

test("a cached wheel that no longer matches its pin is downloaded again", async (t) => {
    const server = await mirror(t);
    const dir = cacheDir(t);
    const options = { mirror: server.url, cacheDir: dir, wheels: pin(sha(FAKE_WHEEL)) };
    await pinnedUvWheel("x86_64", options);
    const file = path.join(dir, fs.readdirSync(dir)[0]!);
    fs.writeFileSync(file, "damaged");
    assert.deepEqual(await pinnedUvWheel("x86_64", options), FAKE_WHEEL);
    assert.equal(server.requests.length, 2);
    assert.deepEqual(fs.readFileSync(file), FAKE_WHEEL);
});

test("a wheel whose SHA-256 is not the pinned one is refused and nothing is cached", async (t) => {
    const server = await mirror(t, Buffer.from("tampered wheel"));
    const dir = cacheDir(t);
    const options = { mirror: server.url, cacheDir: dir, wheels: pin(sha(FAKE_WHEEL)) };
    await assert.rejects(pinnedUvWheel("x86_64", options), (e: Error) => {
        assert.match(e.message, new RegExp(`^refusing uv ${UV_VERSION.replace(/\./g, "\\.")} for x86_64 from ${server.url}packages/aa/bb/uv-.*: its SHA-256 is [0-9a-f]{64}, not the pinned ${sha(FAKE_WHEEL)}$`));
        return true;
    });
    assert.equal(fs.existsSync(dir) ? fs.readdirSync(dir).length : 0, 0, "nothing cached");
    await assert.rejects(pinnedUvWheel("x86_64", options), /refusing/, "refused again: nothing was kept");
    assert.equal(server.requests.length, 2);
});

test("an unreachable source fails naming the URL and what to set; an unpinned architecture is refused", async (t) => {
    const dir = cacheDir(t);
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await assert.rejects(pinnedUvWheel("x86_64", { mirror: `http://127.0.0.1:${port}`, cacheDir: dir, wheels: pin(sha(FAKE_WHEEL)) }), new RegExp(`^Error: cannot download uv .* from http://127\\.0\\.0\\.1:${port}/packages/aa/bb/.* on the machine running Pulumi \\(.*ECONNREFUSED.*\\): releases\\.uvSource: deployer needs this machine to reach PyPI's files, or releases\\.uvMirror$`));
    await assert.rejects(pinnedUvWheel("riscv64", { cacheDir: dir }), /no uv is pinned for the architecture riscv64 \(pinned: x86_64, aarch64\)/);
});

test("the wheel cache lives under AMARKTAI_CACHE_DIR, else ~/.cache/amarktai-infra", () => {
    assert.equal(uvCacheDir({ AMARKTAI_CACHE_DIR: "/srv/cache" }), "/srv/cache/uv");
    assert.equal(uvCacheDir({}), path.join(os.homedir(), ".cache", "amarktai-infra", "uv"));
});
