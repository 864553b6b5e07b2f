/**
 * `scripts/pulumi`'s argument parsing and backend choice (scripts/lib/env.sh),
 * run in bash as the script runs them.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { REPO } from "../../tools/vm";

/** Runs `snippet` in bash after sourcing env.sh, with `env` replacing the backend-related variables. */
function bash(snippet: string, args: string[], env: NodeJS.ProcessEnv = {}): { stdout: string; stderr: string } {
    const base = { ...process.env };
    for (const k of ["PULUMI_BACKEND_URL", "PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_HOME"]) delete base[k];
    const r = spawnSync("bash", ["-c", `source scripts/lib/env.sh; ${snippet}`, "bash", ...args], { cwd: REPO, env: { ...base, ...env }, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return { stdout: r.stdout, stderr: r.stderr };
}

const parse = (...args: string[]) => bash('amarktai_parse_args "$@"; printf "%s|%s" "$AMARKTAI_ARG_STACK" "$AMARKTAI_ARG_COMMAND"', args).stdout;

const FORMS: [string[], string][] = [
    [["-s", "prod", "preview"], "prod|preview"],
    [["--stack=prod", "up"], "prod|up"],
    [["--stack", "prod", "up", "--yes"], "prod|up"],
    [["up", "--yes", "-s", "prod"], "prod|up"],
    [["-sprod", "destroy"], "prod|destroy"],
    [["-s=prod", "refresh"], "prod|refresh"],
    [["--cwd", "/tmp", "--config-file", "f.yaml", "preview", "--diff"], "|preview"],
    [["-v", "3", "--logtostderr", "--stack", "staging", "preview"], "staging|preview"],
    [["--color=never", "up"], "|up"],
    [["stack", "init", "prod"], "prod|stack"],
    [["stack", "select", "local"], "local|stack"],
    [["stack", "ls"], "|stack"],
    [["config", "set", "--secret", "sshPrivateKey", "--stack", "prod"], "prod|config"],
    [["version"], "|version"],
];
for (const [args, expected] of FORMS) {
    test(`scripts/pulumi ${args.join(" ")} → stack|command ${expected}`, () => {
        assert.equal(parse(...args), expected);
    });
}

const backendOf = (stack: string, env: NodeJS.ProcessEnv) =>
    bash('amarktai_use_backend "$1"; printf "%s|%s|%s" "${PULUMI_BACKEND_URL:-}" "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" "${PULUMI_HOME:-}"', [stack], env);

test("the local stack always uses the checkout's file backend and generated passphrase, never the shell's", () => {
    // The generated passphrase file is pointed at a scratch path, so the test does not depend on whether setup.sh has run here.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-passphrase-"));
    const passphrase = path.join(dir, "passphrase");
    const localBackend = () =>
        bash('AMARKTAI_LOCAL_PASSPHRASE_FILE="$2"; amarktai_use_backend "$1"; printf "%s|%s|%s" "${PULUMI_BACKEND_URL:-}" "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" "${PULUMI_CONFIG_PASSPHRASE:-}"', ["local", passphrase], {
            PULUMI_BACKEND_URL: "s3://mine",
            PULUMI_CONFIG_PASSPHRASE: "theirs",
        });
    const before = localBackend();
    assert.equal(before.stdout, `file://${REPO}/.pulumi-state||`, "no generated passphrase yet: none at all, not the shell's");
    assert.equal(before.stderr, "");
    fs.writeFileSync(passphrase, "generated\n");
    const after = localBackend();
    assert.equal(after.stdout, `file://${REPO}/.pulumi-state|${passphrase}|`);
    assert.equal(after.stderr, "");
    fs.rmSync(dir, { recursive: true, force: true });
});

test("another stack uses PULUMI_BACKEND_URL, the user's passphrase and PULUMI_HOME untouched", () => {
    const r = backendOf("prod", { PULUMI_BACKEND_URL: "s3://mine", PULUMI_CONFIG_PASSPHRASE: "theirs", PULUMI_HOME: "/home/me/.pulumi" });
    assert.equal(r.stdout, "s3://mine||/home/me/.pulumi");
    assert.equal(r.stderr, "");
});

test("another stack uses the user's `pulumi login` when PULUMI_BACKEND_URL is unset", () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-home-"));
    try {
        fs.writeFileSync(path.join(home, "credentials.json"), JSON.stringify({ current: "https://api.pulumi.com", accessTokens: {} }));
        const r = backendOf("prod", { PULUMI_HOME: home });
        assert.equal(r.stdout, `||${home}`, "Pulumi finds the login itself");
        assert.equal(r.stderr, "");
        assert.equal(backendOf("", { PULUMI_ACCESS_TOKEN: "pul-x", PULUMI_HOME: home }).stdout, `||${home}`);
    } finally {
        fs.rmSync(home, { recursive: true, force: true });
    }
});

test("with no backend at all, another stack falls back to the checkout's backend and says so", () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-home-"));
    try {
        const r = backendOf("prod", { PULUMI_HOME: home });
        assert.equal(r.stdout.split("|")[0], `file://${REPO}/.pulumi-state`);
        assert.match(r.stderr, /no Pulumi backend is configured .*stack 'prod' keeps its state in this checkout/);
        assert.match(r.stderr, /lost with the checkout/);
    } finally {
        fs.rmSync(home, { recursive: true, force: true });
    }
});
