/**
 * `releases.uvSource: deployer`: the pinned uv wheel is downloaded once on the
 * machine running Pulumi (cached, checked by its SHA-256 before use and after
 * download) and sent to a host over its SSH session, so the host never
 * contacts PyPI's file server.
 */
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { installUvScript, uvProbeScript } from "../../host";
import { PinnedWheel, UV_VERSION, UV_WHEELS, uvWheelUrl } from "../../model";
import { SshConnection, runAsRoot } from "../../transport";

/** Where and how the pinned wheel is fetched; the defaults are the pinned ones (tests inject their own). */
export interface UvWheelOptions {
    /** A base URL serving PyPI's files (`releases.uvMirror`). */
    readonly mirror?: string;
    /** The cache directory; default {@link uvCacheDir}. */
    readonly cacheDir?: string;
    /** The pinned wheels by architecture; default {@link UV_WHEELS}. */
    readonly wheels?: Readonly<Record<string, PinnedWheel>>;
    /** How long the download may take, in milliseconds; default 5 minutes. */
    readonly timeoutMs?: number;
}

/** The wheel cache on the machine running Pulumi: `$AMARKTAI_CACHE_DIR/uv`, or `~/.cache/amarktai-infra/uv`. */
export function uvCacheDir(env: NodeJS.ProcessEnv = process.env): string {
    return path.join(env.AMARKTAI_CACHE_DIR || path.join(os.homedir(), ".cache", "amarktai-infra"), "uv");
}

const sha256Of = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** Downloads in flight, by cache file: hosts built in parallel share one download. */
const inFlight = new Map<string, Promise<Buffer>>();

/**
 * The pinned uv wheel for `arch`: from the cache when its SHA-256 matches the
 * pin, else downloaded (from PyPI's file server, or the same path below
 * `mirror`), checked, and cached. A download whose checksum differs is
 * refused and nothing is cached.
 */
export async function pinnedUvWheel(arch: string, options: UvWheelOptions = {}): Promise<Buffer> {
    const wheel = (options.wheels ?? UV_WHEELS)[arch];
    if (!wheel) throw new Error(`no uv is pinned for the architecture ${arch} (pinned: ${Object.keys(options.wheels ?? UV_WHEELS).join(", ")})`);
    const dir = options.cacheDir ?? uvCacheDir();
    // Keyed by version and architecture; the pin's hash keeps an older pin's file from ever being taken for a newer one.
    const file = path.join(dir, `uv-${UV_VERSION}-${arch}-${wheel.sha256.slice(0, 16)}.whl`);
    const cached = readCached(file, wheel.sha256);
    if (cached) return cached;
    let pending = inFlight.get(file);
    if (!pending) {
        pending = download(uvWheelUrl(wheel, options.mirror), wheel.sha256, arch, options.timeoutMs ?? 5 * 60_000).then((data) => {
            writeCache(dir, file, data);
            return data;
        });
        inFlight.set(file, pending);
        pending.then(
            () => inFlight.delete(file),
            () => inFlight.delete(file),
        );
    }
    return pending;
}

/** The cached file when its SHA-256 is the pinned one; a damaged file is removed. */
function readCached(file: string, sha256: string): Buffer | undefined {
    let data: Buffer;
    try {
        data = fs.readFileSync(file);
    } catch {
        return undefined;
    }
    if (sha256Of(data) === sha256) return data;
    fs.rmSync(file, { force: true });
    return undefined;
}

/** Writes the cache file atomically (a parallel reader sees the whole file or none). */
function writeCache(dir: string, file: string, data: Buffer): void {
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
    fs.writeFileSync(tmp, data, { mode: 0o644 });
    fs.renameSync(tmp, file);
}

async function download(url: string, sha256: string, arch: string, timeoutMs: number): Promise<Buffer> {
    const what = `uv ${UV_VERSION} for ${arch} from ${url} on the machine running Pulumi`;
    const hint = "releases.uvSource: deployer needs this machine to reach PyPI's files, or releases.uvMirror";
    let data: Buffer;
    try {
        const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
        if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`);
        data = Buffer.from(await response.arrayBuffer());
    } catch (e) {
        const cause = (e as { cause?: { message?: string } }).cause?.message;
        throw new Error(`cannot download ${what} (${cause ?? (e as Error).message}): ${hint}`);
    }
    const got = sha256Of(data);
    if (got !== sha256) throw new Error(`refusing ${what}: its SHA-256 is ${got}, not the pinned ${sha256}`);
    return data;
}

/**
 * Makes sure the host has the pinned uv before a build, without the host
 * downloading it: one small command reads its architecture and whether uv is
 * there; when it is not, the wheel (downloaded once here, cached) goes to the
 * host on stdin and a generated script installs it into the tools directory
 * the build uses. Hosts of an architecture without a pinned uv are left to
 * the build (which falls back to pip).
 */
export async function sendUvToHost(connection: SshConnection, options: UvWheelOptions = {}): Promise<void> {
    const probe = await runAsRoot(connection, uvProbeScript(), { what: "reading the host's architecture and uv" });
    const [arch, state] = probe.stdout.trim().split(/\s+/);
    if (!arch || state !== "absent") return;
    const wheel = await pinnedUvWheel(arch, options);
    await runAsRoot(connection, installUvScript(arch), { stdin: wheel, what: `installing uv ${UV_VERSION} sent from the machine running Pulumi` });
}
