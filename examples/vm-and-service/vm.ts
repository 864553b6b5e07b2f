/**
 * The VM. This stands in for your cloud's VM resource (`aws.ec2.Instance`,
 * `gcp.compute.Instance`, `hcloud.Server`, a Proxmox or libvirt domain, …):
 * all the service needs from it is an address, the SSH port and the
 * machine's SSH host public key, known only once the VM exists, i.e.
 * Outputs. Generate the host key yourself and inject it with cloud-init's
 * `ssh_keys` (user-data), with your public key for the login user, and pin it
 * here; the service then waits for the VM to boot before deploying.
 */
import * as pulumi from "@pulumi/pulumi";

export class Vm extends pulumi.CustomResource {
    /** The address SSH reaches the VM on. */
    declare readonly address: pulumi.Output<string>;
    /** The VM's SSH port (22 on a cloud VM). */
    declare readonly sshPort: pulumi.Output<number>;
    /** The VM's SSH host public key, `ssh-ed25519 AAAA…`. */
    declare readonly hostKey: pulumi.Output<string>;

    constructor(name: string, args: { size: string; sshPublicKey: pulumi.Input<string> }, opts?: pulumi.CustomResourceOptions) {
        super("example:compute:Vm", name, { ...args, address: undefined, sshPort: undefined, hostKey: undefined }, opts);
    }
}
