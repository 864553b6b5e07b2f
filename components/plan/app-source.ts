/** Reads the app's source directory into plain data for the plan (the only file in the plan that touches the disk). */
import * as fs from "fs";
import * as path from "path";
import { ConfigError } from "../config";

/** One file of the app's source to copy into the working directory. */
export interface AppSourceFile {
    /** Path relative to the working directory, with `/` separators and no `..`. */
    readonly relativePath: string;
    readonly content: string;
}

/** Reads the app's source directory (relative to the current directory, the project's) into a list of files. */
export function readAppSource(dir: string): AppSourceFile[] {
    const root = path.resolve(dir);
    if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) {
        throw new ConfigError([`app.sourceDir: ${JSON.stringify(dir)} is not a directory (relative paths start at the project directory)`]);
    }
    const out: AppSourceFile[] = [];
    const walk = (rel: string) => {
        for (const entry of fs.readdirSync(path.join(root, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
            if (entry.name === "__pycache__" || entry.name.startsWith(".")) continue;
            const relPath = rel ? `${rel}/${entry.name}` : entry.name;
            if (entry.isDirectory()) walk(relPath);
            else if (entry.isFile()) out.push({ relativePath: relPath, content: fs.readFileSync(path.join(root, relPath), "utf8") });
        }
    };
    walk("");
    return out;
}
