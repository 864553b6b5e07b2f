import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { staleBuildMessage, staleSources } from "../../components/pulumi/fresh-build";

/** A package with one source and its compiled file, the source `sourceAge` seconds older (negative: newer). */
function fixture(sourceAge: number): string {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-fresh-"));
    fs.mkdirSync(path.join(root, "components", "config"), { recursive: true });
    fs.mkdirSync(path.join(root, "dist", "components", "config"), { recursive: true });
    fs.writeFileSync(path.join(root, "components", "config", "schema.ts"), "export const a = 1;\n");
    fs.writeFileSync(path.join(root, "dist", "components", "config", "schema.js"), "exports.a = 1;\n");
    const now = Date.now() / 1000;
    fs.utimesSync(path.join(root, "dist", "components", "config", "schema.js"), now, now);
    fs.utimesSync(path.join(root, "components", "config", "schema.ts"), now - sourceAge, now - sourceAge);
    return root;
}

test("a build newer than its sources is current", () => {
    const root = fixture(60);
    assert.deepEqual(staleSources(root), []);
    assert.equal(staleBuildMessage(root), undefined);
    fs.rmSync(root, { recursive: true });
});

test("a source edited after the build is refused, naming the file and `npm run build`", () => {
    const root = fixture(-60);
    assert.deepEqual(staleSources(root), [path.join("components", "config", "schema.ts")]);
    assert.match(staleBuildMessage(root)!, /components\/config\/schema\.ts changed since the last build\); run `npm run build`/);
    fs.rmSync(root, { recursive: true });
});

test("a source with no compiled file is stale; a package without sources (installed) is not", () => {
    const root = fixture(60);
    fs.writeFileSync(path.join(root, "index.ts"), "export = 1;\n");
    assert.deepEqual(staleSources(root), ["index.ts"]);
    fs.rmSync(path.join(root, "components"), { recursive: true });
    fs.rmSync(path.join(root, "index.ts"));
    assert.deepEqual(staleSources(root), []);
    fs.rmSync(root, { recursive: true });
});
