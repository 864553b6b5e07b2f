/**
 * The health gate's proof that the service itself answered: the process
 * holding the health port's listening socket must be in the unit's cgroup.
 * Run against this machine's real /proc with a real listening socket; the
 * unit's cgroup is a scratch directory listing the processes it holds.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { MANAGED_MARKER } from "../../components/model";
import { LISTENER_NONE, LISTENER_OTHER, LISTENER_OWNED, LISTENER_OWNER_PY, activationScript, healthPortOf } from "../../components/host";

/** A listening socket of this process on a kernel-chosen loopback port. */
async function listening(): Promise<{ port: number; close: () => Promise<void> }> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return { port: (server.address() as net.AddressInfo).port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** A scratch cgroup directory whose `cgroup.procs` (here in a child group, as systemd may nest them) lists `pids`. */
function cgroupWith(pids: readonly number[]): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "unit-cgroup-"));
    fs.mkdirSync(path.join(dir, "child"));
    fs.writeFileSync(path.join(dir, "cgroup.procs"), "");
    fs.writeFileSync(path.join(dir, "child", "cgroup.procs"), pids.map((p) => `${p}\n`).join(""));
    return dir;
}

const owner = (port: number, cgroup: string) => spawnSync("python3", ["-c", LISTENER_OWNER_PY, String(port), cgroup], { encoding: "utf8" });

test("the port's listener in the unit's cgroup is the unit's own: the gate may trust the answer", async (t) => {
    const l = await listening();
    const cg = cgroupWith([process.pid]);
    t.after(() => fs.rmSync(cg, { recursive: true, force: true }));
    const r = owner(l.port, cg);
    await l.close();
    assert.equal(r.status, LISTENER_OWNED, r.stderr);
    assert.equal(r.stdout, "");
});

test("a listener outside the unit's cgroup is another process: it is named with its command line, never taken for the service", async (t) => {
    const l = await listening();
    const cg = cgroupWith([1]);
    t.after(() => fs.rmSync(cg, { recursive: true, force: true }));
    const r = owner(l.port, cg);
    await l.close();
    assert.equal(r.status, LISTENER_OTHER, r.stderr);
    assert.match(r.stdout, new RegExp(`^pid ${process.pid} \\(.*node.*\\) in \\S+\\n$`));
});

test("a unit without a cgroup (not running) owns no listener, and a closed port has none", async (t) => {
    const l = await listening();
    const r = owner(l.port, "/nonexistent-unit-cgroup");
    await l.close();
    assert.equal(r.status, LISTENER_OTHER);
    const cg = cgroupWith([process.pid]);
    t.after(() => fs.rmSync(cg, { recursive: true, force: true }));
    assert.equal(owner(l.port, cg).status, LISTENER_NONE, "closed now");
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
