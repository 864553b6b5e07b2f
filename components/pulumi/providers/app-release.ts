/** The AppRelease provider: builds a release (the app's files + a venv) on the host beside the live one. */
import { LiveRelease, buildReleaseScript, detachedScript, leadWithScriptError, tarArchive } from "../../host";
import { ReleaseSpec, STATE_SCHEMA_VERSION, hostKeyFingerprint, sha256 } from "../../model";
import { entriesOfPreview } from "../../plan";
import { RemoteCommandError, SshConnection, runAsRoot, waitsOf } from "../../transport";
import { Provider, diffProps, hostWorkNeeded, readResult } from "./diff";
import { readHost } from "./host-read";
import { sendUvToHost } from "./uv-deployer";

/** Inputs of an AppRelease resource. */
export interface AppReleaseInputs {
    connection: SshConnection;
    service: string;
    release: ReleaseSpec;
    /** Where the app's files came from (informational; the build uses the bytes below, never the disk). */
    sourceDir?: string;
    /** SHA-256 of the release archive as the program planned it: the build refuses files that changed since. */
    archiveSha256: string;
    /** For previews: each app file's text (or size/hash line for a binary). */
    files: Record<string, string>;
    /** For previews: the app's executable files. */
    executables: string[];
    /** The requirements the venv is built from (installed exactly as shown). */
    requirements: string;
    /** The bytes (base64) of the app files that `files` shows by size and hash (binaries); absent when there are none. */
    blobs?: Record<string, string>;
}

/**
 * The release archive, rebuilt from the files the program planned (their text, or their bytes from
 * `blobs`), so what is deployed is exactly what the preview showed; checked against `archiveSha256`.
 */
export function releaseArchive(inputs: Pick<AppReleaseInputs, "archiveSha256" | "requirements" | "files" | "executables" | "blobs">): Buffer {
    const archive = tarArchive(entriesOfPreview(inputs));
    if (sha256(archive) !== inputs.archiveSha256) {
        throw new Error(`the release archive rebuilt from the planned files does not match its planned SHA-256 (state written by another version of the library?); run pulumi up again`);
    }
    return archive;
}

/** What an AppRelease keeps in state: its inputs and the schema version; after a refresh that found the release broken, what is wrong. */
type AppReleaseOutputs = AppReleaseInputs & { schemaVersion: number; drift?: string };

/** What is wrong with a release on its host, in words ("" when nothing is). */
export function releaseDriftOf(live: LiveRelease | undefined): string {
    switch (live?.state) {
        case undefined:
        case "ok":
            return "";
        case "absent":
            return "not on the host: the next up builds it again";
        case "incomplete":
            return "its build never finished: the next up builds it again";
        case "no-python":
            return "its venv's python is gone (was the system python3 removed or upgraded?): the next up builds it again";
        case "packages":
            return `its venv's packages changed since it was built (${live.changes}): the next up builds it again`;
    }
}

/** What an AppRelease's diff compares. */
const COMPARED = ["connection", "release", "archiveSha256", "files", "executables", "requirements", "blobs"] as const;

async function build(inputs: AppReleaseInputs): Promise<AppReleaseOutputs> {
    const archive = releaseArchive(inputs);
    const release = inputs.release;
    // The host never downloads uv then: it comes from this machine over the SSH session.
    if (release.installer === "uv" && release.uvSource === "deployer") await sendUvToHost(inputs.connection, release.uvMirror !== undefined ? { mirror: release.uvMirror } : {});
    try {
        await runAsRoot(inputs.connection, detachedScript(`build release ${release.id} of ${inputs.service}`, buildReleaseScript(release, inputs.archiveSha256, waitsOf(inputs.connection))), {
            stdin: archive,
            what: `building release ${release.id}`,
            streamLog: true,
        });
    } catch (e) {
        // The build's own error line (an unreachable index, the installer's actionable line) opens the message, before the output's tail.
        const message = e instanceof RemoteCommandError ? leadWithScriptError(e.message, e.result.stderr) : undefined;
        throw message !== undefined && e instanceof Error && message !== e.message ? new Error(message) : e;
    }
    return { ...inputs, schemaVersion: STATE_SCHEMA_VERSION };
}

export const appRelease: Provider = {
    async check(_olds, news) {
        return { inputs: news };
    },
    async diff(_id, olds, news) {
        return diffProps(olds, news, COMPARED, ["service"]);
    },
    async create(inputs: AppReleaseInputs) {
        return { id: `${hostKeyFingerprint(inputs.connection.hostKey)}/${inputs.service}/release`, outs: await build(inputs) };
    },
    async update(_id, olds: AppReleaseOutputs, news: AppReleaseInputs) {
        // A new address, port or login only: the release is already on the host.
        if (!hostWorkNeeded(olds as unknown as Record<string, unknown>, news as unknown as Record<string, unknown>, COMPARED)) return { outs: { ...news, schemaVersion: STATE_SCHEMA_VERSION } };
        return { outs: await build(news) };
    },
    async delete() {
        // Releases stay on the host (the activation keeps the newest few; a purge removes them all).
    },
    async read(id, props: AppReleaseOutputs) {
        if (!props.release?.releasesDir || !props.release.id) return { id, props };
        const host = await readHost(props.connection, props.service, { releases: [{ releasesDir: props.release.releasesDir, id: props.release.id }] });
        // Drift is shown as a property the next up makes go away (it builds the release again).
        return readResult(id, props, releaseDriftOf(host.releases[`${props.release.releasesDir}/${props.release.id}`]), ["schemaVersion"]);
    },
};
