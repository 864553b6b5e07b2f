/**
 * The golden previews compare CLI output from real runs; what varies from run to run
 * must normalise to one text, and nothing else may be lost on the way.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { normalizePreview, sortDeleteBlocks } from "../support/golden";
import { hostKeyFingerprint } from "../../components/model";

const step = (name: string, op: string) =>
    [
        `    - pulumi-nodejs:dynamic/amarktai:HostFile: (${op})`,
        `        [urn=urn:pulumi:s::p::amarktai:HostFile::svc-dropin-${name}]`,
        `        content   : "${name}"`,
    ].join("\n");

test("deletes the engine planned in another order normalise to the same preview", () => {
    const head = "Previewing update (s):\n    ~ pulumi-nodejs:dynamic/amarktai:ServiceActivation: (update)\n        service: \"x\"";
    const tail = "    --outputs:--\nResources:\n    - 3 to delete";
    const one = [head, step("memory", "delete"), step("logging", "delete"), step("cpu", "delete"), tail].join("\n");
    const other = [head, step("cpu", "delete"), step("memory", "delete"), step("logging", "delete"), tail].join("\n");
    assert.equal(sortDeleteBlocks(one), sortDeleteBlocks(other));
    const sorted = sortDeleteBlocks(one);
    assert.ok(sorted.indexOf("dropin-cpu") < sorted.indexOf("dropin-logging") && sorted.indexOf("dropin-logging") < sorted.indexOf("dropin-memory"));
    // Nothing is dropped or added: the same lines, only moved.
    assert.deepEqual(sorted.split("\n").sort(), one.split("\n").sort());
    assert.ok(sorted.startsWith(head) && sorted.endsWith(tail));
});

test("creates and updates keep the engine's order", () => {
    const text = [step("b", "create"), step("a", "create")].join("\n");
    assert.equal(sortDeleteBlocks(text), text);
});

test("a release id in a path normalises like a quoted hash", () => {
    const text = '        /var/amarktai/releases/691c4480e02415d3/app/.env: "/etc/x"\n        id: "0123456789abcdef"';
    assert.equal(normalizePreview(text, "stk", 2222), '        /var/amarktai/releases/<release>/app/.env: "/etc/x"\n        id: "<hash>"\n');
});

test("a host's fingerprint becomes <host> when the caller names its key, though the preview shows the connection only as a secret", () => {
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJrLw0/yHgIQgd1mOq03l/DYoJq/TmjmAsaEpj7CY3VG";
    const text = `    ~ HostFile: (update)\n        [id=${hostKeyFingerprint(key)}/amarktai-api.service]\n        connection: [secret]\n`;
    assert.equal(normalizePreview(text, "stk", 2222, [key]), "    ~ HostFile: (update)\n        [id=<host>/amarktai-api.service]\n        connection: [secret]\n");
    assert.match(normalizePreview(text, "stk", 2222), new RegExp(hostKeyFingerprint(key)), "without the key the fingerprint stays");
});
