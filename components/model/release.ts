/**
 * Releases as plain data: the app's files plus a venv built from its
 * requirements, identified by a content hash, built beside the live one on
 * the host and switched in by the activation.
 */

/** How a release's venv is built. */
export type ReleaseInstaller =
    /** A pinned, hash-checked `uv` (fetched once per host), with `python3 -m venv` + pip as the fallback. */
    | "uv"
    /** Always `python3 -m venv` + pip (installs `python3-venv` when missing). */
    | "pip";

/** A pinned download, checked by its SHA-256. */
export interface PinnedWheel {
    readonly url: string;
    readonly sha256: string;
}

/** PyPI's package index (the Simple API), which the installers use when no `releases.indexUrl` is set. */
export const PYPI_INDEX_URL = "https://pypi.org/simple";
/** PyPI's file server: the pinned uv wheels live below it (a `releases.uvMirror` serves the same paths). */
export const PYPI_FILES_URL = "https://files.pythonhosted.org";

/** Where the pinned `uv` comes from: downloaded by the host itself, or by the machine running Pulumi and sent over SSH. */
export type UvSource = "host" | "deployer";

/** The pinned `uv` wheel from PyPI, per machine architecture (`uname -m`). */
export const UV_VERSION = "0.9.5";
export const UV_WHEELS: Readonly<Record<string, PinnedWheel>> = {
    x86_64: {
        url: "https://files.pythonhosted.org/packages/9b/83/a0bdf4abf86ede79b427778fe27e2b4a022c98a7a8ea1745dcd6c6561f17/uv-0.9.5-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        sha256: "6507bbbcd788553ec4ad5a96fa19364dc0f58b023e31d79868773559a83ec181",
    },
    aarch64: {
        url: "https://files.pythonhosted.org/packages/48/8a/a990d9a39094d4d47bd11edff17573247f3791c33a19626e92c995498e68/uv-0.9.5-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl",
        sha256: "48a3542835d37882ff57d1ff91b757085525d98756712fa61cf9941d3dda8ebf",
    },
};

/**
 * Where `wheel` is downloaded from: its pinned URL, or the same path below
 * `mirror` (a base URL serving PyPI's files, like `https://files.pythonhosted.org`).
 */
export function uvWheelUrl(wheel: PinnedWheel, mirror?: string): string {
    if (mirror === undefined) return wheel.url;
    if (!wheel.url.startsWith(`${PYPI_FILES_URL}/`)) throw new Error(`the pinned uv wheel ${wheel.url} is not on ${PYPI_FILES_URL}, so a mirror of it has no path`);
    return `${mirror.replace(/\/+$/, "")}${wheel.url.slice(PYPI_FILES_URL.length)}`;
}

/** Where releases live on a host and which fixed paths point into the current one. */
export interface ReleaseLayout {
    /** Root-owned directory holding `<id>/{app,venv,requirements.txt}` and the `current` link. */
    readonly releasesDir: string;
    /** The venv path the unit uses (`paths.venv`): a root-owned link to `<releasesDir>/current/venv`. */
    readonly venvLink: string;
    /** The working directory (`paths.workingDirectory`), a link to `<releasesDir>/current/app` when the app's files are part of releases. */
    readonly appLink?: string;
    /** How many releases to keep on the host (the current one always stays). */
    readonly keep: number;
}

/** One release of one service. */
export interface ReleaseSpec extends ReleaseLayout {
    /** The content hash (16 hex digits) of the app's files, the requirements and the installer. */
    readonly id: string;
    readonly installer: ReleaseInstaller;
    /** Pass `--require-hashes` to the installer (the requirements carry `--hash=` pins). */
    readonly requireHashes: boolean;
    /** Inside the release's `app/`: a link at this relative path to {@link envStore} (the `.env` the unit reads). */
    readonly envLinkName?: string;
    /** Where the `.env` really lives when the working directory is a release (root-owned, outside every release). */
    readonly envStore?: string;
    /** The package index requirements are installed from (`--index-url`); absent: PyPI. */
    readonly indexUrl?: string;
    /** More package indexes (`--extra-index-url`), in order; absent when there are none. */
    readonly extraIndexUrls?: readonly string[];
    /** Index hosts trusted without valid HTTPS (pip `--trusted-host`, uv `--allow-insecure-host`); absent when there are none. */
    readonly trustedHosts?: readonly string[];
    /** `deployer` when the pinned uv is sent from the machine running Pulumi; absent: the host downloads it. */
    readonly uvSource?: UvSource;
    /** A base URL serving PyPI's files, used instead of {@link PYPI_FILES_URL} to download the pinned uv. */
    readonly uvMirror?: string;
}

/** A release id: 16 lowercase hex digits. */
export const RELEASE_ID = /^[0-9a-f]{16}$/;

/** The release directory of `id`. */
export function releaseDir(layout: Pick<ReleaseLayout, "releasesDir">, id: string): string {
    return `${layout.releasesDir}/${id}`;
}

/**
 * One resolution of a service's requirements into a lock: done once per
 * change, on one host, in the build sandbox; every host's release is then
 * built from the lock it returns.
 */
export interface ResolutionSpec extends Pick<ReleaseSpec, "releasesDir" | "installer" | "indexUrl" | "extraIndexUrls" | "trustedHosts" | "uvSource" | "uvMirror"> {
    /** 16 hex digits over the requirements, the installer and the index settings: names the scratch directory and the build account. */
    readonly id: string;
    /** The requirements as written, one per line. */
    readonly requirements: string;
}

/** A package a lock pins: `name==version`, as the lock spells it. */
const LOCKED_PACKAGE = /^([A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?)==([^\s;\\]+)/;

/**
 * The packages a lock pins, as `name==version` in the lock's order (the
 * lines that start a requirement; hash lines, comments and markers aside).
 */
export function lockedPackages(lock: string): string[] {
    const packages: string[] = [];
    for (const line of lock.split("\n")) {
        const m = LOCKED_PACKAGE.exec(line);
        if (m) packages.push(`${m[1]}==${m[2]}`);
    }
    return packages;
}
