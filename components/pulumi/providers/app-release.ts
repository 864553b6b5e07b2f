/** The AppRelease provider: builds a release (the app's files + a venv) on the host beside the live one. */
import { LiveRelease, buildReleaseScript, detachedScript, tarArchive } from "../../host";
import { ReleaseSpec, STATE_SCHEMA_VERSION, hostKeyFingerprint, sha256 } from "../../model";
import { readAppSource, releaseEntries } from "../../plan";
import { SshConnection, runAsRoot } from "../../transport";
import { Provider, diffProps, hostWorkNeeded, readResult } from "./diff";
import { readHost } from "./host-read";

/** Inputs of an AppRelease resource. */
export interface AppReleaseInputs {
    connection: SshConnection;
    service: string;
    release: ReleaseSpec;
    /** The app's directory (absolute), read again when the release is built; absent for a venv-only release. */
    sourceDir?: string;
    /** SHA-256 of the release archive as the program planned it: the build refuses files that changed since. */
    archiveSha256: string;
    /** For previews: each app file's text (or size/hash line for a binary). */
    files: Record<string, string>;
    /** For previews: the app's executable files. */
    executables: string[];
    /** The requirements the venv is built from (installed exactly as shown). */
    requirements: string;
}

/** The release archive, built from the app's directory as it is now; fails if it differs from what was planned. */
export function releaseArchive(inputs: Pick<AppReleaseInputs, "sourceDir" | "archiveSha256" | "requirements">): Buffer {
    const appFiles = inputs.sourceDir ? readAppSource(inputs.sourceDir, inputs.sourceDir) : [];
    const archive = tarArchive(releaseEntries(inputs.requirements, appFiles));
    if (sha256(archive) !== inputs.archiveSha256) {
        throw new Error(`the app's files in ${inputs.sourceDir} changed while pulumi was running; run pulumi up again`);
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
const COMPARED = ["connection", "release", "archiveSha256", "files", "executables", "requirements"] as const;

async function build(inputs: AppReleaseInputs): Promise<AppReleaseOutputs> {
    const archive = releaseArchive(inputs);
    await runAsRoot(inputs.connection, detachedScript(`build release ${inputs.release.id} of ${inputs.service}`, buildReleaseScript(inputs.release, inputs.archiveSha256)), {
        stdin: archive,
        what: `building release ${inputs.release.id}`,
    });
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
