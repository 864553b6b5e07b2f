/** This machine's control groups, for tests that put a process into a group of its own (as a unit's would be). */
import * as assert from "node:assert/strict";
import * as fs from "fs";

/** A writable control group hierarchy of this machine: the unified one, else systemd's named one. Needs root. */
export function cgroupRoot(): string {
    const mounts = fs.readFileSync("/proc/self/mounts", "utf8").split("\n").map((l) => l.split(" "));
    const mount = mounts.find((m) => m[2] === "cgroup2") ?? mounts.find((m) => m[2] === "cgroup" && (m[3] ?? "").split(",").includes("name=systemd"));
    assert.ok(mount, "this machine mounts no cgroup2 or name=systemd hierarchy");
    return mount[1]!;
}
