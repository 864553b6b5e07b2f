/**
 * `scripts/preview`'s view of a preview: what changes and nothing else. The
 * fixture is a real `pulumi preview --json` of an `.env` flag change plus a
 * new memory override on a deployed stack (trimmed to the fields read).
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { PreviewJson, formatPreview, textLineDiff } from "../../components/operate/preview";

const FIXTURE = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "..", "test", "fixtures", "preview-json", "env-and-override.json"), "utf8")) as PreviewJson;

test("an updated activation shows only the inputs that differ, down to the values that differ, and names the rest", () => {
    const out = formatPreview(FIXTURE);
    const block = out.slice(out.indexOf("~ amarktai:ServiceActivation"), out.indexOf("\n\nResources:"));
    assert.match(block, /~ contentHashes:\n {8}\+ \/etc\/systemd\/system\/amarktai-api\.service\.d\/10-memory\.conf: "91c35545dada0ab1"\n/);
    assert.match(block, /~ files:\n {8}\+ \/etc\/systemd\/system\/amarktai-api\.service\.d\/10-memory\.conf:\n {12}\+ effect: "systemd"/);
    assert.doesNotMatch(block, /amarktai-api\.socket|timeoutSec|releasesDir/, "unchanged values are not printed");
    assert.match(block, /\(8 unchanged: account, foreignDropIns, health, links, owner, release, secretEnvKeys, service\)/);
    assert.ok(block.split("\n").length <= 12, `the activation takes ${block.split("\n").length} lines:\n${block}`);
});

test("a secret input is never called unchanged: both sides read [secret], so it is named apart", () => {
    const out = formatPreview(FIXTURE);
    const env = out.slice(out.indexOf("~ amarktai:HostFile amarktai-api-ecc1d1f8a354-env"), out.indexOf("~ amarktai:ServiceActivation"));
    assert.match(env, /\(secret, not compared: connection, content\)/);
    assert.match(env, /\(3 unchanged: file, owner, service\)/);
    assert.match(env, /~ view:\n {8}- ENABLE_TRADING=false\n {8}\+ ENABLE_TRADING=true\n {10}JWT_SECRET=\[secret [0-9a-f]{12}\]/);
});

test("a created resource shows all its inputs, text as lines; a preview with nothing to do says so", () => {
    const out = formatPreview(FIXTURE);
    assert.match(out, /^\+ amarktai:HostFile amarktai-api-ecc1d1f8a354-dropin-memory \(create\)\n/);
    assert.match(out, /content:\n {10}# Managed by amarktai-infra[^\n]*\n[\s\S]*MemoryMax=1G\n/);
    assert.match(out, /Resources: 1 to create, 2 to update, 9 unchanged\n$/);
    assert.equal(formatPreview({ steps: [{ op: "same", urn: "urn:pulumi:s::p::pulumi:pulumi:Stack::p-s" }], changeSummary: { same: 1 } }), "no changes\n\nResources: 1 unchanged\n");
});

test("an update whose visible inputs are all equal says a secret may have changed instead of printing nothing", () => {
    const step = { op: "update", urn: "urn:pulumi:s::p::amarktai:index:SystemdService$pulumi-nodejs:dynamic/amarktai:HostFile::x-env", oldState: { inputs: { content: "[secret]", owner: "o" } }, newState: { inputs: { content: "[secret]", owner: "o" } } };
    assert.match(formatPreview({ steps: [step] }), /no visible input differs: a secret may have changed \(content\), or the host drifted/);
});

test("a created adoption's report reads as its lines, not as quoted list items", () => {
    const step = { op: "create", urn: "urn:pulumi:s::p::amarktai:index:SystemdService$pulumi-nodejs:dynamic/amarktai:HostAdoption::x-adoption", newState: { inputs: { report: ["- ExecStart=a --port 8000", "+ ExecStart=a --fd 3"], connection: "[secret]" } } };
    assert.match(formatPreview({ steps: [step] }), /report:\n {10}- ExecStart=a --port 8000\n {10}\+ ExecStart=a --fd 3\n/);
});

test("a line diff keeps two lines of context and marks what it skipped", () => {
    const before = ["a", "b", "c", "d", "e", "f", "g", "h"].join("\n");
    const after = ["a", "b", "c", "d", "E", "f", "g", "h"].join("\n");
    assert.deepEqual(textLineDiff(before, after), ["  …", "  c", "  d", "- e", "+ E", "  f", "  g", "  …"]);
    assert.deepEqual(textLineDiff("x\n", "x\ny\n"), ["  x", "+ y"]);
});
