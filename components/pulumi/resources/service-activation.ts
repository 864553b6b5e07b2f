import * as pulumi from "@pulumi/pulumi";
import type { PurgeSpec } from "../../model";
import type { ActivationFile, ActivationRelease } from "../providers/service-activation";
import { HostArgs, libraryResource } from "./library-resource";

/** Arguments of {@link ServiceActivation}. */
export interface ServiceActivationArgs extends HostArgs {
    /** The service name; the unit is `<service>.service`. */
    service: pulumi.Input<string>;
    /** Every managed file by path: mode, owner and kind. */
    files: pulumi.Input<Record<string, ActivationFile>>;
    links?: pulumi.Input<Record<string, string>>;
    account?: pulumi.Input<{ user: string; group: string }>;
    /** A short hash of each file's content by path. */
    contentHashes: pulumi.Input<Record<string, pulumi.Input<string>>>;
    health: pulumi.Input<{ url: string; timeoutSec: number }>;
    /** Only when `pulumi destroy` should also remove data and the user. */
    purge?: pulumi.Input<PurgeSpec>;
    /** `<project>/<stack>/<resource>`: recorded on the host as the service's owner; a delete by anyone else removes nothing. */
    owner?: pulumi.Input<string>;
    /** What the activation does with unmanaged drop-ins of the unit: `refuse` (default) or `remove`. */
    foreignDropIns?: pulumi.Input<"refuse" | "remove">;
    /** The `.env` keys holding secrets (names only): their values are redacted from the journal excerpt of a failed start. */
    secretEnvKeys?: pulumi.Input<string[]>;
    /** The release to switch to. */
    release?: pulumi.Input<ActivationRelease>;
}

/** Verifies, swaps in, reloads, restarts and health-checks one service on one host; rolls back on failure. */
export const ServiceActivation = libraryResource<ServiceActivationArgs, { /** When the last activation finished. */ readonly activatedAt: pulumi.Output<string> }>({
    kind: "serviceActivation",
    type: "ServiceActivation",
    outputs: ["activatedAt"],
    secretOutputs: ["connection", "contentHashes"],
});
/** An instance of {@link ServiceActivation}. */
export type ServiceActivation = InstanceType<typeof ServiceActivation>;
