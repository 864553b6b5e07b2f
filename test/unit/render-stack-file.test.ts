import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { SECRET_PLACEHOLDER, StackFileError, stackFileConfig } from "../../scripts/lib/stack-file";

const REPO = path.resolve(__dirname, "..", "..", "..");
const NS = "amarktai-infra";
const project = (config: string) => ({ file: "Pulumi.yaml", text: `name: ${NS}\nruntime: nodejs\nconfig:\n${config}` });

test("stack file config: project values and defaults, then the stack's values on top", () => {
    const { raw } = stackFileConfig(
        project(`  ${NS}:user:\n    type: string\n    default: amarktai\n  ${NS}:health:\n    value: {"path":"/health","timeoutSec":90}\n  other:thing: 1\n`),
        { file: "Pulumi.s.yaml", text: `config:\n  ${NS}:user: svc\n  ${NS}:purgeOnDestroy: true\n  aws:region: eu-west-1\n  ${NS}:overrides:\n    workers:\n      workers: 2\n` },
        NS,
    );
    assert.deepEqual(raw, { user: "svc", health: '{"path":"/health","timeoutSec":90}', purgeOnDestroy: "true", overrides: '{"workers":{"workers":2}}' });
});

test("stack file config: encrypted values are never decrypted, shown as a placeholder, and listed", () => {
    const { raw, secretPaths } = stackFileConfig(
        project(""),
        { file: "Pulumi.s.yaml", text: `encryptionsalt: v1:abc\nconfig:\n  ${NS}:sshPrivateKey:\n    secure: v1:AAAA\n  ${NS}:secretEnv:\n    OPENAI_API_KEY:\n      secure: v1:BBBB\n` },
        NS,
    );
    assert.equal(raw.sshPrivateKey, SECRET_PLACEHOLDER);
    assert.deepEqual(JSON.parse(raw.secretEnv!), { OPENAI_API_KEY: SECRET_PLACEHOLDER });
    assert.deepEqual(secretPaths, ["sshPrivateKey", "secretEnv.OPENAI_API_KEY"]);
    assert.ok(!JSON.stringify(raw).includes("v1:"), "ciphertext reached the config");
});

test("stack file config: broken YAML is refused naming the file", () => {
    assert.throws(() => stackFileConfig(project(""), { file: "Pulumi.bad.yaml", text: "config:\n  a: [\n" }, NS), (e: unknown) => e instanceof StackFileError && /^Pulumi\.bad\.yaml: not valid YAML/.test(e.message));
    assert.throws(() => stackFileConfig(project(""), { file: "Pulumi.bad.yaml", text: "config: 3\n" }, NS), /Pulumi\.bad\.yaml: `config` must be a mapping/);
});

/** A copy of the checkout's tracked files (a fresh clone), with the built code and dependencies linked in. */
function freshClone(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-clone-"));
    const tracked = spawnSync("git", ["ls-files", "-z"], { cwd: REPO, encoding: "utf8" }).stdout.split("\0").filter(Boolean);
    for (const f of tracked) {
        if (!fs.existsSync(path.join(REPO, f))) continue;
        fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
        fs.copyFileSync(path.join(REPO, f), path.join(dir, f));
        fs.chmodSync(path.join(dir, f), fs.statSync(path.join(REPO, f)).mode);
    }
    fs.symlinkSync(path.join(REPO, "node_modules"), path.join(dir, "node_modules"));
    fs.symlinkSync(path.join(REPO, "dist"), path.join(dir, "dist"));
    const git = (...args: string[]) => spawnSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.invalid", ...args], { cwd: dir, encoding: "utf8" });
    git("init", "-q");
    git("add", "-A");
    git("commit", "-q", "-m", "clone");
    return dir;
}

/** Runs scripts/render in `dir` with no backend, no passphrase, no Pulumi CLI and an empty HOME. */
function renderIn(dir: string, args: string[]) {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-home-"));
    const env: NodeJS.ProcessEnv = { PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin`, HOME: home, AMARKTAI_CACHE_DIR: path.join(home, "cache") };
    const r = spawnSync("bash", ["scripts/render", ...args], { cwd: dir, env, encoding: "utf8" });
    fs.rmSync(home, { recursive: true, force: true });
    return r;
}

test("on a fresh clone with no backend and no secrets, render --stack prod writes every file and prints the plan", () => {
    const dir = freshClone();
    try {
        const r = renderIn(dir, ["--stack", "prod"]);
        assert.equal(r.status, 0, r.stdout + r.stderr);
        const out = path.join(dir, "out", "render", "prod");
        const files = [
            "etc/systemd/system/amarktai-api.service",
            "etc/systemd/system/amarktai-api.service.d/10-workers.conf",
            "etc/systemd/system/amarktai-api.service.d/20-memory.conf",
            "etc/systemd/system/amarktai-api.service.d/30-cpu.conf",
            "etc/systemd/journald.conf.d/60-amarktai-infra.conf",
            "var/amarktai/app/backend/.env",
        ];
        for (const f of files) {
            assert.ok(fs.existsSync(path.join(out, "api-1", f)), `${f} not written`);
            assert.match(r.stdout, new RegExp(` /${f.replace(/[.]/g, "\\.")}\\n`), `${f} missing from the summary`);
        }
        assert.match(fs.readFileSync(path.join(out, "api-1", files[1]!), "utf8"), /--workers 4 /);
        assert.match(fs.readFileSync(path.join(out, "api-1", files[5]!), "utf8"), /^JWT_SECRET=\[secret, generated by the stack\]$/m);
        // The whole plan: host preparation included, and kept beside the files.
        assert.match(r.stdout, /^stack prod: 1 host\(s\), service amarktai-api\.service, 6 files per host$/m);
        assert.match(r.stdout, /^ {2}directory 0750 amarktai:amarktai +\/var\/amarktai\/logs$/m);
        assert.match(r.stdout, /^ {2}requirements: uvicorn==0\.38\.0$/m);
        assert.match(r.stdout, /^api-1 \(ubuntu@203\.0\.113\.10:22\)$/m);
        assert.equal(fs.readFileSync(path.join(out, "plan.txt"), "utf8"), r.stdout.slice(0, r.stdout.indexOf("\nwritten under")));
        // Nothing tracked was rewritten, no stack or backend was created.
        assert.equal(spawnSync("git", ["status", "--porcelain"], { cwd: dir, encoding: "utf8" }).stdout, "");
        assert.ok(!fs.existsSync(path.join(dir, ".pulumi-state")), "a backend directory was created");
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});

test("render shows encrypted values as placeholders and names what is missing instead of a stack trace", () => {
    const dir = freshClone();
    try {
        const stackFile = path.join(dir, "Pulumi.review.yaml");
        fs.writeFileSync(
            stackFile,
            fs.readFileSync(path.join(dir, "Pulumi.prod.yaml"), "utf8") +
                `  amarktai-infra:sshPrivateKey:\n    secure: v1:ZmFrZQ==\n  amarktai-infra:secretEnv:\n    OPENAI_API_KEY:\n      secure: v1:c2VjcmV0\n`,
        );
        const r = renderIn(dir, ["--stack", "review", "--out", path.join(dir, "o")]);
        assert.equal(r.status, 0, r.stdout + r.stderr);
        const env = fs.readFileSync(path.join(dir, "o", "api-1", "var/amarktai/app/backend/.env"), "utf8");
        assert.match(env, /^OPENAI_API_KEY=\[secret\]$/m);
        assert.ok(!r.stdout.includes("v1:"), "ciphertext in the output");

        const missing = renderIn(dir, ["--stack", "nosuch"]);
        assert.equal(missing.status, 1);
        assert.match(missing.stderr, /^render: no stack file Pulumi\.nosuch\.yaml for stack 'nosuch' \(stack files here: local, prod, review, staging\)/);
        fs.writeFileSync(stackFile, "config:\n  amarktai-infra:env:\n    A: b\n");
        const noHosts = renderIn(dir, ["--stack", "review"]);
        assert.equal(noHosts.status, 1);
        assert.match(noHosts.stderr, /amarktai-infra:hosts: /);
        for (const r of [missing, noHosts]) assert.doesNotMatch(r.stderr, /^\s+at /m, "a stack trace was printed");
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});
