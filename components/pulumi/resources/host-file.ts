import * as pulumi from "@pulumi/pulumi";
import type { ManagedFile } from "../../model";
import { HostArgs, libraryResource } from "./library-resource";

/** Arguments of {@link HostFile}. */
export interface HostFileArgs extends HostArgs {
    /** The service whose staging directory holds the file. */
    service: pulumi.Input<string>;
    /** Where the file goes, its mode, owner and kind. */
    file: pulumi.Input<ManagedFile>;
    /** The file's text. Pass a secret Output for files that hold secrets: it then never shows in previews or state. */
    content: pulumi.Input<string>;
    /** For secret files: a redacted text for reviewers (shown in previews instead of the hidden content). */
    view?: pulumi.Input<string>;
    /** The service's owner on the host (see ServiceActivation's `owner`): the staged copy is only removed by its owner. */
    owner?: pulumi.Input<string>;
}

/** One managed file, staged on the host (content on stdin); the activation puts it live. */
export const HostFile = libraryResource<HostFileArgs, { /** SHA-256 of the staged content. */ readonly contentSha256: pulumi.Output<string> }>({
    kind: "hostFile",
    type: "HostFile",
    outputs: ["contentSha256"],
    secretOutputs: ["connection", "contentSha256", "lineHashes"],
});
/** An instance of {@link HostFile}. */
export type HostFile = InstanceType<typeof HostFile>;
