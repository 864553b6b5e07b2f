/** Helpers to build validated configs in tests. */
import { StackConfig, stackConfigSchema } from "../../components/config";

/** A host entry that passes validation. */
export const TEST_HOST = { name: "vm", address: "127.0.0.1", port: 2222, hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJrLw0/yHgIQgd1mOq03l/DYoJq/TmjmAsaEpj7CY3VG" };

/** A validated config: defaults plus `overrides` (a partial raw config). */
export function testConfig(overrides: Record<string, unknown> = {}): StackConfig {
    return stackConfigSchema.parse({ hosts: [TEST_HOST], ...overrides });
}
