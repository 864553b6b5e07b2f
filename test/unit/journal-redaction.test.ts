import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { activationScript, installerLines } from "../../components/host";
import { REDACTED_LINE_MAX, redactFunction } from "../../components/host/redact";
import { MANAGED_MARKER, backupDir, envStorePath, fileIdForPath, serviceStateDir } from "../../components/model";
import { renderEnvFile } from "../../components/systemd";

const TOKEN = "abc123secret";
const QUOTED = `p@ss "w$rd\` x\\y 'q'`;
const OLD_TOKEN = "previous-token-value";

/** A directory with an executable `name` printing `output`, to put first on PATH. */
function fakeCommand(name: string, output: string): string {
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "fakebin-"));
    fs.writeFileSync(path.join(bin, "output"), output);
    fs.writeFileSync(path.join(bin, name), `#!/bin/sh\ncat '${path.join(bin, "output")}'\n`, { mode: 0o755 });
    return bin;
}

/** The activation script up to (and including) its definition of `journal_excerpt`: definitions only, nothing run. */
function activationDefinitions(service: string, secretEnvKeys?: string[]): string {
    const script = activationScript({ serviceName: service, unitName: `${service}.service`, files: [], removed: [], marker: MANAGED_MARKER, links: [], account: { user: "root", group: "root" }, healthUrl: "http://127.0.0.1:1/", healthTimeoutSec: 1, ...(secretEnvKeys ? { secretEnvKeys } : {}) });
    const start = script.indexOf("\njournal_excerpt() {");
    assert.ok(start > 0, "the activation defines journal_excerpt");
    return script.slice(0, script.indexOf("\n", start + 1));
}

test("the journal excerpt of a failed start shows each secret .env value (live and previous) as [secret KEY], hides URL credentials and cuts long lines", () => {
    assert.equal(process.getuid?.(), 0, "this test writes the service's .env under /etc/amarktai-infra and must run as root");
    const service = `redact-${process.pid}-${Date.now()}`;
    const env = envStorePath(service);
    fs.mkdirSync(path.dirname(env), { recursive: true });
    fs.writeFileSync(env, renderEnvFile({ API_TOKEN: TOKEN, QUOTED_SECRET: QUOTED, SHORT: "abc", LOG_LEVEL: "info" }), { mode: 0o640 });
    const backup = `${backupDir(service)}/${fileIdForPath(env)}`;
    fs.mkdirSync(path.dirname(backup), { recursive: true });
    fs.writeFileSync(backup, renderEnvFile({ API_TOKEN: OLD_TOKEN }));
    const journal = [
        `2026-12-06T14:00:00+0000 host python[1]: settings: api_token='${TOKEN}' quoted=${QUOTED} level=info short=abc`,
        `2026-12-06T14:00:01+0000 host python[1]: shutting down with ${OLD_TOKEN}`,
        "2026-12-06T14:00:02+0000 host python[1]: connecting to https://deploy:ghp_zzzzzzzz@pypi.example.com/simple",
        `2026-12-06T14:00:03+0000 host python[1]: ${"x".repeat(1000)}`,
    ].join("\n");
    const bin = fakeCommand("journalctl", `${journal}\n`);
    try {
        const script = `${activationDefinitions(service, ["API_TOKEN", "QUOTED_SECRET", "SHORT", "JWT_SECRET"])}\nSTART=0\njournal_excerpt\n`;
        const r = spawnSync("bash", ["-c", script], { encoding: "utf8", env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
        assert.equal(r.status, 0, r.stderr);
        const lines = r.stdout.trimEnd().split("\n");
        assert.equal(lines.length, 4, r.stdout);
        assert.ok(!r.stdout.includes(TOKEN) && !r.stdout.includes(QUOTED) && !r.stdout.includes(OLD_TOKEN) && !r.stdout.includes("ghp_zzzzzzzz"), r.stdout);
        assert.equal(lines[0], "2026-12-06T14:00:00+0000 host python[1]: settings: api_token='[secret API_TOKEN]' quoted=[secret QUOTED_SECRET] level=info short=abc");
        assert.equal(lines[1], "2026-12-06T14:00:01+0000 host python[1]: shutting down with [secret API_TOKEN]");
        assert.equal(lines[2], "2026-12-06T14:00:02+0000 host python[1]: connecting to https://[redacted]@pypi.example.com/simple");
        assert.equal(lines[3], `${"2026-12-06T14:00:03+0000 host python[1]: ".concat("x".repeat(1000)).slice(0, REDACTED_LINE_MAX)} [line cut]`);
    } finally {
        fs.rmSync(bin, { recursive: true, force: true });
        fs.rmSync(path.dirname(env), { recursive: true, force: true });
        fs.rmSync(serviceStateDir(service), { recursive: true, force: true });
    }
});

test("the activation passes the secret keys' names to the journal filter, never their values", () => {
    const script = activationDefinitions("amarktai-api", ["API_TOKEN"]);
    assert.match(script, /^SECRET_ENV_KEYS=\('API_TOKEN'\)$/m);
    assert.match(script, /journalctl .*\| redact_output "\$\{REDACT_ENV_FILES\[@\]\}" -- "\$\{SECRET_ENV_KEYS\[@\]\}"/);
    assert.match(activationDefinitions("amarktai-api"), /^SECRET_ENV_KEYS=\('\*'\)$/m, "without key names, every .env value is redacted");
});

test("redact_output parses the .env as systemd's EnvironmentFile= does: quotes, escapes, comments and continuation lines", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "redact-"));
    const env = path.join(dir, "env");
    fs.writeFileSync(env, ["# comment A=notavalue", "  SPACED  =  padded-value  ", "SINGLE='single quoted $x'", 'DOUBLE="dq \\"inner\\" \\\\ \\n end"', "CONT=first\\", "second", "; B=ignored", ""].join("\n"));
    const input = "padded-value|single quoted $x|dq \"inner\" \\ \\n end|firstsecond|notavalue|ignored\n";
    const r = spawnSync("bash", ["-c", `${redactFunction().join("\n")}\nredact_output "$1" -- '*'`, "bash", env], { input, encoding: "utf8" });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "[secret SPACED]|[secret SINGLE]|[secret DOUBLE]|[secret CONT]|notavalue|ignored\n");
});

test("a failed installer's log is printed with URL credentials hidden and lines cut", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "installer-"));
    const log = path.join(dir, "install.log");
    const script = [
        "set -euo pipefail",
        "fail() { printf 'error: %s\\n' \"$*\" >&2; exit 1; }",
        ...installerLines(),
        `INSTALL_LOG=${JSON.stringify(log)}`,
        `run_installer uv sh -c 'echo "Looking in indexes: https://user:s3cr3t-token@pypi.example.com/simple"; echo "${"y".repeat(400)}"; echo "error: https://ci:other-token@host/x not found"; exit 3'`,
    ].join("\n");
    const r = spawnSync("bash", ["-c", script], { encoding: "utf8" });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(r.status, 1, r.stderr);
    assert.ok(!r.stderr.includes("s3cr3t-token") && !r.stderr.includes("other-token"), r.stderr);
    assert.match(r.stderr, /Looking in indexes: https:\/\/\[redacted\]@pypi\.example\.com\/simple/);
    assert.match(r.stderr, /uv failed \(exit 3\)/);
    assert.ok(!r.stderr.includes("y".repeat(301)), "a long line is cut");
});
