import { test } from "node:test";
import * as assert from "node:assert/strict";
import { MANAGED_MARKER } from "../../components/model";
import { renderEnvFile, renderEnvLine } from "../../components/systemd";

test("plain values are written bare", () => {
    assert.equal(renderEnvLine("ENABLE_TRADING", "false"), "ENABLE_TRADING=false");
    assert.equal(renderEnvLine("MONGO_URL", "mongodb://127.0.0.1:27017/amarktai"), "MONGO_URL=mongodb://127.0.0.1:27017/amarktai");
});

test("values with quotes, spaces, $ and backticks are double-quoted with backslash escapes", () => {
    assert.equal(renderEnvLine("K", `a"b c$d\`e\\f'g`), `K="a\\"b c\\$d\\\`e\\\\f'g"`);
});

test("newlines are refused without echoing the value", () => {
    assert.throws(
        () => renderEnvLine("SECRET", "line1\nhunter2"),
        (e: Error) => /SECRET must not contain newlines/.test(e.message) && !e.message.includes("hunter2"),
    );
});

test("invalid names are refused", () => {
    assert.throws(() => renderEnvLine("BAD-NAME", "x"), /not a valid environment variable name/);
});

test("the file starts with the marker and lists entries sorted by name", () => {
    assert.equal(renderEnvFile({ B: "2", A: "1" }), `# ${MANAGED_MARKER}\nA=1\nB=2\n`);
});

test("the reviewer view shows plain values and a fingerprint that changes exactly when a secret changes", async () => {
    const { envFileView } = await import("../../components/plan");
    const a = envFileView({ FLAG: "on" }, { TOKEN: "s3cret" }, "key-1");
    assert.match(a, /^FLAG=on\nTOKEN=\[secret [0-9a-f]{12}\]\n$/);
    assert.ok(!a.includes("s3cret"));
    assert.equal(envFileView({ FLAG: "on" }, { TOKEN: "s3cret" }, "key-1"), a, "stable for the same value");
    assert.notEqual(envFileView({ FLAG: "on" }, { TOKEN: "other" }, "key-1"), a, "changes with the value");
    assert.notEqual(envFileView({ FLAG: "on" }, { TOKEN: "s3cret" }, "key-2"), a, "keyed: another stack's fingerprint differs");
});

test("the reviewer view (the preview's) shows each plain entry's line as written to the host, quoting included", async () => {
    const { envFileView } = await import("../../components/plan");
    const plain = { GREETING: 'say "hi" now', MODE: "fast" };
    const written = renderEnvFile({ ...plain, TOKEN: "s3cret" }).split("\n");
    const view = envFileView(plain, { TOKEN: "s3cret" }, "key-1").split("\n");
    assert.deepEqual(view.filter((l) => !l.startsWith("TOKEN=")), written.slice(1).filter((l) => !l.startsWith("TOKEN=")), "plain lines byte for byte");
    assert.match(view.find((l) => l.startsWith("TOKEN="))!, /^TOKEN=\[secret [0-9a-f]{12}\]$/);
});
