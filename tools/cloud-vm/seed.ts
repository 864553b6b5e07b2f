/**
 * The NoCloud seed of a cloud-image-like test VM: cloud-init user-data that
 * creates the login user with its authorized key and installs a host key
 * generated beforehand, exactly what a user of a real cloud does so the
 * host key can be pinned before the VM has booted.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

/** What the seed sets up. */
export interface CloudSeed {
    /** The instance's name (`local-hostname`, and part of `instance-id`). */
    readonly name: string;
    /** The login user cloud-init creates, with passwordless sudo. */
    readonly user: string;
    /** The public key authorized for `user`. */
    readonly authorizedKey: string;
    /** The SSH host key pair cloud-init installs (OpenSSH private key text, `ssh-ed25519 AAAA…`). */
    readonly hostKey: { readonly privateKey: string; readonly publicKey: string };
    /** How long the image's first-boot stand-in for unattended-upgrades holds apt's and dpkg's locks, in seconds. */
    readonly aptLockSec: number;
}

/** Where the image's first-boot stand-in for unattended-upgrades reads how long to hold apt's locks (tools/vm/README.md). */
export const APT_LOCK_SETTINGS_FILE = "/etc/default/first-boot-upgrades";

/** YAML block scalar lines of `text`, indented by `indent` spaces. */
function block(text: string, indent: number): string {
    const pad = " ".repeat(indent);
    return text.trimEnd().split("\n").map((l) => `${pad}${l}`).join("\n");
}

/** The `user-data` (cloud-config) of a seed. Values are checked to keep the YAML unambiguous. */
export function userData(seed: CloudSeed): string {
    if (!/^[a-z_][a-z0-9_-]*$/.test(seed.user)) throw new Error(`not a user name: ${seed.user}`);
    for (const key of [seed.authorizedKey, seed.hostKey.publicKey]) {
        if (!/^ssh-[a-z0-9-]+ [A-Za-z0-9+/=]+( [^\n]*)?$/.test(key.trim())) throw new Error("not an SSH public key line");
    }
    return [
        "#cloud-config",
        "users:",
        `  - name: ${seed.user}`,
        "    groups: [adm, sudo]",
        "    sudo: ALL=(ALL) NOPASSWD:ALL",
        "    shell: /bin/bash",
        "    lock_passwd: true",
        "    ssh_authorized_keys:",
        `      - ${seed.authorizedKey.trim()}`,
        "ssh_deletekeys: true",
        "ssh_keys:",
        "  ed25519_private: |",
        block(seed.hostKey.privateKey, 4),
        `  ed25519_public: ${seed.hostKey.publicKey.trim()}`,
        "write_files:",
        `  - path: ${APT_LOCK_SETTINGS_FILE}`,
        "    content: |",
        `      HOLD_SECONDS=${Math.max(0, Math.floor(seed.aptLockSec))}`,
        "",
    ].join("\n");
}

/** The `meta-data` of a seed: a fresh instance id, so cloud-init runs its first-boot modules. */
export function metaData(seed: Pick<CloudSeed, "name">, instanceId: string): string {
    return `instance-id: ${instanceId}\nlocal-hostname: ${seed.name}\n`;
}

/** Generates an ed25519 host key pair with ssh-keygen (in a private temporary directory, removed after). */
export function generateHostKey(comment: string): { privateKey: string; publicKey: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-hostkey-"));
    try {
        const file = path.join(dir, "key");
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]);
        const publicKey = fs.readFileSync(`${file}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
        return { privateKey: fs.readFileSync(file, "utf8"), publicKey };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}
