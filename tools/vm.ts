/**
 * Test hosts: thin wrappers around tools/vm/vm.sh (QEMU guests restored from
 * a booted snapshot) and tools/vm/ct.sh (systemd-nspawn containers of the same
 * image, for tests that need many hosts). Every host a test starts is stopped
 * by its pid.
 */
import { execFile, execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

/** The repository root. */
export const REPO = path.resolve(__dirname, "..", "..");
const VM_SH = path.join(REPO, "tools", "vm", "vm.sh");
const CT_SH = path.join(REPO, "tools", "vm", "ct.sh");

/** How to reach a running test VM. */
export interface VmInfo {
    readonly name: string;
    readonly host: string;
    readonly port: number;
    readonly user: string;
    readonly privateKeyPath: string;
    readonly hostKey: string;
    /** What runs it: a QEMU VM (the default) or a systemd-nspawn container. */
    readonly harness?: "vm" | "container";
}

/** The script that manages `vm`. */
function harnessScript(vm: VmInfo): string {
    return vm.harness === "container" ? CT_SH : VM_SH;
}

/** Starts (restores) a fresh VM and returns its connection details. */
export function startVm(name: string): VmInfo {
    // Recorded before it starts, so the test command can stop exactly the VMs its own run started.
    if (process.env.AMARKTAI_TEST_VM_LIST) fs.appendFileSync(process.env.AMARKTAI_TEST_VM_LIST, `${name}\n`);
    execFileSync("bash", [VM_SH, "start", name], { stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" });
    const info = JSON.parse(execFileSync("bash", [VM_SH, "info", name], { encoding: "utf8" })) as Omit<VmInfo, "name">;
    return { name, ...info };
}

/**
 * Boots a fresh cloud-image-like VM cold (tools/vm/vm.sh --cloud): cloud-init
 * creates `ubuntu` with the test key and installs a host key generated here,
 * and a first-boot stand-in for unattended-upgrades holds apt's locks for
 * `aptLockSec` once cloud-init has finished. Returns as soon as QEMU runs,
 * while the guest is still booting.
 */
export function startCloudVm(name: string, options: { aptLockSec?: number } = {}): VmInfo {
    const { createCloudVm } = require("./cloud-vm/provider") as typeof import("./cloud-vm/provider");
    const publicKey = fs.readFileSync(`${cachedTestKeyPath()}.pub`, "utf8").trim();
    const { id, outs } = createCloudVm({ name, sshPublicKey: publicKey, ...(options.aptLockSec !== undefined ? { aptLockSec: options.aptLockSec } : {}) });
    return { name: id, host: outs.address, port: outs.sshPort, user: "ubuntu", privateKeyPath: cachedTestKeyPath(), hostKey: outs.hostKey };
}

/** The test SSH key the image builds authorize (`vm.sh paths`). */
export function cachedTestKeyPath(): string {
    const paths = execFileSync("bash", [VM_SH, "paths"], { encoding: "utf8" });
    const m = /^private_key=(\S+)$/m.exec(paths);
    if (!m) throw new Error(`vm.sh paths printed no private key path:\n${paths}`);
    return m[1]!;
}

/** Waits until the VM answers SSH again (after a reboot), up to `timeoutMs`. */
export async function waitForSsh(vm: VmInfo, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (vmSsh(vm, "systemctl is-system-running --wait >/dev/null 2>&1; true").code === 0) return;
        await new Promise((r) => setTimeout(r, 3000));
    }
    throw new Error(`VM ${vm.name} did not answer SSH within ${timeoutMs / 1000}s`);
}

/** Stops a VM (kills its QEMU by pid) and deletes its overlay. */
export function stopVm(name: string): void {
    spawnSync("bash", [VM_SH, "stop", name], { stdio: "inherit" });
}

/**
 * Starts a fresh container host (tools/vm/ct.sh: the test image's rootfs with
 * systemd as PID 1, its own host key and network) and returns its connection
 * details. Asynchronous, so that many start in parallel (~3 s each).
 */
export async function startContainer(name: string): Promise<VmInfo> {
    // Recorded before it starts, so the test command can stop exactly the hosts its own run started.
    if (process.env.AMARKTAI_TEST_VM_LIST) fs.appendFileSync(process.env.AMARKTAI_TEST_VM_LIST, `ct:${name}\n`);
    const run = (args: string[]) =>
        new Promise<string>((resolve, reject) =>
            execFile("bash", [CT_SH, ...args], { encoding: "utf8" }, (err, stdout, stderr) => (err ? reject(new Error(`ct.sh ${args.join(" ")}: ${err.message}\n${stderr}`)) : resolve(stdout))),
        );
    await run(["start", name]);
    const info = JSON.parse(await run(["info", name])) as Omit<VmInfo, "name">;
    return { name, ...info, harness: "container" };
}

/** Stops a container host (its nspawn and network helper, by pid) and deletes its overlay; asynchronous, so that many stop in parallel. */
export function stopContainer(name: string): Promise<void> {
    return new Promise((resolve) => execFile("bash", [CT_SH, "stop", name], () => resolve()));
}

/** Runs a shell command line in the guest (as ubuntu, or root) and returns its result. */
export function vmSsh(vm: VmInfo, command: string, options: { root?: boolean; input?: string } = {}): { code: number; stdout: string; stderr: string } {
    const args = [harnessScript(vm), "ssh", vm.name, ...(options.root ? ["--root"] : []), "--", command];
    const r = spawnSync("bash", args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, input: options.input ?? "" });
    return { code: r.status ?? 255, stdout: r.stdout, stderr: r.stderr };
}

/** Like {@link vmSsh} but throws unless the command succeeds; returns stdout. */
export function vmRun(vm: VmInfo, command: string, options: { root?: boolean; input?: string } = {}): string {
    const r = vmSsh(vm, command, options);
    if (r.code !== 0) {
        throw new Error(`in the VM, \`${command}\` exited ${r.code}:\n${r.stderr}${r.stdout}`);
    }
    return r.stdout;
}

/** The test VM's private key text. */
export function vmPrivateKey(vm: VmInfo): string {
    return fs.readFileSync(vm.privateKeyPath, "utf8");
}

/** Counters read on the host from its journal. */
export interface HostCounters {
    /** Times the unit was started. */
    readonly starts: number;
    /** Completed `systemctl daemon-reload`s. */
    readonly reloads: number;
    /** SSH sessions sshd accepted, including the one that read these counters. */
    readonly sessions: number;
}

/** Reads {@link HostCounters} in a single SSH session (which is counted: subtract 1 from a delta). */
export function hostCounters(vm: VmInfo, unit = "amarktai-api.service"): HostCounters {
    const out = vmRun(
        vm,
        [
            `journalctl -q --no-pager -o cat -u ${unit} | grep -c '^Started ${unit}' || true`,
            "journalctl -q --no-pager -o cat _PID=1 | grep -c '^Reloading finished' || true",
            "journalctl -q --no-pager -o cat _COMM=sshd-session _COMM=sshd | grep -c '^Accepted publickey' || true",
        ].join("; "),
        { root: true },
    );
    const [starts, reloads, sessions] = out.trim().split("\n").map(Number);
    return { starts: starts!, reloads: reloads!, sessions: sessions! };
}

/** Forwards one more loopback port to the VM's sshd (the same machine on a second port) and returns it. */
export function forwardPort(vm: VmInfo): number {
    return Number(execFileSync("bash", [VM_SH, "forward", vm.name], { stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" }).trim());
}
