/**
 * A test-only Pulumi resource: a cloud-image-like VM booted cold on this
 * machine (see ./provider.ts), standing in for a cloud provider's VM resource
 * in `examples/vm-and-service`. Never part of the published library.
 *
 * `cloudVmClass(pulumi)` builds the class with the program's own
 * `@pulumi/pulumi` module (a program must register every resource through one
 * copy of the SDK). Its dynamic provider loads ./provider.js from this
 * checkout by absolute path: fine for a test tool, never for the library.
 */
import type * as pulumiModule from "@pulumi/pulumi";
import * as path from "path";
import type { CloudVmOutputs } from "./provider";

/** The compiled provider implementation. */
const PROVIDER_JS = path.join(__dirname, "provider.js");

/** Arguments of a test cloud VM. */
export interface CloudVmArgs {
    /** Kept for the example's signature (a cloud VM's machine size); ignored here. */
    readonly size?: string;
    /** The public key cloud-init authorizes for `ubuntu`. */
    readonly sshPublicKey: pulumiModule.Input<string>;
    /** How long apt's locks are held after first boot (default 120 s). */
    readonly aptLockSec?: number;
}

/** A test cloud VM. */
export interface CloudVm extends pulumiModule.CustomResource {
    /** The address SSH reaches the VM on. */
    readonly address: pulumiModule.Output<string>;
    /** The forwarded SSH port. */
    readonly sshPort: pulumiModule.Output<number>;
    /** The SSH host public key injected through cloud-init. */
    readonly hostKey: pulumiModule.Output<string>;
}

/** The class of test cloud VMs, built on the given `@pulumi/pulumi`. */
export function cloudVmClass(pulumi: typeof pulumiModule): new (name: string, args: CloudVmArgs, opts?: pulumiModule.CustomResourceOptions) => CloudVm {
    const providerPath = PROVIDER_JS;
    const provider: pulumiModule.dynamic.ResourceProvider = {
        async create(inputs: { name: string; sshPublicKey: string; aptLockSec?: number }) {
            return require(providerPath).createCloudVm(inputs);
        },
        async diff(_id: string, olds: CloudVmOutputs, news: { name: string; sshPublicKey: string; aptLockSec?: number }) {
            const replaces = (["name", "sshPublicKey", "aptLockSec"] as const).filter((k) => olds[k] !== news[k]);
            return { changes: replaces.length > 0, replaces, deleteBeforeReplace: true };
        },
        async delete(id: string) {
            require(providerPath).deleteCloudVm(id);
        },
    };
    return class extends pulumi.dynamic.Resource implements CloudVm {
        /** The address SSH reaches the VM on. */
        declare readonly address: pulumiModule.Output<string>;
        /** The forwarded SSH port. */
        declare readonly sshPort: pulumiModule.Output<number>;
        /** The SSH host public key injected through cloud-init. */
        declare readonly hostKey: pulumiModule.Output<string>;

        constructor(name: string, args: CloudVmArgs, opts?: pulumiModule.CustomResourceOptions) {
            super(provider, name, { name, sshPublicKey: args.sshPublicKey, ...(args.aptLockSec !== undefined ? { aptLockSec: args.aptLockSec } : {}), address: undefined, sshPort: undefined, hostKey: undefined }, opts, "amarktai-test:CloudVm");
        }
    };
}
