/**
 * The release of a config: the app's files and the requirements, their
 * content hash (the release id), the host layout they go into, and what a
 * preview shows of them (text files as text, binaries as a size/hash line).
 */
import { ServiceConfig } from "../config";
import { ConfigError, requirementsFileProblems } from "../config";
import { PYPI_INDEX_URL, ReleaseSpec, ResolutionSpec, lockedPackages, sha256 } from "../model";
import { AppSourceFile, SAFE_RELATIVE_PATH } from "./app-source";

/** Bumped when the way a release is built changes, so hosts build afresh. */
const BUILD_FORMAT = 1;

/** What a preview shows of a release. */
export interface ReleasePreview {
    /** Each app file by relative path: its text, or `binary, N bytes, sha256 …` for a file that is not UTF-8 text (`text, N bytes, sha256 …` for a text file over {@link PREVIEW_TEXT_LIMIT}). */
    readonly files: Record<string, string>;
    /** Relative paths of the app's executable files (mode 0755). */
    readonly executables: string[];
    /** The requirements the venv is built from, one per line. */
    readonly requirements: string;
    /**
     * The bytes (base64) of each app file whose preview is not its exact text (a binary, a large text): with
     * {@link files}, {@link executables} and {@link requirements} they are the whole release, so the
     * provider rebuilds the archive from what it was given, never from the disk.
     */
    readonly blobs: Record<string, string>;
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
    /**
     * The resolution the release is built from (`releases.reproducible`, and
     * requirements that pin no hashes): until its lock is given to
     * {@link planRelease}, the release's requirements are the ones written.
     */
    readonly resolution?: ResolutionSpec;
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

/** The largest text file a preview shows whole, in bytes; a larger one is shown as a size/hash line. */
export const PREVIEW_TEXT_LIMIT = 256 * 1024;

/** How a preview shows one file: its text, or a size/hash line (a binary, or a text over {@link PREVIEW_TEXT_LIMIT}). */
export function previewOf(bytes: Buffer): string {
    const text = textOf(bytes);
    const line = (kind: string) => `${kind}, ${bytes.length} bytes, sha256 ${sha256(bytes).slice(0, 16)}`;
    if (text === undefined) return line("binary");
    return bytes.length > PREVIEW_TEXT_LIMIT ? line("text") : text;
}

/** Whether requirements text pins hashes (then the installer requires them for every requirement). */
export function pinsHashes(requirements: string): boolean {
    return /(^|\s)--(hash=|require-hashes)/m.test(requirements);
}

/**
 * The release's archive entries rebuilt from its preview (what a provider is
 * given): each file's text, or its bytes from `blobs`; mode 0755 for the
 * executables. The same entries, in the same order, as the plan made.
 */
export function entriesOfPreview(preview: Pick<ReleasePreview, "files" | "executables" | "requirements"> & { readonly blobs?: Record<string, string> }): ReleaseArchiveEntry[] {
    const executables = new Set(preview.executables);
    const files: AppSourceFile[] = Object.keys(preview.files)
        .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
        .map((rel) => {
            const blob = preview.blobs?.[rel];
            return { relativePath: rel, content: blob !== undefined ? Buffer.from(blob, "base64") : Buffer.from(preview.files[rel]!, "utf8"), mode: executables.has(rel) ? "0755" : "0644" };
        });
    return releaseEntries(preview.requirements, files);
}

/** The archive's entries, in order: `requirements.txt`, then `app/<path>` for each app file. */
export function releaseEntries(requirements: string, appFiles: readonly AppSourceFile[]): ReleaseArchiveEntry[] {
    return [
        { path: "requirements.txt", content: Buffer.from(requirements, "utf8"), mode: "0644" },
        ...appFiles.map((f) => ({ path: `app/${f.relativePath}`, content: appFileBytes(f), mode: f.mode ?? "0644" })),
    ];
}

/** The modes an app file may have in a release. */
const APP_FILE_MODES = ["0644", "0755"] as const;

/** The app's files in path order, each checked: a safe relative path, used once, mode 0644 or 0755. */
export function checkedAppFiles(appFiles: readonly AppSourceFile[]): AppSourceFile[] {
    const problems: string[] = [];
    const seen = new Set<string>();
    appFiles.forEach((f, i) => {
        if (!SAFE_RELATIVE_PATH.test(f.relativePath)) problems.push(`appFiles[${i}].relativePath: ${JSON.stringify(f.relativePath)} must be a relative path of letters, digits and . _ @ + - separated by /, without '..'`);
        else if (f.relativePath.split("/").includes("..")) problems.push(`appFiles[${i}].relativePath: ${JSON.stringify(f.relativePath)} must not contain '..'`);
        if (seen.has(f.relativePath)) problems.push(`appFiles[${i}].relativePath: ${f.relativePath} is listed twice`);
        seen.add(f.relativePath);
        if (f.mode !== undefined && !(APP_FILE_MODES as readonly string[]).includes(f.mode)) problems.push(`appFiles[${i}].mode: ${JSON.stringify(f.mode)} must be "0644" or "0755" (executable)`);
    });
    if (problems.length > 0) throw new ConfigError(problems);
    return [...appFiles].sort((a, b) => (a.relativePath < b.relativePath ? -1 : a.relativePath > b.relativePath ? 1 : 0));
}

/** The index settings of a release, only those that are set (so a stack that sets none plans the same spec as before they existed). */
type PackageIndexSettings = Pick<ReleaseSpec, "indexUrl" | "extraIndexUrls" | "trustedHosts">;

/** The release's package index settings from `config.releases`. */
function packageIndexOf(config: ServiceConfig): PackageIndexSettings {
    const r = config.releases;
    return {
        ...(r.indexUrl !== undefined ? { indexUrl: r.indexUrl } : {}),
        ...(r.extraIndexUrls.length > 0 ? { extraIndexUrls: [...r.extraIndexUrls] } : {}),
        ...(r.trustedHosts.length > 0 ? { trustedHosts: [...r.trustedHosts] } : {}),
    };
}

/**
 * What the index settings add to a release's identity: nothing when none is
 * set (ids planned before these settings existed stay the same); the index
 * URLs, in order, when one is set, since another index may resolve other
 * packages for the same requirements. Trusted hosts and where uv comes from
 * change how packages are fetched, not which ones, so they are not part of it.
 */
function indexIdentity(index: PackageIndexSettings): string {
    if (index.indexUrl === undefined && index.extraIndexUrls === undefined) return "";
    return `index ${index.indexUrl ?? PYPI_INDEX_URL}\n${(index.extraIndexUrls ?? []).map((u) => `extra-index ${u}\n`).join("")}`;
}

/**
 * `lock` when it is one: it pins hashes, pins at least one package, and every
 * line passes the same checks as a requirements file. A lock comes from a
 * host and an index, so it is checked before it is kept or installed.
 */
export function checkedLock(lock: string): string {
    if (!pinsHashes(lock)) throw new Error("the resolved requirements pin no hashes");
    const problems = requirementsFileProblems(lock);
    if (problems.length > 0) throw new Error(`the resolved requirements are refused: ${problems.map((p) => `line ${p.line}: ${p.problem}`).join("; ")}`);
    if (lockedPackages(lock).length === 0) throw new Error("the resolved requirements pin no package");
    return lock;
}

/** Bumped when the way requirements are resolved changes, so the next up resolves them again. */
const RESOLVE_FORMAT = 1;

/** Whether requirements text has a requirement line (not only blanks, comments and options). */
function hasRequirement(requirements: string): boolean {
    return requirements.split("\n").some((l) => /^\s*[A-Za-z0-9]/.test(l));
}

/**
 * The resolution a release's requirements need: none when `releases.reproducible`
 * is off, when they pin hashes already (they are a lock) or when there is
 * nothing to resolve.
 */
function resolutionOf(config: ServiceConfig, requirements: string, index: PackageIndexSettings): ResolutionSpec | undefined {
    if (!config.releases.reproducible || pinsHashes(requirements) || !hasRequirement(requirements)) return undefined;
    const id = sha256(`amarktai-infra resolution ${RESOLVE_FORMAT}\n${config.releases.installer}\n${indexIdentity(index)}\n${requirements}`).slice(0, 16);
    return {
        id,
        requirements,
        releasesDir: config.paths.releases,
        installer: config.releases.installer,
        ...index,
        ...(config.releases.uvSource === "deployer" ? { uvSource: "deployer" as const } : {}),
        ...(config.releases.uvMirror !== undefined ? { uvMirror: config.releases.uvMirror } : {}),
    };
}

/**
 * Plans the release for `config`: with app files (from `app.sourceDir`, or
 * given in code as `appFiles`), the app's files (and `app.requirementsFile`
 * from among them) and a working directory that links into the release;
 * without any, only the venv. Given `lock` (what its resolution returned),
 * the venv is built from the lock instead of the requirements as written,
 * with hashes required, and the release id covers the lock.
 */
export function planRelease(config: ServiceConfig, givenAppFiles: readonly AppSourceFile[], envStore: string | undefined, lock?: string): PlannedRelease {
    const appFiles = checkedAppFiles(givenAppFiles);
    const withApp = config.app.sourceDir !== undefined || appFiles.length > 0;
    let requirements = config.app.requirements.join("\n") + "\n";
    if (config.app.requirementsFile !== undefined) {
        const file = appFiles.find((f) => f.relativePath === config.app.requirementsFile);
        if (!file) throw new ConfigError([`app.requirementsFile: ${config.app.requirementsFile} is not one of the app's files (${config.app.sourceDir ?? "appFiles"})`]);
        const text = textOf(appFileBytes(file));
        if (text === undefined) throw new ConfigError([`app.requirementsFile: ${config.app.requirementsFile} is not UTF-8 text`]);
        const problems = requirementsFileProblems(text);
        if (problems.length > 0) throw new ConfigError(problems.map((p) => `app.requirementsFile: ${config.app.requirementsFile} line ${p.line}: ${p.problem}`));
        requirements = text.endsWith("\n") ? text : `${text}\n`;
    }
    const envLinkName = withApp && config.paths.envFile.startsWith(`${config.paths.workingDirectory}/`) ? config.paths.envFile.slice(config.paths.workingDirectory.length + 1) : undefined;
    if (envLinkName !== undefined && appFiles.some((f) => f.relativePath === envLinkName || f.relativePath.startsWith(`${envLinkName}/`))) {
        throw new ConfigError([`app.sourceDir: ${envLinkName} is where the host's .env goes (paths.envFile); remove it from the app's directory`]);
    }
    const index = packageIndexOf(config);
    const resolution = resolutionOf(config, requirements, index);
    if (lock !== undefined) {
        if (resolution === undefined) throw new Error("a lock was given for requirements that need no resolution");
        const checked = checkedLock(lock);
        requirements = checked.endsWith("\n") ? checked : `${checked}\n`;
    }
    const entries = releaseEntries(requirements, withApp ? appFiles : []);
    const files: Record<string, string> = {};
    const executables: string[] = [];
    const blobs: Record<string, string> = {};
    for (const e of entries.slice(1)) {
        const rel = e.path.slice("app/".length);
        files[rel] = previewOf(e.content);
        if (files[rel] !== textOf(e.content)) blobs[rel] = e.content.toString("base64");
        if (e.mode === "0755") executables.push(rel);
    }
    const manifest = entries.map((e) => `${e.mode} ${sha256(e.content)} ${e.path}`).join("\n");
    const id = sha256(`amarktai-infra release ${BUILD_FORMAT}\n${config.releases.installer}\n${withApp ? "app" : "venv-only"}\n${envLinkName ?? ""}\n${manifest}\n${indexIdentity(index)}`).slice(0, 16);
    const spec: ReleaseSpec = {
        id,
        releasesDir: config.paths.releases,
        venvLink: config.paths.venv,
        ...(withApp ? { appLink: config.paths.workingDirectory } : {}),
        keep: config.releases.keep,
        installer: config.releases.installer,
        requireHashes: pinsHashes(requirements),
        ...(envLinkName !== undefined && envStore !== undefined ? { envLinkName, envStore } : {}),
        ...index,
        ...(config.releases.uvSource === "deployer" ? { uvSource: "deployer" as const } : {}),
        ...(config.releases.uvMirror !== undefined ? { uvMirror: config.releases.uvMirror } : {}),
    };
    return { spec, ...(resolution ? { resolution } : {}), preview: { files, executables, requirements, blobs }, entries };
}
