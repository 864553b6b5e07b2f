import * as pulumi from "@pulumi/pulumi";
import type { PrepareSpec } from "../../model";
import { HostArgs, libraryResource } from "./library-resource";

/** Arguments of {@link HostPrepare}. */
export interface HostPrepareArgs extends HostArgs {
    spec: pulumi.Input<PrepareSpec>;
    /** An env file on the host whose JWT_SECRET, if any, is adopted (see {@link HostPrepare.adoptedJwtSecret}). */
    adoptJwtFrom?: pulumi.Input<string>;
}

/** Prepares a host: prerequisites, the service user, directories, the venv and its requirements. */
export const HostPrepare = libraryResource<HostPrepareArgs, {
    /**
     * The JWT_SECRET the host's env file already had when it was prepared ("" if none): adopting it keeps
     * tokens valid when a hand-made install is taken over, and across `destroy` and `up`. Always secret.
     */
    readonly adoptedJwtSecret: pulumi.Output<string>;
}>({
    kind: "hostPrepare",
    type: "HostPrepare",
    outputs: ["adoptedJwtSecret"],
    secretOutputs: ["connection", "adoptedJwtSecret"],
});
/** An instance of {@link HostPrepare}. */
export type HostPrepare = InstanceType<typeof HostPrepare>;
