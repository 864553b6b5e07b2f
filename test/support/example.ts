/**
 * The library as its users get it: `npm pack` this checkout, install the
 * tarball into a scratch copy of `examples/vm-and-service`, with the
 * program's other dependencies linked from this checkout's node_modules (same
 * versions as the lock file, no network, one `@pulumi/pulumi`).
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export const REPO = path.resolve(__dirname, "..", "..", "..");
export const EXAMPLE = path.join(REPO, "examples", "vm-and-service");

/** Runs a command, failing the test with its output when it exits non-zero; returns stdout. */
export function run(cmd: string, args: string[], cwd: string): string {
    const r = spawnSync(cmd, args, { cwd, encoding: "utf8" });
    assert.equal(r.status, 0, `${cmd} ${args.join(" ")}:\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
}

/** A scratch copy of the example with the packed library installed. */
export interface ExampleCopy {
    /** The scratch directory (holds the tarball and `app/`). */
    readonly dir: string;
    /** The example program's directory. */
    readonly app: string;
    /** Removes everything. */
    cleanup(): void;
}

/** Packs the library and installs it into a fresh copy of the example (already built by the test command). */
export function exampleCopy(): ExampleCopy {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-example-"));
    const app = path.join(dir, "app");
    fs.cpSync(EXAMPLE, app, { recursive: true, filter: (src) => !/[\\/](node_modules|bin)$/.test(src) });
    const tarball = run("npm", ["pack", "--ignore-scripts", "--silent", "--pack-destination", dir], REPO).trim().split("\n").pop()!;
    const modules = path.join(app, "node_modules");
    fs.mkdirSync(modules);
    run("tar", ["xzf", path.join(dir, tarball), "-C", modules], dir);
    fs.renameSync(path.join(modules, "package"), path.join(modules, "amarktai-infra"));
    for (const dep of ["@pulumi", "@types", "zod", "ssh2"]) fs.symlinkSync(path.join(REPO, "node_modules", dep), path.join(modules, dep));
    return { dir, app, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Compiles the example with its own tsconfig (against the packed library's types). */
export function compileExample(app: string): void {
    run(process.execPath, [path.join(REPO, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], app);
}
