/**
 * The toolchain never downloads: with no network at all (a fresh network
 * namespace with only loopback), the pinned CLI previews a stack, and lists
 * exactly the plugins setup installed.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { REPO } from "../../tools/vm";

function offline(script: string, env: NodeJS.ProcessEnv): { code: number; out: string } {
    const r = spawnSync("unshare", ["--net", "--", "bash", "-c", `ip link set lo up 2>/dev/null || true; ${script}`], { cwd: REPO, env, encoding: "utf8" });
    return { code: r.status ?? 1, out: `${r.stdout}${r.stderr}` };
}

test("with the network unplugged, pulumi previews a new stack and attempts no download", { timeout: 5 * 60_000 }, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-offline-"));
    try {
        const env = { ...process.env, PULUMI_BACKEND_URL: `file://${dir}`, PULUMI_CONFIG_PASSPHRASE: "offline-test", PULUMI_CONFIG_PASSPHRASE_FILE: "" };
        const config = path.join(dir, "Pulumi.offline.yaml");
        const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJrLw0/yHgIQgd1mOq03l/DYoJq/TmjmAsaEpj7CY3VG";
        const hosts = JSON.stringify([{ address: "192.0.2.1", hostKey: key }]);
        const setHosts = JSON.stringify({ "amarktai-infra:hosts": { value: hosts, objectValue: JSON.parse(hosts), secret: false } });
        const script = [
            "set -e",
            "scripts/pulumi stack init offline --non-interactive >/dev/null",
            `mv Pulumi.offline.yaml ${JSON.stringify(config)} 2>/dev/null || true`,
            `scripts/pulumi config set-all --json '${setHosts}' --stack offline --config-file ${JSON.stringify(config)}`,
            `printf '%s\\n' '-----BEGIN OPENSSH PRIVATE KEY-----' 'AAAA' '-----END OPENSSH PRIVATE KEY-----' | scripts/pulumi config set --secret sshPrivateKey --stack offline --config-file ${JSON.stringify(config)}`,
            `scripts/pulumi preview --stack offline --config-file ${JSON.stringify(config)} --non-interactive`,
            "scripts/pulumi plugin ls",
            "scripts/pulumi version",
        ].join("\n");
        const r = offline(script, env);
        assert.equal(r.code, 0, r.out);
        assert.match(r.out, /\+ 11 to create/, "the stack, the component, two random secrets, prepare, unit, socket, .env, the resolved requirements, the release and activation");
        // Plugin downloads come from Pulumi's GitHub releases or get.pulumi.com (the unit's own Documentation= URL is on GitHub too).
        assert.doesNotMatch(r.out, /download|github\.com\/pulumi|get\.pulumi\.com/i);
        assert.match(r.out, /^v3\.274\.1$/m);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
        fs.rmSync(path.join(REPO, "Pulumi.offline.yaml"), { force: true });
    }
});
