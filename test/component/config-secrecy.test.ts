/**
 * The program's secrecy rules, fed as a Pulumi run feeds them: the config
 * through the SDK's config store (`pulumi.runtime.setAllConfig`, as under
 * mocks) and the secret keys through PULUMI_CONFIG_SECRET_KEYS, the variable
 * a language host (and scripts/pulumi's in-process server) sets.
 */
import { test, afterEach } from "node:test";
import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { CONFIG_SECRET_KEYS_ENV, SECRECY_UNKNOWN_WARNING, configSecrecy, validatedConfig } from "../../components/pulumi/program";
import { NS, TEST_HOST, TEST_PRIVATE_KEY, rawConfig } from "../support/config";

/** Runs `validatedConfig` with `values` (keys without namespace) stored, the `secret` ones as secrets; `secret: undefined` leaves the variable unset. */
function validate(values: Record<string, unknown>, secret: readonly string[] | undefined) {
    pulumi.runtime.setAllConfig(Object.fromEntries(Object.entries(rawConfig(values)).map(([k, v]) => [`${NS}:${k}`, v])));
    if (secret === undefined) delete process.env[CONFIG_SECRET_KEYS_ENV];
    else process.env[CONFIG_SECRET_KEYS_ENV] = JSON.stringify(secret.map((k) => `${NS}:${k}`));
    return validatedConfig(NS);
}

/** The message of the RunError `validate` throws; fails when the config is accepted. */
function refusal(values: Record<string, unknown>, secret: readonly string[] | undefined): string {
    try {
        validate(values, secret);
    } catch (e) {
        assert.ok(e instanceof pulumi.RunError, `expected a RunError, got ${e}`);
        return e.message;
    }
    assert.fail("the config was accepted");
}

const BASE = { hosts: [TEST_HOST], sshPrivateKey: TEST_PRIVATE_KEY };

afterEach(() => {
    delete process.env[CONFIG_SECRET_KEYS_ENV];
});

test("secret keys stored as secrets and plain keys stored plain are accepted", () => {
    const { config, secrets } = validate({ ...BASE, env: { FLAG: "1" }, secretEnv: { API_KEY: "k" } }, ["sshPrivateKey", "secretEnv"]);
    assert.deepEqual(config.env, { FLAG: "1" });
    assert.deepEqual(secrets.secretEnv, { API_KEY: "k" });
});

test("a value set with --secret in env or overrides is refused, naming secretEnv, and never echoed", () => {
    const env = refusal({ ...BASE, env: { LEAKY: "hunter2-env" } }, ["sshPrivateKey", "env"]);
    assert.match(env, /amarktai-infra:env: holds a value set with --secret.*secretEnv/);
    assert.ok(!env.includes("hunter2-env"), env);
    const overrides = refusal({ ...BASE, overrides: { o: { environment: { LEAKY: "hunter2-ov" } } } }, ["sshPrivateKey", "overrides"]);
    assert.match(overrides, /amarktai-infra:overrides: holds a value set with --secret.*readable by every user/);
    assert.ok(!overrides.includes("hunter2-ov"), overrides);
});

test("sshPrivateKey or secretEnv stored in plain text is refused with the command that stores it as a secret", () => {
    assert.match(refusal(BASE, []), /amarktai-infra:sshPrivateKey: is stored in plain text.*pulumi config set --secret sshPrivateKey/);
    assert.match(refusal({ ...BASE, secretEnv: { API_KEY: "k" } }, ["sshPrivateKey"]), /amarktai-infra:secretEnv: is stored in plain text.*--path 'secretEnv\.API_KEY'/);
});

test("only the project's own namespace counts: another namespace's secret key does not make a key secret", () => {
    process.env[CONFIG_SECRET_KEYS_ENV] = JSON.stringify(["other:sshPrivateKey", `${NS}:secretEnv`]);
    const secrecy = configSecrecy(NS)!;
    assert.deepEqual(["sshPrivateKey", "secretEnv", "env"].map((k) => secrecy.isSecret(k)), [false, true, false]);
});

test("no secret keys is read as an empty list in each form a language host sends it (\"[]\", \"null\", \"\")", () => {
    for (const raw of ["[]", "null", ""]) {
        const secrecy = configSecrecy(NS, { [CONFIG_SECRET_KEYS_ENV]: raw });
        assert.equal(secrecy?.isSecret("sshPrivateKey"), false, JSON.stringify(raw));
    }
});

test("a malformed secret-key list stops the run instead of being read as no secrets", () => {
    for (const raw of ["{}", "[1]", "not json"]) {
        assert.throws(() => configSecrecy(NS, { [CONFIG_SECRET_KEYS_ENV]: raw }), /PULUMI_CONFIG_SECRET_KEYS is not a JSON array of config keys/, raw);
    }
});

test("without the secret-key list the config is validated without the secrecy rules, and a warning says so", (t) => {
    const warned: string[] = [];
    t.mock.method(console, "warn", (message: string) => void warned.push(message));
    // A --secret env value cannot be told from a plain one here: accepted, and the warning names what is not checked.
    const { config } = validate({ ...BASE, env: { FLAG: "1" } }, undefined);
    assert.deepEqual(config.env, { FLAG: "1" });
    assert.deepEqual(warned, [`warning: [runtime] ${SECRECY_UNKNOWN_WARNING}`]);
    assert.match(SECRECY_UNKNOWN_WARNING, /PULUMI_CONFIG_SECRET_KEYS is not set.*not refused.*sshPrivateKey and secretEnv are still kept secret in the state/);
});
