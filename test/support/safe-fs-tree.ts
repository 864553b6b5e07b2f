/** Scratch trees for the safe file helper's tests: root-owned, with a directory the service account owns. */
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

/** The account that plays the service's (`nobody:nogroup`). */
export const NOBODY = 65534;

/** A root-owned 0755 scratch directory (never under /tmp: the helper refuses directories everyone can write). Needs root. */
export function rootScratch(prefix: string): string {
    assert.equal(process.getuid?.(), 0, "needs root: it changes owners");
    const root = fs.mkdtempSync(path.join(os.homedir(), prefix));
    fs.chmodSync(root, 0o755);
    return root;
}

/** A service-owned directory `svc/` under `root`, and a root-only staging file `stage/content`. */
export function serviceTree(root: string): { svc: string; staged: string } {
    const svc = path.join(root, "svc");
    fs.mkdirSync(svc, { mode: 0o755 });
    fs.chownSync(svc, NOBODY, NOBODY);
    const stage = path.join(root, "stage");
    fs.mkdirSync(stage, { mode: 0o700 });
    const staged = path.join(stage, "content");
    fs.writeFileSync(staged, "NEW CONTENT\n", { mode: 0o600 });
    return { svc, staged };
}
