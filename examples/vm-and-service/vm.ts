/**
 * The VM. This stands in for your cloud's VM resource (`aws.ec2.Instance`,
 * `gcp.compute.Instance`, `hcloud.Server`, a Proxmox or libvirt domain, …):
 * all the service needs from it is an address and the machine's SSH host
 * public key, both known only once the VM exists, i.e. Outputs. Give the VM
 * a host key you generate and inject with cloud-init, or read it from the
 * provider's console output, and pin it here.
 */
import * as pulumi from "@pulumi/pulumi";

export class Vm extends pulumi.CustomResource {
    /** The address SSH reaches the VM on. */
    declare readonly address: pulumi.Output<string>;
    /** The VM's SSH host public key, `ssh-ed25519 AAAA…`. */
    declare readonly hostKey: pulumi.Output<string>;

    constructor(name: string, args: { size: string }, opts?: pulumi.CustomResourceOptions) {
        super("example:compute:Vm", name, { ...args, address: undefined, hostKey: undefined }, opts);
    }
}
