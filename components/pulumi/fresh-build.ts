/**
 * Never run stale code: in a checkout (TypeScript sources beside the compiled
 * `dist/`), the program refuses to run when a source file changed after the
 * last build, and names the fix. An installed package ships no sources, so
 * there is nothing to compare and the check passes.
 */
import * as fs from "fs";
import * as path from "path";

/** The source folders (and files) compiled into the program, relative to the package root. */
const PROGRAM_SOURCES = ["index.ts", "components"];

/** The package root of this build: the nearest folder above `fromDir` with our package.json. */
export function packageRoot(fromDir: string): string | undefined {
    for (let dir = fromDir; ; dir = path.dirname(dir)) {
        const manifest = path.join(dir, "package.json");
        if (fs.existsSync(manifest) && JSON.parse(fs.readFileSync(manifest, "utf8")).name === "amarktai-infra") return dir;
        if (path.dirname(dir) === dir) return undefined;
    }
}

function* typeScriptFiles(root: string, rel: string): Generator<string> {
    const full = path.join(root, rel);
    let stat: fs.Stats;
    try {
        stat = fs.statSync(full);
    } catch {
        return;
    }
    if (stat.isFile()) {
        if (rel.endsWith(".ts") && !rel.endsWith(".d.ts")) yield rel;
        return;
    }
    for (const entry of fs.readdirSync(full)) yield* typeScriptFiles(root, path.join(rel, entry));
}

/**
 * The program's source files (relative to `root`) that are newer than their
 * compiled `dist/…js`, or have none. Empty when `root` has no sources.
 */
export function staleSources(root: string): string[] {
    const stale: string[] = [];
    for (const source of PROGRAM_SOURCES) {
        for (const rel of typeScriptFiles(root, source)) {
            const compiled = path.join(root, "dist", rel.replace(/\.ts$/, ".js"));
            const sourceTime = fs.statSync(path.join(root, rel)).mtimeMs;
            let compiledTime: number;
            try {
                compiledTime = fs.statSync(compiled).mtimeMs;
            } catch {
                compiledTime = -Infinity;
            }
            if (compiledTime < sourceTime) stale.push(rel);
        }
    }
    return stale;
}

/** The refusal for a stale build, naming the changed files and the fix; undefined when the build is current. */
export function staleBuildMessage(root: string): string | undefined {
    const stale = staleSources(root);
    if (stale.length === 0) return undefined;
    const shown = stale.slice(0, 3).join(", ") + (stale.length > 3 ? ` and ${stale.length - 3} more` : "");
    return `amarktai-infra: the compiled program in dist/ is older than its sources (${shown} changed since the last build); run \`npm run build\` and try again`;
}
