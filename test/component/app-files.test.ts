/**
 * Which app files a SystemdService deploys: the ones given in code (`appFiles`), else those of
 * `app.sourceDir`; either way they are the release's files, byte for byte.
 */
import { test, before } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { TEST_HOST, testConfig } from "../support/config";

const registered: { type: string; name: string; inputs: Record<string, any> }[] = [];
const REPO = path.resolve(__dirname, "..", "..", "..");
const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

before(() => {
    pulumi.runtime.setMocks(
        {
            newResource(args: pulumi.runtime.MockResourceArgs) {
                registered.push({ type: args.type, name: args.name, inputs: args.inputs });
                return { id: `${args.name}-id`, state: args.type.endsWith(":RandomSecret") ? { ...args.inputs, value: "mock" } : args.inputs };
            },
            call: (args: pulumi.runtime.MockCallArgs) => args.inputs,
        },
        "amarktai-infra",
        "test",
        false,
    );
});

/** The AppRelease inputs of a service named `name`, once its resources are registered. */
async function releaseOf(name: string): Promise<Record<string, any>> {
    for (let i = 0; i < 200 && !registered.some((r) => r.type.endsWith(":AppRelease") && r.name.startsWith(`${name}-`)); i++) await new Promise((r) => setTimeout(r, 10));
    const release = registered.find((r) => r.type.endsWith(":AppRelease") && r.name.startsWith(`${name}-`));
    assert.ok(release, `an AppRelease of ${name}`);
    return release.inputs;
}

test("with app.sourceDir and no appFiles, the component deploys the directory's files", async () => {
    process.chdir(REPO);
    const { SystemdService } = await import("../../components/pulumi/service");
    new SystemdService("from-dir", { config: testConfig({ hosts: [TEST_HOST], app: { sourceDir: "demo-app" } }), sshPrivateKey: pulumi.secret(KEY), secretEnv: {} });
    const inputs = await releaseOf("from-dir");
    assert.equal(inputs.files["server.py"], fs.readFileSync(path.join(REPO, "demo-app", "server.py"), "utf8"));
    assert.equal(inputs.release.appLink, "/var/amarktai/app/backend");
});

test("appFiles given in code win over app.sourceDir and are deployed as given", async () => {
    const { SystemdService } = await import("../../components/pulumi/service");
    new SystemdService("from-code", {
        config: testConfig({ hosts: [TEST_HOST], app: { sourceDir: "demo-app" } }),
        sshPrivateKey: pulumi.secret(KEY),
        secretEnv: {},
        appFiles: [{ relativePath: "main.py", content: "app = 1\n" }],
    });
    const inputs = await releaseOf("from-code");
    assert.deepEqual(inputs.files, { "main.py": "app = 1\n" });
});
