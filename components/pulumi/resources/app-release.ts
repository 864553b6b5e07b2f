import * as pulumi from "@pulumi/pulumi";
import type { ReleaseSpec } from "../../model";
import { HostArgs, libraryResource } from "./library-resource";

/** Arguments of {@link AppRelease}. */
export interface AppReleaseArgs extends HostArgs {
    /** The service the release belongs to. */
    service: pulumi.Input<string>;
    /** The release: id, layout, installer. */
    release: pulumi.Input<ReleaseSpec>;
    /** Where the app's files came from (informational: the build uses `files` and `blobs`). */
    sourceDir?: pulumi.Input<string>;
    /** SHA-256 of the release archive as planned. */
    archiveSha256: pulumi.Input<string>;
    /** Each app file's text, or a size/hash line for a binary: what previews diff. */
    files: pulumi.Input<Record<string, string>>;
    /** The app's executable files. */
    executables: pulumi.Input<string[]>;
    /** The requirements, one per line. */
    requirements: pulumi.Input<string>;
    /** The bytes (base64) of the files `files` shows by size and hash. */
    blobs?: pulumi.Input<Record<string, string>>;
}

/** Builds one release (the app's files + a venv from the requirements) on one host, beside the live one; the activation switches to it. */
export const AppRelease = libraryResource<AppReleaseArgs, object>({
    kind: "appRelease",
    type: "AppRelease",
    outputs: [],
    secretOutputs: ["connection"],
});
/** An instance of {@link AppRelease}. */
export type AppRelease = InstanceType<typeof AppRelease>;
