import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { PLAIN_KEYS, stackConfigSchema } from "../../components/config";
import { configKeyDocs } from "../../components/config/docs";
import { CONFIGURATION_DOC, START, expectedConfigurationDoc, expectedProjectFile } from "../../tools/gen-docs";
import { TEST_HOST } from "../support/config";

const ROOT = path.resolve(__dirname, "..", "..", "..");
const read = (f: string) => fs.readFileSync(path.join(ROOT, f), "utf8");
const NS = "amarktai-infra";

test("docs/configuration.md's configuration reference is generated from the schema (npm run gen)", () => {
    const doc = read(CONFIGURATION_DOC);
    assert.equal(doc, expectedConfigurationDoc(doc), `${CONFIGURATION_DOC} is out of date: run \`npm run gen\``);
});

test("the configuration reference is generated into docs/configuration.md only, not the README", () => {
    assert.equal(read("README.md").includes(START), false, "README.md still carries the generated reference's markers");
});

test("Pulumi.yaml's config block is generated from the schema (npm run gen)", () => {
    const project = read("Pulumi.yaml");
    assert.equal(project, expectedProjectFile(project), "Pulumi.yaml is out of date: run `npm run gen`");
});

test("Pulumi.yaml declares every required key and every key with a default, with the schema's defaults", () => {
    const project = parse(read("Pulumi.yaml")) as { config: Record<string, { default?: unknown; value?: unknown }> };
    const declared = Object.keys(project.config).map((k) => k.replace(`${NS}:`, ""));
    const expected = configKeyDocs()
        .filter((d) => !d.key.includes(".") && !d.key.includes("[") && (d.required || d.defaultValue !== "—"))
        .map((d) => d.key);
    assert.deepEqual(declared.sort(), expected.sort());
    // Declared without a default, Pulumi requires a key: only truly required keys may be declared so.
    const withoutDefault = Object.entries(project.config).filter(([, decl]) => decl.default === undefined && decl.value === undefined).map(([key]) => key.replace(`${NS}:`, ""));
    assert.deepEqual(withoutDefault.sort(), ["hosts", "sshPrivateKey"], "declared without a default, Pulumi requires a key");
    const defaults = stackConfigSchema.parse({ hosts: [{ address: "h", hostKey: TEST_HOST.hostKey }] }) as Record<string, unknown>;
    const shared = Object.entries(project.config)
        .map(([key, decl]): [string, unknown] => [key.replace(`${NS}:`, ""), decl.default ?? decl.value])
        .filter(([name, value]) => value !== undefined && name in defaults);
    assert.ok(shared.length >= 5, `defaults compared: ${shared.map(([n]) => n).join(", ")}`);
    for (const [name, value] of shared) assert.deepEqual(value, defaults[name], `Pulumi.yaml's default for ${name} differs from the schema`);
});

test("every config key has a description", () => {
    for (const d of configKeyDocs()) {
        assert.ok(d.description.length > 0, `${d.key} has no description`);
    }
});

for (const stack of ["local", "staging", "prod"]) {
    test(`the shipped Pulumi.${stack}.yaml is valid config (secrets aside)`, () => {
        const file = parse(read(`Pulumi.${stack}.yaml`)) as { config?: Record<string, unknown> };
        const raw: Record<string, unknown> = {};
        for (const [key, value] of Object.entries(file.config ?? {})) {
            assert.ok(key.startsWith(`${NS}:`), `${key} is not in the project namespace`);
            raw[key.slice(NS.length + 1)] = value;
        }
        for (const key of Object.keys(raw)) {
            assert.ok((PLAIN_KEYS as string[]).includes(key), `Pulumi.${stack}.yaml sets ${key}, which is not a plain config key (secrets go in with --secret)`);
        }
        // The local stack gets its hosts from the VM at run time.
        const withHosts = raw.hosts ? raw : { ...raw, hosts: [{ address: "127.0.0.1", hostKey: TEST_HOST.hostKey }] };
        const result = stackConfigSchema.safeParse(withHosts);
        assert.ok(result.success, result.success ? "" : JSON.stringify(result.error.issues));
    });
}
