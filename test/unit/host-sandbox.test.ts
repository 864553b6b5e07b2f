/**
 * The release build's sandbox: the unit properties every installer runs
 * under, and root's taking of the finished venv, run for real against a
 * scratch tree that `nobody` (playing the build account) owns. Needs root
 * (chown); the sandboxed installers themselves run in the releases e2e test.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PRELUDE, SANDBOX_PROPERTIES, buildAccountName, buildReleaseScript, sandboxAllowedAddresses, sandboxLines } from "../../components/host";
import { planService } from "../../components/plan";
import { testConfig } from "../support/config";

const NOBODY = 65534;

/** A release directory (root's, under root's home: never /tmp) whose `venv` the build account made. */
function release(): { rel: string; venv: string; done: () => void } {
    assert.equal(process.getuid?.(), 0, "needs root: it gives the scratch venv to nobody and takes it back");
    const rel = fs.mkdtempSync(path.join(os.homedir(), ".sandbox-"));
    fs.chmodSync(rel, 0o755);
    const venv = path.join(rel, "venv");
    fs.mkdirSync(path.join(venv, "bin"), { recursive: true });
    fs.writeFileSync(path.join(venv, "pyvenv.cfg"), "home = /usr/bin\n");
    fs.writeFileSync(path.join(venv, ".lock"), "", { mode: 0o777 });
    fs.chmodSync(path.join(venv, ".lock"), 0o777);
    fs.symlinkSync("/usr/bin/python3", path.join(venv, "bin", "python"));
    return { rel, venv, done: () => fs.rmSync(rel, { recursive: true, force: true }) };
}

/** Gives every entry of `dir` (links included) to nobody. */
function giveToNobody(dir: string): void {
    const r = spawnSync("chown", ["-R", "-h", `${NOBODY}:${NOBODY}`, dir]);
    assert.equal(r.status, 0, String(r.stderr));
}

/** Runs `take_venv` for `rel` with nobody as the build account. */
function takeVenv(rel: string): { status: number; stderr: string } {
    const script = [...PRELUDE, "ID=0123456789abcdef", ...sandboxLines({ releasesDir: "/var/amarktai/releases", id: "0123456789abcdef" }), `REL=${JSON.stringify(rel)}`, `BUILD_UID=${NOBODY}`, "take_venv"].join("\n");
    const r = spawnSync("bash", ["-c", script], { encoding: "utf8" });
    return { status: r.status ?? -1, stderr: r.stderr };
}

/** `uid:gid mode` of each entry under `dir`, links not followed. */
function owners(dir: string): string[] {
    const out: string[] = [];
    const walk = (p: string): void => {
        const st = fs.lstatSync(p);
        out.push(`${path.relative(dir, p) || "."} ${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)}${st.isSymbolicLink() ? " link" : ""}`);
        if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) walk(path.join(p, n));
    };
    walk(dir);
    return out;
}

test("a venv the build account made is root's afterwards, and nothing in it is writable by group or others", () => {
    const { rel, venv, done } = release();
    try {
        giveToNobody(venv);
        const r = takeVenv(rel);
        assert.equal(r.status, 0, r.stderr);
        const entries = owners(venv);
        assert.deepEqual(entries.filter((l) => l.split(" ")[1] !== "0:0"), [], "entries not root's");
        // A link's own mode means nothing (always 0777): every other entry must not be writable by group or others.
        const files = entries.filter((l) => !l.endsWith(" link"));
        assert.equal(files.length, entries.length - 1, "one link: bin/python");
        assert.deepEqual(files.filter((l) => (parseInt(l.split(" ")[2]!, 8) & 0o022) !== 0), [], "still writable by group or others");
        // The link still points where it did: chown and chmod never followed it.
        assert.equal(fs.readlinkSync(path.join(venv, "bin", "python")), "/usr/bin/python3");
        assert.equal(fs.statSync("/usr/bin/python3").uid, 0);
    } finally {
        done();
    }
});

for (const [what, plant, named] of [
    ["a file of another owner", (venv: string) => fs.writeFileSync(path.join(venv, "bin", "planted"), "root's"), "bin/planted"],
    ["a hard link", (venv: string) => fs.linkSync(path.join(venv, "pyvenv.cfg"), path.join(venv, "bin", "second-name")), "pyvenv.cfg|bin/second-name"],
    ["a set-user-id file", (venv: string) => { fs.writeFileSync(path.join(venv, "bin", "suid"), "x"); spawnSync("chown", [`${NOBODY}:${NOBODY}`, path.join(venv, "bin", "suid")]); fs.chmodSync(path.join(venv, "bin", "suid"), 0o4755); }, "bin/suid"],
] as const) {
    test(`a venv holding ${what} is refused, named, and left as it was`, () => {
        const { rel, venv, done } = release();
        try {
            giveToNobody(venv);
            plant(venv);
            const before = owners(venv);
            const r = takeVenv(rel);
            assert.equal(r.status, 1, r.stderr);
            assert.match(r.stderr, new RegExp(`error: the build left ${rel.replace(/[/.]/g, "\\$&")}/venv/(${named}), which the build account did not create as a plain file.*refusing the release`));
            assert.deepEqual(owners(venv), before, "the tree changed owner or mode although it was refused");
        } finally {
            done();
        }
    });
}

test("a release without a venv directory is refused", () => {
    const { rel, venv, done } = release();
    try {
        fs.rmSync(venv, { recursive: true });
        fs.symlinkSync("/etc", venv);
        const r = takeVenv(rel);
        assert.equal(r.status, 1);
        assert.match(r.stderr, /error: the build left no venv directory/);
        assert.equal(fs.statSync("/etc").uid, 0);
    } finally {
        done();
    }
});

test("every installer of the build runs through the sandbox, and nothing the build wrote runs as root after it", () => {
    const script = buildReleaseScript(planService(testConfig({ app: { sourceDir: "demo-app" } }), [{ relativePath: "server.py", content: "app = None\n" }]).release.spec, "0".repeat(64));
    const installerCalls = script.split("\n").filter((l) => /run_installer "/.test(l));
    assert.equal(installerCalls.length, 4, installerCalls.join("\n"));
    for (const l of installerCalls) assert.match(l, /run_installer "[^"]+" sandboxed /, l);
    const after = script.slice(script.indexOf("\ntake_venv\n"));
    assert.ok(after.length < script.length, "the build takes the venv");
    assert.doesNotMatch(after, /\$REL\/venv\/bin\//, "after take_venv root runs nothing from the venv");
});

test("the sandbox leaves the build no way to gain privileges or write outside the new venv", () => {
    for (const p of ["ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes", "CapabilityBoundingSet=", "RestrictSUIDSGID=yes", "PrivateDevices=yes"]) {
        assert.ok(SANDBOX_PROPERTIES.includes(p), p);
    }
    const lines = sandboxLines({ releasesDir: "/var/amarktai/releases", id: "0123456789abcdef" }).join("\n");
    assert.match(lines, /-p "User=\$BUILD_ACCOUNT" -p "Group=\$BUILD_ACCOUNT"/);
    assert.match(lines, /-p "ReadWritePaths=\$REL\/venv"/);
    assert.equal((lines.match(/ReadWritePaths/g) ?? []).length, 1, "one writable path");
});

test("the sandbox reaches neither loopback nor link-local addresses, except the DNS stubs and an index configured on one", () => {
    assert.ok(SANDBOX_PROPERTIES.includes("IPAddressDeny=127.0.0.0/8 ::1/128 169.254.0.0/16 fe80::/64 224.0.0.0/4 ff00::/8"));
    assert.deepEqual(sandboxAllowedAddresses(["https://pypi.org/simple", "http://10.0.2.2:8080/simple"]), ["127.0.0.53", "127.0.0.54"]);
    assert.deepEqual(sandboxAllowedAddresses(["http://127.0.0.1:3141/root/pypi/+simple/", "http://[::1]:8080/simple", "http://169.254.10.1/simple"]), ["127.0.0.53", "127.0.0.54", "127.0.0.1", "::1", "169.254.10.1"]);
    assert.deepEqual(sandboxAllowedAddresses(["http://localhost:8080/simple"]), ["127.0.0.53", "127.0.0.54", "127.0.0.1", "::1"]);
    const script = buildReleaseScript(planService(testConfig({ app: { sourceDir: "demo-app" }, releases: { indexUrl: "http://127.0.0.1:3141/simple" } }), [{ relativePath: "server.py", content: "app = None\n" }]).release.spec, "0".repeat(64));
    assert.match(script, /-p 'IPAddressAllow=127\.0\.0\.53 127\.0\.0\.54 127\.0\.0\.1'/);
});

test("each release builds as its own throwaway account, named after the release and its releases directory, and deleted whatever the outcome", () => {
    const spec = planService(testConfig({ app: { sourceDir: "demo-app" } }), [{ relativePath: "server.py", content: "app = None\n" }]).release.spec;
    // The account's name as the script computes it, from the script's own lines.
    const lines = sandboxLines(spec);
    const r = spawnSync("bash", ["-c", [`ID=${spec.id}`, lines.find((l) => l.startsWith("BUILD_ACCOUNT="))!, 'printf %s "$BUILD_ACCOUNT"'].join("\n")], { encoding: "utf8" });
    assert.equal(r.stdout, buildAccountName(spec));
    assert.match(r.stdout, /^amarktai-build-[0-9a-f]{12}$/);
    assert.ok(r.stdout.length <= 32, "useradd takes at most 32 characters");
    assert.notEqual(buildAccountName({ ...spec, releasesDir: "/var/amarktai-worker/releases" }), r.stdout, "another service building the same id at the same time runs as another account");
    const script = buildReleaseScript(spec, "0".repeat(64));
    assert.match(script, /^cleanup\(\) \{ local rc=\$\?; drop_build_account; /m, "the exit trap deletes the account on success and failure alike");
    assert.match(script, /^build_account$/m);
});
