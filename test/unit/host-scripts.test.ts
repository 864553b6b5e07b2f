import { test } from "node:test";
import * as assert from "node:assert/strict";
import { execFileSync, spawnSync } from "child_process";
import { activationScript, buildReleaseScript, detachedScript, envReadScript, parseEnvRead, prepareScript, quoteScript, readEnvValueScript, removalScript, shellQuote, stageFileScript, unstageFileScript } from "../../components/host";
import { DEFAULT_HOST_WAITS, MANAGED_MARKER, fileIdForPath } from "../../components/model";
import { planService } from "../../components/plan";
import { testConfig } from "../support/config";

const HOSTILE = ["plain", "with space", "it's", `"double"`, "$(touch /tmp/pwned)", "`id`", "a;b|c&d", "back\\slash", "*?[glob]", "~user", "tab\there", "", "-n"];

test("shellQuote makes any value one literal word for bash", () => {
    for (const value of HOSTILE) {
        const out = execFileSync("bash", ["-c", `printf '%s' ${shellQuote(value)}`], { encoding: "utf8" });
        assert.equal(out, value);
    }
});

test("shellQuote refuses newlines and control characters", () => {
    assert.throws(() => shellQuote("a\nb"), /control character or newline/);
    assert.throws(() => shellQuote("a\u0000b"), /control character/);
});

test("quoteScript keeps a multi-line script intact for bash -c", () => {
    const script = "printf '%s\\n' \"it's\"\necho $((1+2))\n";
    const out = execFileSync("bash", ["-c", `bash -c ${quoteScript(script)}`], { encoding: "utf8" });
    assert.equal(out, "it's\n3\n");
});

const config = testConfig({ overrides: { workers: { workers: 4 } }, journald: { systemMaxUse: "1G" } });
const releaseConfig = testConfig({ app: { sourceDir: "demo-app" }, overrides: { workers: { workers: 4 } } });
const plan = planService(releaseConfig, [{ relativePath: "server.py", content: "app = None\n" }]);
const files = plan.files.map((f) => f.file);

/** The activation of `plan` with nothing removed; cases add what they test. */
const ACTIVATION = {
    serviceName: "amarktai-api",
    unitName: "amarktai-api.service",
    files,
    removed: [],
    marker: MANAGED_MARKER,
    links: plan.links,
    account: { user: "amarktai", group: "amarktai" },
    healthUrl: "http://127.0.0.1:8000/health",
    healthTimeoutSec: 60,
};

const SCRIPTS: [string, string][] = [
    ["prepare", prepareScript(plan.prepare, DEFAULT_HOST_WAITS)],
    ["stage", stageFileScript("amarktai-api", files[0]!)],
    ["unstage", unstageFileScript("amarktai-api", files[0]!)],
    [
        "activation",
        activationScript({
            serviceName: "amarktai-api",
            unitName: "amarktai-api.service",
            files,
            removed: [{ path: "/etc/systemd/system/amarktai-api.service.d/20-old.conf", effect: "systemd" }],
            marker: MANAGED_MARKER,
            links: plan.links,
            account: { user: "amarktai", group: "amarktai" },
            healthUrl: "http://127.0.0.1:8000/health",
            healthTimeoutSec: 60,
        }),
    ],
    ["release build", buildReleaseScript(plan.release.spec, "0".repeat(64))],
    [
        "activation with a release",
        activationScript({ ...ACTIVATION, release: plan.release.spec }),
    ],
    ["detached", detachedScript("activate amarktai-api.service", "echo 'it''s'\nexit 0\n")],
    ["read env value", readEnvValueScript(["/etc/amarktai-infra/amarktai-api/env", "/var/amarktai/app/backend/.env"], "JWT_SECRET")],
    ["read env value trusting the service account", readEnvValueScript(["/etc/amarktai-infra/amarktai-api/env", "/var/amarktai/app/backend/.env"], "JWT_SECRET", { user: "amarktai", group: "amarktai" })],
    ["env read", envReadScript("/var/amarktai/app/backend/.env", { user: "amarktai", group: "amarktai" })],
    ["removal", removalScript({ serviceName: "amarktai-api", unitName: "amarktai-api.service", files, marker: MANAGED_MARKER })],
    ["unstage by an owner", unstageFileScript("amarktai-api", files[0]!, { owner: "amarktai-infra/prod/amarktai-api-0123456789ab", generation: 3 })],
    [
        "activation recording its owner",
        activationScript({ ...ACTIVATION, ownership: { owner: "amarktai-infra/prod/amarktai-api-0123456789ab", generation: 4 } }),
    ],
    ["removal by an owner", removalScript({ serviceName: "amarktai-api", unitName: "amarktai-api.service", files, marker: MANAGED_MARKER, ownership: { owner: "amarktai-infra/prod/amarktai-api-0123456789ab", generation: 4 } })],
    ["removal with purge", removalScript({ serviceName: "amarktai-api", unitName: "amarktai-api.service", files, marker: MANAGED_MARKER, purge: plan.purge ?? { paths: ["/var/amarktai/app"], envLink: "/var/amarktai/app/backend/.env", user: "amarktai", group: "amarktai" } })],
];

for (const [name, script] of SCRIPTS) {
    test(`the ${name} script parses with bash -n and passes shellcheck`, () => {
        const parsed = spawnSync("bash", ["-n"], { input: script, encoding: "utf8" });
        assert.equal(parsed.status, 0, parsed.stderr);
        const checked = spawnSync("shellcheck", ["--shell=bash", "--severity=warning", "-"], { input: script, encoding: "utf8" });
        assert.notEqual(checked.error?.message.includes("ENOENT"), true, "shellcheck is not installed (scripts/test.sh installs it)");
        assert.equal(checked.status, 0, checked.stdout);
    });

    test(`the ${name} script stops at the first failing command (set -euo pipefail)`, () => {
        assert.match(script, /^set -euo pipefail$/m);
    });
}

test("hostile values in a spec stay quoted in the generated script", () => {
    const evil = "/var/x'$(touch /tmp/amarktai-pwned)'";
    const script = prepareScript({ serviceName: "s", allowExistingUser: false, user: "u", group: "g", directories: [{ key: "paths.app", path: evil, owner: "u", group: "g", mode: "0755" }] }, DEFAULT_HOST_WAITS);
    // Run only the variable assignments: the value must come back verbatim.
    const assignments = script.split("\n").filter((l) => l.startsWith("DIR_PATHS="));
    const out = execFileSync("bash", ["-c", `${assignments.join("\n")}\nprintf '%s' "\${DIR_PATHS[0]}"`], { encoding: "utf8" });
    assert.equal(out, evil);
});

test("file ids are derived from paths and unique per path", () => {
    assert.equal(fileIdForPath("/etc/systemd/system/amarktai-api.service"), "etc__systemd__system__amarktai-api.service");
    assert.equal(fileIdForPath("/var/amarktai/app/backend/my_module.py"), "var__amarktai__app__backend__my_umodule.py");
    const ids = new Set(files.map((f) => fileIdForPath(f.path)));
    assert.equal(ids.size, files.length);
});

test("file ids cannot collide: paths that differ only in / versus __ get different ids", () => {
    const paths = ["/a/b.py", "/a__b.py", "/a_/b.py", "/a/_b.py", "/a_ub.py", "/a_u/b.py", "/a/ub.py", "/a___b.py"];
    const ids = paths.map(fileIdForPath);
    assert.equal(new Set(ids).size, paths.length, ids.join(" "));
    const long = `/var/amarktai/app/backend/${"d/".repeat(120)}x.py`;
    assert.match(fileIdForPath(long), /^%[0-9a-f]{64}$/);
    assert.ok(fileIdForPath(long).length <= 255);
});

test("no generated script reads a secret from its command line: staging takes content on stdin", () => {
    const stage = stageFileScript("amarktai-api", files[0]!);
    assert.match(stage, /cat > "\$tmp"/);
    assert.match(stage, /^umask 077$/m);
});

test("state written by release 0.1.0 (one line per managed file) reads back as today's files", async () => {
    const { legacyManagedFile, activationFilesOf } = await import("../../components/pulumi/providers/legacy");
    for (const f of files) {
        assert.deepEqual(legacyManagedFile(`${f.path} ${f.mode} ${f.owner}:${f.group} ${f.effect}`), f);
    }
    assert.deepEqual(activationFilesOf(files.map((f) => `${f.path} ${f.mode} ${f.owner}:${f.group} ${f.effect}`)), files);
    assert.throws(() => legacyManagedFile("/x 644 root:root systemd"), /unreadable file entry/);
    assert.throws(() => legacyManagedFile("/x 0644 root:root reboot"), /unreadable file entry/);
    assert.throws(() => legacyManagedFile("relative 0644 root:root systemd"), /unreadable file entry/);
});

test("what a change triggers is data: the activation's flags follow EFFECT_TRIGGERS", async () => {
    const { EFFECT_TRIGGERS } = await import("../../components/model");
    assert.deepEqual(EFFECT_TRIGGERS.systemd, ["daemon-reload", "restart-service"]);
    assert.deepEqual(EFFECT_TRIGGERS.restart, ["restart-service"]);
    assert.deepEqual(EFFECT_TRIGGERS.journald, ["restart-journald"]);
    const script = activationScript({ serviceName: "s", unitName: "s.service", files, removed: [], marker: MANAGED_MARKER, links: [], account: { user: "u", group: "u" }, healthUrl: "http://127.0.0.1:1/", healthTimeoutSec: 1 });
    const array = (name: string) => new RegExp(`^${name}=\\((.*)\\)$`, "m").exec(script)![1]!.split(" ").map((w) => w.replace(/'/g, ""));
    assert.deepEqual(array("RELOADS"), files.map((f) => (f.effect === "systemd" ? "1" : "0")));
    assert.deepEqual(array("RESTARTS"), files.map((f) => (f.effect === "journald" ? "0" : "1")));
    assert.deepEqual(array("JOURNALDS"), files.map((f) => (f.effect === "journald" ? "1" : "0")));
    assert.doesNotMatch(script, /case "\$\{EFFECTS/);
});

test("readEnvValueScript reads back exactly what renderEnvLine wrote", async () => {
    assert.equal(process.getuid?.(), 0, "needs root: the safe helper trusts root-owned directories only");
    const fs = await import("fs");
    const os = await import("os");
    const path = await import("path");
    const { renderEnvFile } = await import("../../components/systemd");
    // Not under /tmp: the helper refuses to read through a directory everyone can write.
    const dir = fs.mkdtempSync(path.join(os.homedir(), ".envread-"));
    try {
        const values: Record<string, string> = { JWT_SECRET: `a"b'c$d\`e\\f # g  `, OTHER: "x" };
        fs.writeFileSync(path.join(dir, ".env"), renderEnvFile(values));
        const script = readEnvValueScript([path.join(dir, "absent"), path.join(dir, ".env")], "JWT_SECRET");
        const out = execFileSync("bash", ["-c", script], { encoding: "utf8" });
        assert.equal(out, values.JWT_SECRET);
        assert.equal(execFileSync("bash", ["-c", readEnvValueScript([path.join(dir, "missing")], "JWT_SECRET")], { encoding: "utf8" }), "");
        // A link planted at the notes' path is never followed: refused, not skipped (an empty answer would mean a new secret).
        fs.symlinkSync(path.join(dir, ".env"), path.join(dir, "planted"));
        const planted = spawnSync("bash", ["-c", readEnvValueScript([path.join(dir, "planted")], "JWT_SECRET")], { encoding: "utf8" });
        assert.equal(planted.status, 2);
        assert.equal(planted.stdout, "");
        assert.match(planted.stderr, /refused: .*planted is a symlink or not a regular file/);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});

test("a stale resource's delete leaves what the service's current owner staged; the owner's own delete removes it", () => {
    const fs = require("fs") as typeof import("fs");
    const os = require("os") as typeof import("os");
    const path = require("path") as typeof import("path");
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "owner-guard-"));
    const staged = path.join(root, "amarktai-api", "staged", fileIdForPath(files[0]!.path));
    fs.mkdirSync(path.dirname(staged), { recursive: true });
    fs.writeFileSync(path.join(root, "amarktai-api", "owner"), "amarktai-infra/prod/amarktai-api-new 3\n");
    // The same script with the state root moved into the temporary directory.
    const run = (owner: string, generation: number) => {
        fs.writeFileSync(staged, "unit\n");
        const script = unstageFileScript("amarktai-api", files[0]!, { owner, generation }).split("/var/lib/amarktai-infra").join(root);
        const r = spawnSync("bash", ["-c", script], { encoding: "utf8" });
        assert.equal(r.status, 0, r.stderr);
        return { kept: fs.existsSync(staged), log: r.stdout };
    };
    const stale = run("amarktai-infra/prod/amarktai-api-old", Number.MAX_SAFE_INTEGER);
    assert.equal(stale.kept, true, "another owner's delete removed nothing");
    assert.match(stale.log, /owned by amarktai-infra\/prod\/amarktai-api-new \(generation 3\)/);
    assert.equal(run("amarktai-infra/prod/amarktai-api-new", 2).kept, true, "an older generation of the same owner removes nothing");
    assert.equal(run("amarktai-infra/prod/amarktai-api-new", 3).kept, false, "the owner's delete removes its staged copy");
    fs.rmSync(path.join(root, "amarktai-api", "owner"));
    assert.equal(run("", Number.MAX_SAFE_INTEGER).kept, false, "no record (state from before owners): removed as before");
    fs.rmSync(root, { recursive: true, force: true });
});

test("readEnvValueScript trusts the service account it is given, so a hand-made install's JWT_SECRET is read through the service-owned app directory", async () => {
    const fs = await import("fs");
    const path = await import("path");
    const { NOBODY, rootScratch } = await import("../support/safe-fs-tree");
    const files = ["/etc/amarktai-infra/amarktai-api/env", "/var/amarktai/app/backend/.env"];
    assert.match(readEnvValueScript(files, "JWT_SECRET", { user: "amarktai", group: "amarktai" }), /^safe_fs --trust 'amarktai:amarktai' env-value 'JWT_SECRET' '\/etc\/amarktai-infra\/amarktai-api\/env' '\/var\/amarktai\/app\/backend\/\.env'$/m);
    assert.match(readEnvValueScript(files, "JWT_SECRET"), /^safe_fs env-value 'JWT_SECRET' /m);
    assert.match(envReadScript("/var/amarktai/app/backend/.env", { user: "amarktai", group: "amarktai" }), /^safe_fs --trust 'amarktai:amarktai' env-read '\/var\/amarktai\/app\/backend\/\.env'$/m);
    // Run for real, nobody:nogroup playing the service account.
    const root = rootScratch(".envtrust-");
    try {
        const app = path.join(root, "app");
        fs.mkdirSync(path.join(app, "backend"), { recursive: true, mode: 0o755 });
        fs.chownSync(app, NOBODY, NOBODY);
        fs.chownSync(path.join(app, "backend"), NOBODY, NOBODY);
        const env = path.join(app, "backend", ".env");
        fs.writeFileSync(env, "JWT_SECRET='kept value'\n", { mode: 0o600 });
        const account = { user: "nobody", group: "nogroup" };
        const read = spawnSync("bash", ["-c", readEnvValueScript([path.join(root, "store", "env"), env], "JWT_SECRET", account)], { encoding: "utf8" });
        assert.equal(read.status, 0, read.stderr);
        assert.equal(read.stdout, "kept value");
        const untrusted = spawnSync("bash", ["-c", readEnvValueScript([path.join(root, "store", "env"), env], "JWT_SECRET")], { encoding: "utf8" });
        assert.equal(untrusted.status, 2, "without the account the service-owned directory is refused, not skipped");
        const whole = spawnSync("bash", ["-c", envReadScript(env, account)], { encoding: "utf8" });
        assert.equal(whole.status, 0, whole.stderr);
        const parsed = parseEnvRead(whole.stdout);
        assert.deepEqual(parsed.state === "present" ? [parsed.owner, parsed.group, parsed.mode, parsed.values] : parsed, ["root", "root", "0600", { JWT_SECRET: "kept value" }]);
    } finally {
        fs.rmSync(root, { recursive: true, force: true });
    }
});
