import * as pulumi from "@pulumi/pulumi";
import type { ResolutionSpec } from "../../model";
import { HostArgs, libraryResource } from "./library-resource";

/** Arguments of {@link ResolvedRequirements}. */
export interface ResolvedRequirementsArgs extends HostArgs {
    /** The service whose requirements these are. */
    service: pulumi.Input<string>;
    /** What to resolve and from which indexes. */
    resolution: pulumi.Input<ResolutionSpec>;
}

/** What {@link ResolvedRequirements} adds to its inputs. */
export interface ResolvedRequirementsOutputs {
    /** The lock: every package pinned to one version, with its SHA-256 hashes; what every host installs. */
    readonly resolved: pulumi.Output<string>;
    /** The packages the lock pins, `name==version`. */
    readonly packages: pulumi.Output<string[]>;
}

/**
 * A service's requirements resolved once, on one host in the build sandbox,
 * into a lock kept in state; resolved again only when the requirements (or
 * the installer or index settings) change.
 */
export const ResolvedRequirements = libraryResource<ResolvedRequirementsArgs, ResolvedRequirementsOutputs>({
    kind: "resolvedRequirements",
    type: "ResolvedRequirements",
    outputs: ["resolved", "packages"],
    secretOutputs: ["connection"],
});
/** An instance of {@link ResolvedRequirements}. */
export type ResolvedRequirements = InstanceType<typeof ResolvedRequirements>;
