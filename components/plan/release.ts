/**
 * The release of a config: the app's files and the requirements, their
 * content hash (the release id), the host layout they go into, and what a
 * preview shows of them (text files as text, binaries as a size/hash line).
 */
import { ServiceConfig } from "../config";
import { ConfigError } from "../config";
import { ReleaseSpec, sha256 } from "../model";
import { AppSourceFile } from "./app-source";

/** Bumped when the way a release is built changes, so hosts build afresh. */
const BUILD_FORMAT = 1;

/** What a preview shows of a release. */
export interface ReleasePreview {
    /** Each app file by relative path: its text, or `binary, N bytes, sha256 …` for a file that is not UTF-8 text. */
    readonly files: Record<string, string>;
    /** Relative paths of the app's executable files (mode 0755). */
    readonly executables: string[];
    /** The requirements the venv is built from, one per line. */
    readonly requirements: string;
}

/** One file of the release archive. */
export interface ReleaseArchiveEntry {
    readonly path: string;
    readonly content: Buffer;
    readonly mode: string;
}

/** A planned release. */
export interface PlannedRelease {
    readonly spec: ReleaseSpec;
    readonly preview: ReleasePreview;
    /** The archive's entries: `requirements.txt` and `app/<path>` for each app file. */
    readonly entries: readonly ReleaseArchiveEntry[];
}

/** The bytes of an app file. */
export function appFileBytes(f: AppSourceFile): Buffer {
    return typeof f.content === "string" ? Buffer.from(f.content, "utf8") : f.content;
}

/** A file's text when it is UTF-8 without NUL bytes, else undefined. */
export function textOf(bytes: Buffer): string | undefined {
    if (bytes.includes(0)) return undefined;
    const text = bytes.toString("utf8");
    return Buffer.from(text, "utf8").equals(bytes) ? text : undefined;
}

/** How a preview shows one file: its text, or a size/hash line. */
export function previewOf(bytes: Buffer): string {
    return textOf(bytes) ?? `binary, ${bytes.length} bytes, sha256 ${sha256(bytes).slice(0, 16)}`;
}

/** Whether requirements text pins hashes (then the installer requires them for every requirement). */
export function pinsHashes(requirements: string): boolean {
    return /(^|\s)--(hash=|require-hashes)/m.test(requirements);
}

/** The archive's entries, in order: `requirements.txt`, then `app/<path>` for each app file. */
export function releaseEntries(requirements: string, appFiles: readonly AppSourceFile[]): ReleaseArchiveEntry[] {
    return [
        { path: "requirements.txt", content: Buffer.from(requirements, "utf8"), mode: "0644" },
        ...appFiles.map((f) => ({ path: `app/${f.relativePath}`, content: appFileBytes(f), mode: f.mode ?? "0644" })),
    ];
}

/**
 * Plans the release for `config`: with `app.sourceDir`, the app's files (and
 * `app.requirementsFile` from among them) and a working directory that links
 * into the release; without it, only the venv.
 */
export function planRelease(config: ServiceConfig, appFiles: readonly AppSourceFile[], envStore: string | undefined): PlannedRelease {
    const withApp = config.app.sourceDir !== undefined;
    let requirements = config.app.requirements.join("\n") + "\n";
    if (config.app.requirementsFile !== undefined) {
        const file = appFiles.find((f) => f.relativePath === config.app.requirementsFile);
        if (!file) throw new ConfigError([`app.requirementsFile: ${config.app.requirementsFile} is not a file in app.sourceDir (${config.app.sourceDir})`]);
        const text = textOf(appFileBytes(file));
        if (text === undefined) throw new ConfigError([`app.requirementsFile: ${config.app.requirementsFile} is not UTF-8 text`]);
        requirements = text.endsWith("\n") ? text : `${text}\n`;
    }
    const envLinkName = withApp && config.paths.envFile.startsWith(`${config.paths.workingDirectory}/`) ? config.paths.envFile.slice(config.paths.workingDirectory.length + 1) : undefined;
    if (envLinkName !== undefined && appFiles.some((f) => f.relativePath === envLinkName || f.relativePath.startsWith(`${envLinkName}/`))) {
        throw new ConfigError([`app.sourceDir: ${envLinkName} is where the host's .env goes (paths.envFile); remove it from the app's directory`]);
    }
    const entries = releaseEntries(requirements, withApp ? appFiles : []);
    const files: Record<string, string> = {};
    const executables: string[] = [];
    for (const e of entries.slice(1)) {
        const rel = e.path.slice("app/".length);
        files[rel] = previewOf(e.content);
        if (e.mode === "0755") executables.push(rel);
    }
    const manifest = entries.map((e) => `${e.mode} ${sha256(e.content)} ${e.path}`).join("\n");
    const id = sha256(`amarktai-infra release ${BUILD_FORMAT}\n${config.releases.installer}\n${withApp ? "app" : "venv-only"}\n${envLinkName ?? ""}\n${manifest}\n`).slice(0, 16);
    const spec: ReleaseSpec = {
        id,
        releasesDir: config.paths.releases,
        venvLink: config.paths.venv,
        ...(withApp ? { appLink: config.paths.workingDirectory } : {}),
        keep: config.releases.keep,
        installer: config.releases.installer,
        requireHashes: pinsHashes(requirements),
        ...(envLinkName !== undefined && envStore !== undefined ? { envLinkName, envStore } : {}),
    };
    return { spec, preview: { files, executables, requirements }, entries };
}
