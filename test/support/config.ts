/** Helpers to build validated configs in tests. */
import * as assert from "node:assert/strict";
import { ConfigError, StackConfig, loadConfig, stackConfigSchema } from "../../components/config";

/** A host entry that passes validation. */
export const TEST_HOST = { name: "vm", address: "127.0.0.1", port: 2222, hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJrLw0/yHgIQgd1mOq03l/DYoJq/TmjmAsaEpj7CY3VG" };

/** A validated config: defaults plus `overrides` (a partial raw config). */
export function testConfig(overrides: Record<string, unknown> = {}): StackConfig {
    return stackConfigSchema.parse({ hosts: [TEST_HOST], ...overrides });
}

/** The project's config namespace. */
export const NS = "amarktai-infra";
/** A private key that passes validation (never used to connect). */
export const TEST_PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

/** Raw config as Pulumi hands it to the program: structured values as JSON text. */
export function rawConfig(values: Record<string, unknown>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(values)) out[k] = typeof v === "string" ? v : JSON.stringify(v);
    return out;
}

/** Loads raw stack config with one valid host and key, plus `values`. */
export function loadTestConfig(values: Record<string, unknown>) {
    return loadConfig(rawConfig({ hosts: [TEST_HOST], sshPrivateKey: TEST_PRIVATE_KEY, ...values }), NS);
}

/** The problems `loadTestConfig(values)` is refused with; fails the test when the config is accepted. */
export function configProblems(values: Record<string, unknown>): string[] {
    try {
        loadTestConfig(values);
    } catch (e) {
        assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
        return [...e.problems];
    }
    assert.fail(`the config was accepted: ${JSON.stringify(values).slice(0, 300)}`);
}
