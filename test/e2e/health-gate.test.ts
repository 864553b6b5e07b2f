/**
 * The health gate cannot be fooled by another process on the service's port.
 * The notes' own "debug manually" step runs uvicorn by hand on 127.0.0.1:8000;
 * left running, it answers /health with 200 while the unit crash-loops on
 * "address already in use". Before, `up` reported that as healthy. Now the
 * gate also requires the port's listener to be the unit's own process (its
 * cgroup) and names whoever else holds it.
 *
 * One container host (native speed; systemd, cgroups and sockets as in a VM).
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import { TestStack } from "../../tools/stack";
import { VmInfo, startContainer, stopContainer, vmPrivateKey, vmRun, vmSsh } from "../../tools/vm";

const MINUTE = 60_000;
const UNIT = "amarktai-api.service";
const SOCKET = "amarktai-api.socket";
/** The notes' manual debug run, as its own transient unit so that it lives outside the service's cgroup. */
const SQUATTER = "debug-uvicorn";
let host: VmInfo;
let stack: TestStack;

const health = () => vmSsh(host, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/health").stdout.trim();
/** The newest line of the service's audit trail on the host. */
const lastAudit = (): Record<string, unknown> => JSON.parse(vmRun(host, "tail -n 1 /var/lib/amarktai-infra/amarktai-api/audit.log", { root: true }));
const show = (property: string) => vmRun(host, `systemctl show -p ${property} --value ${UNIT}`).trim();

before(async () => {
    host = await startContainer(`e2e-gate-${process.pid}`);
    stack = await TestStack.create("gate");
    await stack.setConfig({
        hosts: [{ name: "h1", address: host.host, port: host.port, user: host.user, hostKey: host.hostKey }],
        app: { sourceDir: "demo-app" },
    });
    await stack.setSecret("sshPrivateKey", vmPrivateKey(host));
});

after(async () => {
    await stopContainer(host.name);
    stack?.cleanup();
});

test("a fresh up is healthy, and the port's listener is the unit's main process", { timeout: 15 * MINUTE }, async () => {
    const r = await stack.up();
    assert.equal(r.code, 0, `up failed:\n${r.stdout}\n${r.stderr}`);
    console.error(`    fresh up took ${r.seconds.toFixed(1)}s`);
    assert.equal(health(), "200");
    const listener = vmRun(host, "ss -Hltnp 'sport = :8000'", { root: true });
    assert.match(listener, new RegExp(`pid=${show("MainPID")},`), listener);
});

test("with the notes' manual uvicorn holding the port, a restarting change fails up naming that process instead of reporting the service healthy", { timeout: 15 * MINUTE }, async () => {
    // The notes' "Debug manually": stop the service, run uvicorn by hand as the service user, and forget it. With socket
    // activation the notes' stop alone leaves systemd holding the port (the manual uvicorn could not bind it): this is an
    // operator who stopped the socket too.
    vmRun(host, `systemctl stop ${SOCKET} ${UNIT} && systemd-run --unit ${SQUATTER} -p User=amarktai -p WorkingDirectory=/var/amarktai/app/backend /var/amarktai/venv/bin/python -m uvicorn server:app --host 127.0.0.1 --port 8000`, { root: true });
    const deadline = Date.now() + 2 * MINUTE;
    while (health() !== "200") assert.ok(Date.now() < deadline, "the manual uvicorn never answered");
    const squatterPid = vmRun(host, `systemctl show -p MainPID --value ${SQUATTER}`, { root: true }).trim();
    await stack.setConfig({ env: { ENABLE_TRADING: "true" } });
    const r = await stack.up();
    const out = r.stdout + r.stderr;
    console.error(`    up against the squatter took ${r.seconds.toFixed(1)}s`);
    assert.notEqual(r.code, 0, `up reported success while another process answered for the service:\n${out}`);
    const failed = lastAudit();
    assert.equal(failed.outcome, "rolled back", JSON.stringify(failed));
    assert.deepEqual(failed.changed, ["/etc/amarktai-infra/amarktai-api/env"]);
    assert.match(out, new RegExp(`port 8000 is held by pid ${squatterPid} \\(/var/amarktai/venv/bin/python -m uvicorn server:app --host 127\\.0\\.0\\.1 --port 8000\\) in /system\\.slice/${SQUATTER}\\.service`), out);
});

test("once the manual uvicorn is stopped, the same change goes through, the unit holds the port, and the host's audit trail has each activation's outcome", { timeout: 15 * MINUTE }, async () => {
    vmRun(host, `systemctl stop ${SQUATTER}`, { root: true });
    const r = await stack.up();
    assert.equal(r.code, 0, `up failed:\n${r.stdout}\n${r.stderr}`);
    assert.equal(health(), "200");
    assert.equal(show("ActiveState"), "active");
    assert.match(vmRun(host, "ss -Hltnp 'sport = :8000'", { root: true }), new RegExp(`pid=${show("MainPID")},`));
    const healthy = lastAudit();
    console.error(`    audit: ${JSON.stringify(healthy)}`);
    assert.deepEqual([healthy.outcome, healthy.restarted, healthy.changed, healthy.unit], ["healthy", true, ["/etc/amarktai-infra/amarktai-api/env"], UNIT]);
    assert.match(String(healthy.owner), /^amarktai-infra\/gate-[0-9a-f]+\/amarktai-api-[0-9a-f]{12}$/);
    assert.match(String(healthy.release), /^[0-9a-f]{16}$/);
    // The same lines in the journal, under their own identifier: the fresh up, the rolled-back change, this one.
    const journal = vmRun(host, "journalctl -q --no-pager -o cat -t amarktai-infra-audit", { root: true }).trim().split("\n").map((l) => JSON.parse(l).outcome);
    assert.deepEqual(journal, ["healthy", "rolled back", "healthy"]);
    const noop = await stack.run(["up", "--yes", "--skip-preview", "--expect-no-changes"]);
    assert.equal(noop.code, 0, noop.stdout + noop.stderr);
});
