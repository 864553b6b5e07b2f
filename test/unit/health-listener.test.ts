/**
 * The health gate's proof that the service itself answered: the process
 * holding the health port's listening socket must be in the unit's cgroup.
 * Run against this machine's real /proc with a real listening socket; the
 * unit's cgroup is a scratch directory listing the processes it holds.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn, spawnSync } from "child_process";
import * as path from "path";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import { MANAGED_MARKER } from "../../components/model";
import { LISTENER_NONE, LISTENER_OTHER, LISTENER_OWNED, LISTENER_OWNER_PY, activationScript, healthGateLines, healthPortOf } from "../../components/host";
import { cgroupRoot } from "../support/cgroup";

/** A listening socket of this process on a kernel-chosen loopback port. */
async function listening(): Promise<{ port: number; close: () => Promise<void> }> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return { port: (server.address() as net.AddressInfo).port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** This process's control group, as the unified (`0::`) or systemd (`name=systemd`) line of /proc/self/cgroup gives it. */
function ownCgroup(): string {
    const lines = fs.readFileSync("/proc/self/cgroup", "utf8").trim().split("\n").map((l) => l.split(":"));
    const line = lines.find((l) => l[0] === "0" && l[1] === "") ?? lines.find((l) => l[1] === "name=systemd");
    assert.ok(line, "this process has a control group");
    return line.slice(2).join(":");
}

const owner = (port: number, unitCgroup: string) => spawnSync("python3", ["-c", LISTENER_OWNER_PY, String(port), unitCgroup], { encoding: "utf8" });

test("the port's listener in the unit's cgroup, or a group below it, is the unit's own: the gate may trust the answer", async (t) => {
    assert.equal(process.getuid?.(), 0, "needs root: it creates a control group and moves a process into it");
    // A "unit" group with a child group holding a listening process, as a service's processes may sit in child groups.
    const group = `/amarktai-test-unit-${process.pid}`;
    const dir = path.join(cgroupRoot(), group);
    fs.mkdirSync(path.join(dir, "sub"), { recursive: true });
    const child = spawn("python3", ["-c", "import socket, sys\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen()\nprint(s.getsockname()[1], flush=True)\nsys.stdin.read()"], { stdio: ["pipe", "pipe", "inherit"] });
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    t.after(async () => {
        child.kill("SIGKILL");
        await exited;
        fs.rmdirSync(path.join(dir, "sub"));
        fs.rmdirSync(dir);
    });
    const port = Number(await new Promise<string>((resolve) => child.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim()))));
    fs.writeFileSync(path.join(dir, "sub", "cgroup.procs"), `${child.pid}\n`);
    const unit = owner(port, group);
    const sub = owner(port, `${group}/sub`);
    const sibling = owner(port, `${group}-other`);
    assert.equal(unit.status, LISTENER_OWNED, unit.stdout + unit.stderr);
    assert.equal(unit.stdout, "");
    assert.equal(sub.status, LISTENER_OWNED);
    assert.equal(sibling.status, LISTENER_OTHER, "a group whose name only starts the same is another group");
    assert.match(sibling.stdout, new RegExp(`^pid ${child.pid} \\(\\S*python3 -c import socket.*\\) in ${group}/sub\n$`));
});

test("a listener outside the unit's cgroup is another process: it is named with its command line and group, never taken for the service", async () => {
    const l = await listening();
    const r = owner(l.port, "/system.slice/amarktai-api.service");
    await l.close();
    assert.equal(r.status, LISTENER_OTHER, r.stderr);
    assert.equal(r.stdout, `pid ${process.pid} (${fs.readFileSync("/proc/self/cmdline", "utf8").split("\0").join(" ").trim()}) in ${ownCgroup()}\n`);
});

test("a unit without a cgroup (not running) owns no listener, and a closed port has none", async () => {
    const l = await listening();
    const noUnit = owner(l.port, "");
    const root = owner(l.port, "/");
    await l.close();
    assert.equal(noUnit.status, LISTENER_OTHER);
    assert.equal(root.status, LISTENER_OTHER, "the root group is no unit's");
    assert.equal(owner(l.port, ownCgroup()).status, LISTENER_NONE, "closed now");
});

test("the activation's health gate checks the listener on the health URL's port after a 200, and names a squatter in every failure", () => {
    assert.equal(healthPortOf("http://127.0.0.1:8000/health"), "8000");
    assert.equal(healthPortOf("http://[::1]/health"), "80");
    const script = activationScript({ serviceName: "amarktai-api", unitName: "amarktai-api.service", files: [], removed: [], marker: MANAGED_MARKER, links: [], account: { user: "amarktai", group: "amarktai" }, healthUrl: "http://127.0.0.1:8001/health", healthTimeoutSec: 30 });
    assert.match(script, /^HEALTH_PORT='8001'$/m);
    const gate = script.slice(script.indexOf("wait_healthy() {"));
    assert.ok(gate.indexOf("health_ok; then") < gate.indexOf("listener_check) || rc=$?"), "the listener is checked once the URL answered");
    assert.match(gate, /if \[ "\$rc" = 3 \]; then log "\$HEALTH_URL answered, but not from \$UNIT: port \$HEALTH_PORT is held by/);
    for (const failure of ["failed$(port_holder_note)", "restarted by systemd$(port_holder_note)", "${unseen}$(port_holder_note)"]) assert.ok(gate.includes(failure), failure);
    assert.equal(spawnSync("bash", ["-n"], { input: script, encoding: "utf8" }).status, 0);
});

test("with socket activation PID 1 may hold the listener beside the unit, but no other process is excused by it", async () => {
    const l = await listening();
    const withSocket = spawnSync("python3", ["-c", LISTENER_OWNER_PY, String(l.port), "/system.slice/amarktai-api.service", "1"], { encoding: "utf8" });
    await l.close();
    assert.equal(withSocket.status, LISTENER_OTHER, "this test process is not PID 1: still another process");
    assert.match(withSocket.stdout, new RegExp(`^pid ${process.pid} `));
});

/** Runs `startup_failed` of the health gate with `systemctl` and `journalctl` stubs printing `invocation` and `journal`. */
function startupFailed(invocation: string, journal: string): number | null {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gate-stubs-"));
    try {
        fs.writeFileSync(path.join(dir, "systemctl"), `#!/bin/sh\n[ "$1 $2 $3" = "show -p InvocationID" ] && printf '%s\\n' ${JSON.stringify(invocation)}\n`, { mode: 0o755 });
        // Only the lines of the asked invocation, and only when asked since the given time: the stub checks both arguments.
        fs.writeFileSync(
            path.join(dir, "journalctl"),
            `#!/bin/sh\ncase " $* " in *" --since @1700000000 "*) ;; *) exit 0 ;; esac\nfor a in "$@"; do [ "$a" = "_SYSTEMD_INVOCATION_ID=${invocation}" ] && cat ${JSON.stringify(path.join(dir, "journal"))}; done; exit 0\n`,
            { mode: 0o755 },
        );
        fs.writeFileSync(path.join(dir, "journal"), journal);
        const script = [...healthGateLines({ unitName: "amarktai-api.service", healthUrl: "http://127.0.0.1:8000/health", healthTimeoutSec: 5 }), "startup_failed 1700000000"].join("\n");
        return spawnSync("bash", ["-c", `set -euo pipefail\n${script}`], { encoding: "utf8", env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } }).status;
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

test("the gate sees workers that fail to start under uvicorn's supervisor (the unit stays active), from this start's own journal lines", () => {
    const failing = "INFO:     Started parent process [812]\nERROR:    Traceback (most recent call last):\nERROR:    Application startup failed. Exiting.\n";
    assert.equal(startupFailed("3f2a", failing), 0);
    assert.equal(startupFailed("3f2a", "INFO:     Started parent process [812]\nINFO:     Child process [901] died\n"), 0);
    assert.equal(startupFailed("3f2a", "INFO:     Started parent process [812]\nINFO:     Application startup complete.\n"), 1, "a healthy start is not a failure");
    assert.equal(startupFailed("", failing), 1, "no invocation (not running): nothing of this start to read");
    // Many lines before the match: grep ends early, and pipefail must not turn the match into a failure.
    assert.equal(startupFailed("3f2a", `${"INFO:     noise\n".repeat(20000)}ERROR:    Application startup failed. Exiting.\n${"INFO:     noise\n".repeat(20000)}`), 0);
});
