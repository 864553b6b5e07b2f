/**
 * The test-only cloud VM's lifecycle, without Pulumi: boots a cold,
 * cloud-image-like QEMU guest (tools/vm/vm.sh --cloud) from a NoCloud seed
 * made here, and returns as soon as it runs, while it is still booting, the
 * way a cloud API returns a VM that is not reachable yet. Loaded by the
 * dynamic provider of {@link ./resource.ts} in Pulumi's provider process.
 */
import { execFileSync, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { generateHostKey, metaData, userData } from "./seed";

const VM_SH = path.resolve(__dirname, "..", "..", "..", "tools", "vm", "vm.sh");

/** Inputs of a test cloud VM. */
export interface CloudVmInputs {
    /** A name prefix; the VM's id adds a random suffix (test runs may overlap). */
    readonly name: string;
    /** The public key cloud-init authorizes for the `ubuntu` user. */
    readonly sshPublicKey: string;
    /** How long the first-boot stand-in for unattended-upgrades holds apt's locks, in seconds (default 120). */
    readonly aptLockSec?: number;
}

/** What a test cloud VM outputs. */
export interface CloudVmOutputs extends CloudVmInputs {
    /** The loopback address its SSH port is forwarded on. */
    readonly address: string;
    /** The forwarded SSH port. */
    readonly sshPort: number;
    /** The host key injected through cloud-init, `ssh-ed25519 AAAA…`. */
    readonly hostKey: string;
}

/** Creates the VM: host key, seed, cold boot; returns once QEMU runs (the guest is still booting). */
export function createCloudVm(inputs: CloudVmInputs): { id: string; outs: CloudVmOutputs } {
    const id = `${inputs.name}-${crypto.randomBytes(3).toString("hex")}`;
    const hostKey = generateHostKey(id);
    const seedDir = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-seed-"));
    try {
        const seed = { name: id, user: "ubuntu", authorizedKey: inputs.sshPublicKey, hostKey, aptLockSec: inputs.aptLockSec ?? 120 };
        fs.writeFileSync(path.join(seedDir, "user-data"), userData(seed), { mode: 0o600 });
        fs.writeFileSync(path.join(seedDir, "meta-data"), metaData(seed, `${id}-${Date.now()}`), { mode: 0o600 });
        // Recorded before it starts, so the test command can stop exactly the VMs its run started.
        if (process.env.AMARKTAI_TEST_VM_LIST) fs.appendFileSync(process.env.AMARKTAI_TEST_VM_LIST, `${id}\n`);
        const out = execFileSync("bash", [VM_SH, "start", id, "--cloud", "--seed", seedDir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
        const [, port] = out.trim().split(/\s+/);
        if (!port || !/^\d+$/.test(port)) throw new Error(`vm.sh start --cloud printed ${JSON.stringify(out)}`);
        return { id, outs: { ...inputs, address: "127.0.0.1", sshPort: Number(port), hostKey: hostKey.publicKey } };
    } finally {
        fs.rmSync(seedDir, { recursive: true, force: true });
    }
}

/** Deletes the VM: stops its QEMU (by pid) and removes its disk. */
export function deleteCloudVm(id: string): void {
    const r = spawnSync("bash", [VM_SH, "stop", id], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`vm.sh stop ${id} exited ${r.status}: ${r.stderr}`);
}
