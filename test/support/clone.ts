/** A fresh clone of this checkout for tests of the user-facing scripts, and a bare environment to run them in. */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

/** The repository root (this file is compiled to dist/test/support/). */
export const REPO = path.resolve(__dirname, "..", "..", "..");

/** Runs git in `dir` with a throwaway identity; fails the test on error. */
export function git(dir: string, ...args: string[]): string {
    const r = spawnSync("git", ["-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false", ...args], { cwd: dir, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`git ${args.join(" ")} failed: ${r.stderr}`);
    return r.stdout;
}

/**
 * A copy of the checkout's tracked files as one commit in a new repository
 * (a fresh clone, uncommitted edits included), with the built code and the
 * dependencies linked in (they are not tracked).
 */
export function freshClone(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-clone-"));
    const tracked = spawnSync("git", ["ls-files", "-z"], { cwd: REPO, encoding: "utf8" }).stdout.split("\0").filter(Boolean);
    for (const f of tracked) {
        const from = path.join(REPO, f);
        if (!fs.existsSync(from)) continue;
        fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
        fs.copyFileSync(from, path.join(dir, f));
        fs.chmodSync(path.join(dir, f), fs.statSync(from).mode);
    }
    fs.symlinkSync(path.join(REPO, "node_modules"), path.join(dir, "node_modules"));
    fs.symlinkSync(path.join(REPO, "dist"), path.join(dir, "dist"));
    git(dir, "init", "-q");
    git(dir, "add", "-A");
    git(dir, "commit", "-q", "-m", "clone");
    return dir;
}

/** An environment with no Pulumi backend, passphrase or CLI and an empty HOME; `cleanup` removes the HOME. */
export function scriptEnv(): { env: NodeJS.ProcessEnv; cleanup: () => void } {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-home-"));
    return {
        env: { PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin`, HOME: home, AMARKTAI_CACHE_DIR: path.join(home, "cache") },
        cleanup: () => fs.rmSync(home, { recursive: true, force: true }),
    };
}
