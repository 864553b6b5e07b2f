/**
 * Reproducible releases (`releases.reproducible`, on by default): a service's
 * unpinned requirements are resolved once per change into a lock with SHA-256
 * hashes, kept in the stack's state, and every host installs exactly that
 * lock. Two container hosts and a package index on this machine whose
 * published versions change during the test, as a real index's do: the steps
 * run in order, each leaving both hosts healthy on a known release.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as http from "http";
import { AddressInfo } from "net";
import * as os from "os";
import { TestStack } from "../../tools/stack";
import { VmInfo, startContainer, stopContainer, vmPrivateKey, vmRun, vmSsh } from "../../tools/vm";
import { Wheel, purePythonWheel } from "../support/wheel";

const MINUTE = 60_000;
const UNIT = "amarktai-api.service";
/** `paths.releases`' default. */
const RELEASES = "/var/amarktai/releases";
const RESOLUTION_TYPE = "pulumi-nodejs:dynamic/amarktai:ResolvedRequirements";
const PACKAGE = "amarktai-lockdemo";
/** What the demo app needs (the config's default requirements, from PyPI), plus the package of the test's own index, unpinned. */
const REQUIREMENTS = ["uvicorn==0.38.0", PACKAGE];

const lockdemo = (version: string, extra = "") => purePythonWheel({ name: PACKAGE, version, files: { "amarktai_lockdemo/__init__.py": `VERSION = "${version}"\n${extra}` } });
const V1_0 = lockdemo("1.0");
const V1_1 = lockdemo("1.1");
/** Another file under 1.1's name: what a compromised index would serve. */
const V1_1_TAMPERED = lockdemo("1.1", "TAMPERED = True\n");

/** The container hosts' names; `after` stops them by name, whether or not their start completed. */
const HOST_NAMES = [`e2e-lock1-${process.pid}`, `e2e-lock2-${process.pid}`] as const;
let h1: VmInfo;
let h2: VmInfo;
let stack: TestStack;
let index: WheelIndex;

/** A PEP 503 index on this machine serving {@link PACKAGE}'s wheels, with `#sha256=` in each link. */
interface WheelIndex {
    /** The index as the hosts reach it. */
    readonly url: string;
    /** Its `host:port`, for `releases.trustedHosts` (plain http). */
    readonly hostPort: string;
    /** Serves exactly these wheels from now on. */
    serve(wheels: readonly Wheel[]): void;
    close(): void;
}

/**
 * This machine's address as the container hosts reach it: their user-mode
 * network does not lead to this machine's loopback (unlike a QEMU VM's
 * 10.0.2.2), but to its own addresses it does.
 */
function deployerAddress(): string {
    const address = Object.values(os.networkInterfaces())
        .flat()
        .find((a) => a !== undefined && a.family === "IPv4" && !a.internal)?.address;
    if (address === undefined) throw new Error("this machine has no IPv4 address besides loopback for the hosts to reach the index at");
    return address;
}

async function startIndex(): Promise<WheelIndex> {
    const address = deployerAddress();
    let served: readonly Wheel[] = [];
    // Every answer is fresh: what the index publishes changes during the test.
    const fresh = { "cache-control": "no-store" };
    const server = http.createServer((req, res) => {
        const path = (req.url ?? "").split("?", 1)[0]!;
        if (path === `/simple/${PACKAGE}/` || path === `/simple/${PACKAGE}`) {
            const links = served.map((w) => `<a href="/files/${w.fileName}#sha256=${w.sha256}">${w.fileName}</a><br/>`).join("\n");
            res.writeHead(200, { "content-type": "text/html; charset=utf-8", ...fresh }).end(`<!DOCTYPE html>\n<html><body>\n${links}\n</body></html>\n`);
            return;
        }
        const wheel = served.find((w) => path === `/files/${w.fileName}`);
        if (wheel) {
            res.writeHead(200, { "content-type": "application/octet-stream", "content-length": wheel.bytes.length, ...fresh }).end(wheel.bytes);
            return;
        }
        // Any other project is not here: the installers take it from PyPI.
        res.writeHead(404, fresh).end();
    });
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, address, resolve));
    const port = (server.address() as AddressInfo).port;
    return {
        url: `http://${address}:${port}/simple`,
        hostPort: `${address}:${port}`,
        serve: (wheels) => (served = [...wheels]),
        close: () => server.close(),
    };
}

const health = (h: VmInfo) => vmSsh(h, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/health").stdout.trim();
const currentRelease = (h: VmInfo) => vmRun(h, `readlink ${RELEASES}/current`).trim();
const invocation = (h: VmInfo) => vmRun(h, `systemctl show -p InvocationID --value ${UNIT}`).trim();
/** The version of the index's package in the current release's venv, and whether it is the tampered file. */
const installedLockdemo = (h: VmInfo) =>
    vmRun(h, `cd / && ${RELEASES}/current/venv/bin/python -I -c 'import amarktai_lockdemo as m; print(m.VERSION, "tampered" if hasattr(m, "TAMPERED") else "genuine")'`).trim();
/** Releases built on the host, from its journal (the build logs them with the tag amarktai-infra). */
const builds = (h: VmInfo) => vmRun(h, "journalctl -q --no-pager -o cat -t amarktai-infra | grep -cE 'release [0-9a-f]{16} built' || true", { root: true }).trim();

/** `name==version` (name normalized as PEP 503 does), sorted. */
const normalized = (packages: readonly string[]) => packages.map((p) => p.replace(/^[^=]+/, (n) => n.replace(/[-_.]+/g, "-").toLowerCase())).sort();

/** Every distribution in the current release's venv as `name==version`, sorted (the venv has no pip: read through importlib.metadata). */
const LIST_DISTRIBUTIONS_PY = [
    "import importlib.metadata as md",
    "print('\\n'.join('%s==%s' % (d.metadata['Name'], d.version) for d in md.distributions()))",
].join("\n");
const venvPackages = (h: VmInfo) => normalized(vmRun(h, `cd / && ${RELEASES}/current/venv/bin/python -I -`, { input: LIST_DISTRIBUTIONS_PY }).trim().split("\n"));

/** The one resolution of the service's requirements in the stack's state, and its outputs. */
async function resolution(): Promise<{ urn: string; resolved: string; packages: string[] }> {
    const exported = await stack.mustRun(["stack", "export"]);
    const state = JSON.parse(exported.stdout.replace(/^[^{]*/, "")) as { deployment: { resources?: { type: string; urn: string; outputs?: Record<string, unknown> }[] } };
    const found = (state.deployment.resources ?? []).filter((r) => r.type === RESOLUTION_TYPE);
    assert.equal(found.length, 1, `one ${RESOLUTION_TYPE} per service, not per host: ${found.map((r) => r.urn).join(", ")}`);
    const { urn, outputs } = found[0]!;
    assert.equal(typeof outputs?.resolved, "string", `${urn}: no plain 'resolved' output: ${JSON.stringify(outputs?.resolved)}`);
    assert.ok(Array.isArray(outputs?.packages), `${urn}: no plain 'packages' output: ${JSON.stringify(outputs?.packages)}`);
    return { urn, resolved: outputs!.resolved as string, packages: outputs!.packages as string[] };
}

/** The lines of an up's output that name the resolution with a step (created, updated, replaced, deleted). */
const resolutionSteps = (out: string) => out.split("\n").filter((l) => l.includes("ResolvedRequirements") && /creat|updat|replac|delet/.test(l));

async function up(what: string) {
    const r = await stack.up();
    assert.equal(r.code, 0, `${what}: up failed:\n${r.stdout}\n${r.stderr}`);
    console.error(`    ${what}: up took ${r.seconds.toFixed(1)}s`);
    return r;
}

const hostEntry = (name: string, h: VmInfo) => ({ name, address: h.host, port: h.port, user: h.user, hostKey: h.hostKey });

before(async () => {
    const t0 = Date.now();
    [h1, h2] = await Promise.all([startContainer(HOST_NAMES[0]), startContainer(HOST_NAMES[1])]);
    console.error(`    2 container hosts started in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    index = await startIndex();
    index.serve([V1_0]);
    stack = await TestStack.create("lock");
    await stack.setConfig({
        hosts: [hostEntry("h1", h1)],
        app: { sourceDir: "demo-app", requirements: REQUIREMENTS },
        releases: { extraIndexUrls: [index.url], trustedHosts: [index.hostPort] },
    });
    await stack.setSecret("sshPrivateKey", vmPrivateKey(h1));
});

after(async () => {
    await Promise.all(HOST_NAMES.map((name) => stopContainer(name)));
    index?.close();
    stack?.cleanup();
});

test("preview --diff of the first up shows one resolution of the requirements to be created", { timeout: 5 * MINUTE }, async () => {
    const r = await stack.run(["preview", "--diff"]);
    assert.equal(r.code, 0, `preview failed:\n${r.stdout}\n${r.stderr}`);
    console.error(`    preview --diff took ${r.seconds.toFixed(1)}s`);
    const creates = r.stdout.match(/\+ pulumi-nodejs:dynamic\/amarktai:ResolvedRequirements: \(create\)/g) ?? [];
    assert.equal(creates.length, 1, r.stdout);
});

test("the first up resolves an unpinned requirement into a hash-pinned lock kept in state, and the host installs exactly that lock", { timeout: 15 * MINUTE }, async () => {
    await up("first up (h1)");
    assert.equal(health(h1), "200");
    assert.match(currentRelease(h1), /^[0-9a-f]{16}$/);
    assert.equal(installedLockdemo(h1), "1.0 genuine");
    // The release's requirements are the lock: every package pinned, each with the hashes of its files.
    const requirements = vmRun(h1, `cat ${RELEASES}/current/requirements.txt`);
    assert.match(requirements, /^amarktai-lockdemo==1\.0\b/m, requirements);
    assert.ok(requirements.includes(`--hash=sha256:${V1_0.sha256}`), `the lock does not pin the wheel's SHA-256:\n${requirements}`);
    assert.match(requirements, /^uvicorn==0\.38\.0\b/m, requirements);
    // Each requirement with its continuation lines: one version, at least one hash.
    const pins = requirements.replace(/\\\n/g, " ").split("\n").filter((l) => /^[A-Za-z0-9]/.test(l));
    assert.ok(pins.length >= 2, requirements);
    for (const pin of pins) assert.match(pin, /^\S+==\S+\s.*--hash=sha256:[0-9a-f]{64}/, `not pinned to one version with its hash: ${pin}`);
    const state = await resolution();
    assert.ok(state.packages.includes("amarktai-lockdemo==1.0"), `packages: ${state.packages.join(" ")}`);
    assert.equal(state.resolved.trim(), requirements.trim(), "the release is built from the lock in state");
    const installed = venvPackages(h1);
    for (const p of normalized(state.packages)) assert.ok(installed.includes(p), `${p} of the lock is not in the venv: ${installed.join(" ")}`);
});

test("a host added after the index published a newer version gets the locked version: same release and packages as the first host, which is not rebuilt, and the lock is kept", { timeout: 15 * MINUTE }, async () => {
    index.serve([V1_0, V1_1]);
    const lock = await resolution();
    const release = currentRelease(h1);
    const h1Builds = builds(h1);
    const h1Invocation = invocation(h1);
    await stack.setConfig({ hosts: [hostEntry("h1", h1), hostEntry("h2", h2)] });
    const r = await up("adding h2");
    assert.deepEqual(resolutionSteps(r.stdout), [], "the resolution was created, updated or replaced");
    assert.deepEqual(await resolution(), lock, "the lock in state changed");
    assert.equal(health(h2), "200");
    assert.equal(installedLockdemo(h2), "1.0 genuine", "the new host did not get the locked version");
    assert.equal(currentRelease(h2), release, "the hosts run different releases");
    assert.deepEqual(venvPackages(h2), venvPackages(h1), "the hosts' venvs hold different packages");
    // The first host was left alone.
    assert.equal(currentRelease(h1), release);
    assert.equal(builds(h1), h1Builds, "h1 built a release again");
    assert.equal(invocation(h1), h1Invocation, "h1 was restarted");
    assert.equal(health(h1), "200");
});

test("changing the requirements resolves them again: every host moves to the newer version, one release and one package set", { timeout: 15 * MINUTE }, async () => {
    const before = await resolution();
    const release = currentRelease(h1);
    await stack.setConfig({ app: { sourceDir: "demo-app", requirements: ["uvicorn==0.38.0", `${PACKAGE}>=1.0`] } });
    await up("requirements changed");
    const after = await resolution();
    assert.notEqual(after.resolved, before.resolved, "the requirements were not resolved again");
    assert.ok(after.packages.includes("amarktai-lockdemo==1.1"), `packages: ${after.packages.join(" ")}`);
    assert.ok(after.resolved.includes(`--hash=sha256:${V1_1.sha256}`), after.resolved);
    for (const h of [h1, h2]) {
        assert.equal(health(h), "200", `${h.name} is not healthy`);
        assert.equal(installedLockdemo(h), "1.1 genuine", `${h.name} did not move to 1.1`);
    }
    const moved = currentRelease(h1);
    assert.notEqual(moved, release, "the release id did not change with the lock");
    assert.equal(currentRelease(h2), moved, "the hosts run different releases");
    const packages = venvPackages(h1);
    assert.deepEqual(venvPackages(h2), packages, "the hosts' venvs hold different packages");
    for (const p of normalized(after.packages)) assert.ok(packages.includes(p), `${p} of the lock is not in the venv: ${packages.join(" ")}`);
});

test("a rebuild while the index serves other bytes under a locked file's name fails on the hash, and both hosts keep running their release", { timeout: 15 * MINUTE }, async () => {
    index.serve([V1_0, V1_1_TAMPERED]);
    const lock = await resolution();
    const release = currentRelease(h1);
    const invocations = [invocation(h1), invocation(h2)];
    const h1Builds = builds(h1);
    // A package slipped into h2's venv by hand: the refresh finds the release broken and the up builds it again.
    vmRun(h2, `mkdir "$(echo ${RELEASES}/current/venv/lib/python3*/site-packages)/slipped-1.0.dist-info"`, { root: true });
    const r = await stack.up(["--refresh"]);
    console.error(`    rebuild from a tampered index: up took ${r.seconds.toFixed(1)}s`);
    const out = `${r.stdout}\n${r.stderr}`;
    assert.notEqual(r.code, 0, `the up should fail:\n${out}`);
    assert.match(out, /[Hh]ash mismatch|DO NOT MATCH THE HASHES/, out);
    assert.match(out, /amarktai-lockdemo/, out);
    // The refresh did not resolve again against the index: the lock still pins the genuine file.
    assert.deepEqual(await resolution(), lock, "the lock in state changed");
    for (const [i, h] of [h1, h2].entries()) {
        assert.equal(health(h), "200", `${h.name} is not healthy`);
        assert.equal(currentRelease(h), release, `${h.name} left its release`);
        assert.equal(invocation(h), invocations[i], `${h.name} was restarted`);
        assert.equal(installedLockdemo(h), "1.1 genuine", `${h.name} runs the tampered file`);
    }
    assert.equal(builds(h1), h1Builds, "h1 built a release");
});
