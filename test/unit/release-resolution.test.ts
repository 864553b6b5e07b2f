/**
 * Reproducible releases: which configs resolve their requirements, how a
 * lock becomes the release every host builds (its id covers the lock), the
 * checks a lock passes before it is kept, and the script that resolves on a
 * host. The resolution itself runs on hosts in the reproducible e2e test.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { LOCK_MARKER, PIP_REPORT_TO_LOCK_PY, lockOfOutput, resolveRequirementsScript } from "../../components/host";
import { lockedPackages } from "../../components/model";
import { planRelease } from "../../components/plan";
import { providers } from "../../components/pulumi/providers";
import { TEST_HOST, testConfig } from "../support/config";

const FILES = [{ relativePath: "server.py", content: "app = None\n" }];
const ENV_STORE = "/etc/amarktai-infra/amarktai-api/env";

/** What `uv pip compile --generate-hashes --no-header --no-annotate` printed for `uvicorn==0.38.0` on a test host. */
const UV_LOCK = `click==8.5.1 \\
    --hash=sha256:8bb5376d2006950386f8c6427613334a2acadc5f559cb80e638d00b4df957e37 \\
    --hash=sha256:9bbfada76703fd1d784b83eea012e3e8c6a001a876543ef104fa56aaaeb072b4
h11==0.16.0 \\
    --hash=sha256:4e35b956cf45792e4caa5885e69fba00bdbc6ffafbfa020300e549b208ee5ff1 \\
    --hash=sha256:63cf8bbe7522de3bf65932fda1d9c2772064ffb3dae62d55932da54b31cb6c86
uvicorn==0.38.0 \\
    --hash=sha256:48c0afd214ceb59340075b4a052ea1ee91c16fbc2a9b1469cca0e54566977b02 \\
    --hash=sha256:fd97093bdd120a2609fc0d3afe931d4d4ad688b6e75f0f929fde1bc36fe0e91d
`;

test("unpinned requirements are resolved by default; hash-pinned ones and releases.reproducible: false are installed as written", () => {
    const resolved = planRelease(testConfig(), FILES, ENV_STORE);
    assert.equal(resolved.resolution?.requirements, "uvicorn==0.38.0\n");
    assert.equal(resolved.resolution?.installer, "uv");
    assert.equal(planRelease(testConfig({ releases: { reproducible: false } }), FILES, ENV_STORE).resolution, undefined);
    const pinned = planRelease(testConfig({ app: { sourceDir: "demo-app", requirementsFile: "requirements.txt" } }), [...FILES, { relativePath: "requirements.txt", content: UV_LOCK }], ENV_STORE);
    assert.equal(pinned.resolution, undefined);
    assert.equal(pinned.spec.requireHashes, true);
});

test("the resolution's id changes with the requirements and the index, not with the app's files", () => {
    const id = (overrides: Record<string, unknown>, files = FILES) => planRelease(testConfig(overrides), files, ENV_STORE).resolution!.id;
    const base = id({});
    assert.match(base, /^[0-9a-f]{16}$/);
    assert.equal(id({}, [{ relativePath: "server.py", content: "app = 1\n" }]), base);
    assert.notEqual(id({ app: { requirements: ["uvicorn==0.38.0", "httpx"] } }), base);
    assert.notEqual(id({ releases: { indexUrl: "https://pypi.example.org/simple" } }), base);
    assert.notEqual(id({ releases: { installer: "pip" } }), base);
    // Where uv comes from changes how, not what: the same resolution.
    assert.equal(id({ releases: { uvSource: "deployer" } }), base);
});

test("a release planned from a lock installs the lock with hashes required, and its id covers the lock", () => {
    const config = testConfig();
    const written = planRelease(config, FILES, ENV_STORE);
    const locked = planRelease(config, FILES, ENV_STORE, UV_LOCK);
    assert.equal(locked.preview.requirements, UV_LOCK);
    assert.equal(locked.entries[0]!.content.toString("utf8"), UV_LOCK);
    assert.equal(locked.spec.requireHashes, true);
    assert.equal(written.spec.requireHashes, false);
    assert.notEqual(locked.spec.id, written.spec.id);
    // The same lock plans the same release (every host, every run); another lock another one.
    assert.equal(planRelease(config, FILES, ENV_STORE, UV_LOCK).spec.id, locked.spec.id);
    const newerClick = UV_LOCK.replace("click==8.5.1", "click==8.5.2");
    assert.notEqual(planRelease(config, FILES, ENV_STORE, newerClick).spec.id, locked.spec.id);
    // The resolution stays the same: it is what the lock came from.
    assert.deepEqual(locked.resolution, written.resolution);
});

test("a lock is refused before it is kept or installed: no hashes, an option that reads another file, nothing pinned", () => {
    const config = testConfig();
    assert.throws(() => planRelease(config, FILES, ENV_STORE, "uvicorn==0.38.0\nclick==8.5.1\n"), /pin no hashes/);
    assert.throws(() => planRelease(config, FILES, ENV_STORE, `${UV_LOCK}-r /etc/shadow\n`), /refused: line 10: -r is an option/);
    assert.throws(() => planRelease(config, FILES, ENV_STORE, "--require-hashes\n"), /pin no hashes|pin no package/);
    assert.throws(() => planRelease(testConfig({ releases: { reproducible: false } }), FILES, ENV_STORE, UV_LOCK), /need no resolution/);
});

test("the packages of a lock are read from uv's and from pip's lock lines", () => {
    assert.deepEqual(lockedPackages(UV_LOCK), ["click==8.5.1", "h11==0.16.0", "uvicorn==0.38.0"]);
    assert.deepEqual(lockedPackages("PyYAML==6.0.4 \\\n    --hash=sha256:50588147ab2c6a59b5f990a4905db80899a6c2bd197e046a6201f1e67587e794\ntomli==2.0.1 ; python_version < '3.11' \\\n    --hash=sha256:aa\n"), ["PyYAML==6.0.4", "tomli==2.0.1"]);
});

test("the lock is what the resolution prints after its marker, and no marker is an error", () => {
    assert.equal(lockOfOutput(`noise\n${LOCK_MARKER}\n${UV_LOCK}`), UV_LOCK);
    assert.equal(lockOfOutput(`${LOCK_MARKER}\n${UV_LOCK.trimEnd()}`), UV_LOCK);
    assert.throws(() => lockOfOutput(UV_LOCK), /printed no lock/);
});

test("pip's report becomes a lock of each package with its archive's hash, sorted by name; a package from a URL cannot be pinned", () => {
    const item = (name: string, version: string, archive: Record<string, unknown> | undefined) => ({ metadata: { name, version }, download_info: { url: `https://files.example/${name}.whl`, ...(archive ? { archive_info: archive } : {}) } });
    const run = (report: unknown) => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pip-report-"));
        fs.writeFileSync(path.join(dir, "report.json"), JSON.stringify(report));
        try {
            return spawnSync("python3", ["-c", PIP_REPORT_TO_LOCK_PY, path.join(dir, "report.json")], { encoding: "utf8" });
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    };
    const ok = run({ install: [item("uvicorn", "0.38.0", { hashes: { sha256: "ab12" } }), item("Click", "8.5.1", { hash: "sha256=cd34" })] });
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, "Click==8.5.1 \\\n    --hash=sha256:cd34\nuvicorn==0.38.0 \\\n    --hash=sha256:ab12\n");
    const bad = run({ install: [item("mypkg", "1.0", undefined)] });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /cannot pin mypkg: pip resolved it to https:\/\/files.example\/mypkg.whl, not to an archive from the index/);
});

test("the resolution script resolves in the sandbox, reads what the build account wrote only after taking it over, and never carries the requirements on its command line", () => {
    const config = testConfig({ app: { requirements: ["uvicorn==0.38.0", "weird-name-xyzzy>=1"] }, releases: { indexUrl: "https://pypi.example.org/simple" } });
    const resolution = planRelease(config, FILES, ENV_STORE).resolution!;
    const script = resolveRequirementsScript(resolution);
    const syntax = spawnSync("bash", ["-n"], { input: script, encoding: "utf8" });
    assert.equal(syntax.status, 0, syntax.stderr);
    assert.doesNotMatch(script, /weird-name-xyzzy/);
    assert.match(script, /run_installer "uv pip compile" sandboxed "\$uv" pip compile .*--generate-hashes/);
    assert.match(script, /run_installer "pip install --dry-run" sandboxed /);
    const taken = script.indexOf("\ntake_venv\n");
    assert.ok(taken > script.indexOf("pip compile") && taken > script.indexOf("--dry-run"), "root takes the work directory after both resolvers");
    assert.ok(script.indexOf('cat -- "$out"') > taken && script.indexOf("PIP_REPORT") === -1, "the lock is read after take_venv");
    assert.match(script, /\[ -f "\$out" \] && \[ ! -L "\$out" \]/);
    assert.match(script, /trap cleanup EXIT/);
    assert.throws(() => resolveRequirementsScript({ ...resolution, id: "../etc" }), /not a resolution id/);
});

test("a resolution is replaced only by another resolution: a new connection, or a new uv source, keeps the lock", async () => {
    const p = providers["resolvedRequirements"]!;
    const resolution = planRelease(testConfig(), FILES, ENV_STORE).resolution!;
    const connection = { host: TEST_HOST.address, port: 22, user: "ubuntu", hostKey: TEST_HOST.hostKey, privateKey: "k" };
    const olds = { connection, service: "amarktai-api", resolution, resolved: UV_LOCK, packages: lockedPackages(UV_LOCK), schemaVersion: 2 };
    assert.equal((await p.diff("id", olds, { connection: { ...connection, host: "192.0.2.9", port: 2222 }, service: "amarktai-api", resolution })).changes, false);
    assert.equal((await p.diff("id", olds, { connection, service: "amarktai-api", resolution: { ...resolution, uvSource: "deployer" } })).changes, false);
    const other = planRelease(testConfig({ app: { requirements: ["uvicorn==0.37.0"] } }), FILES, ENV_STORE).resolution!;
    const d = await p.diff("id", olds, { connection, service: "amarktai-api", resolution: other });
    assert.equal(d.changes, true);
    assert.deepEqual(d.replaces, ["resolution"]);
    // A refresh reads nothing from a host: the lock in state is the one every host installs.
    assert.deepEqual(await p.read("id", olds), { id: "id", props: olds });
});
