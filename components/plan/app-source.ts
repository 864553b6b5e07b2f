/**
 * Reads the app's source directory into plain data for the plan (the only
 * file in the plan that touches the disk): every file's bytes and mode,
 * skipping {@link APP_IGNORED}, refusing links that leave the directory.
 */
import * as fs from "fs";
import * as path from "path";
import { ConfigError } from "../config";

/** One file of the app's source, as it goes into a release. */
export interface AppSourceFile {
    /** Path relative to the working directory, with `/` separators and no `..`. */
    readonly relativePath: string;
    /** The exact bytes (a string is taken as UTF-8). */
    readonly content: Buffer | string;
    /** Octal mode, `0755` for an executable file, `0644` otherwise. */
    readonly mode?: string;
}

/**
 * Names never copied from `app.sourceDir`, at any depth: version-control
 * folders, Python caches and local virtualenvs, and local env files (the
 * host's `.env` is rendered from the stack config; a developer's own `.env`
 * may hold secrets and never leaves their machine).
 */
export const APP_IGNORED: readonly string[] = [".git", ".hg", ".svn", "__pycache__", "*.pyc", "*.pyo", ".venv", ".env", ".env.*", ".pytest_cache", ".mypy_cache", ".DS_Store"];

/** Whether a file or folder name matches {@link APP_IGNORED}. */
export function isIgnoredAppName(name: string): boolean {
    return APP_IGNORED.some((pattern) => (pattern.startsWith("*") ? name.endsWith(pattern.slice(1)) : pattern.endsWith(".*") ? name.startsWith(pattern.slice(0, -1)) : name === pattern));
}

/** A relative path the host side accepts: safe characters, no empty or `..` segment. */
export const SAFE_RELATIVE_PATH = /^[A-Za-z0-9._@+-]+(?:\/[A-Za-z0-9._@+-]+)*$/;

function isInside(root: string, p: string): boolean {
    const rel = path.relative(root, p);
    return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

/**
 * Reads the app's source directory (relative to `base`, the project
 * directory) into a list of files, sorted by path. A link inside the
 * directory that resolves to a file inside it is copied as that file; a link
 * that leaves it, a link to a folder, a special file, an unsafe name or a
 * directory outside the project is a {@link ConfigError} naming
 * `app.sourceDir`, raised before anything reaches a host.
 */
export function readAppSource(dir: string, base: string = process.cwd()): AppSourceFile[] {
    const key = "app.sourceDir";
    const root = path.resolve(base, dir);
    if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) {
        throw new ConfigError([`${key}: ${JSON.stringify(dir)} is not a directory (relative paths start at the project directory)`]);
    }
    const realRoot = fs.realpathSync(root);
    const realBase = fs.realpathSync(base);
    if (!isInside(realBase, realRoot)) {
        throw new ConfigError([`${key}: ${JSON.stringify(dir)} resolves to ${realRoot}, outside the project directory ${realBase}; keep the app inside the project`]);
    }
    const out: AppSourceFile[] = [];
    const walk = (rel: string) => {
        const entries = fs.readdirSync(path.join(root, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        for (const entry of entries) {
            if (isIgnoredAppName(entry.name)) continue;
            const relPath = rel ? `${rel}/${entry.name}` : entry.name;
            const full = path.join(root, relPath);
            if (!SAFE_RELATIVE_PATH.test(relPath)) {
                throw new ConfigError([`${key}: ${JSON.stringify(relPath)} has a name outside letters, digits and . _ @ + - (rename it or move it out of ${dir})`]);
            }
            let stat = fs.lstatSync(full);
            if (stat.isSymbolicLink()) {
                let target: string;
                try {
                    target = fs.realpathSync(full);
                } catch {
                    throw new ConfigError([`${key}: ${relPath} is a broken symbolic link`]);
                }
                if (!isInside(realRoot, target)) {
                    throw new ConfigError([`${key}: ${relPath} is a symbolic link to ${target}, outside ${dir}; links must stay inside the app's directory`]);
                }
                stat = fs.statSync(full);
                if (stat.isDirectory()) {
                    throw new ConfigError([`${key}: ${relPath} is a symbolic link to a folder; copy the folder or link its files one by one`]);
                }
            }
            if (stat.isDirectory()) walk(relPath);
            else if (stat.isFile()) out.push({ relativePath: relPath, content: fs.readFileSync(full), mode: stat.mode & 0o111 ? "0755" : "0644" });
            else throw new ConfigError([`${key}: ${relPath} is not a regular file, folder or link`]);
        }
    };
    walk("");
    return out;
}
