/**
 * The activation's audit trail, run in bash: one JSON line per activation
 * with its outcome, owner, release, changed and removed files, appended to
 * the service's audit log, which keeps its newest lines.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { MANAGED_MARKER } from "../../components/model";
import { AUDIT_KEEP_LINES, PRELUDE, activationScript, auditLines } from "../../components/host";

/** Runs `audit OUTCOME` as the activation defines it, with the log in a scratch directory. */
function audit(log: string, outcome: string, vars: string[]): { code: number | null; stderr: string } {
    const lines = [...PRELUDE, ...auditLines("amarktai-api", "infra/prod/amarktai-api-0123456789ab"), `AUDIT_LOG=${JSON.stringify(log)}`, 'UNIT=amarktai-api.service', ...vars, `audit ${JSON.stringify(outcome)}`];
    const r = spawnSync("bash", ["-c", lines.join("\n") + "\n"], { encoding: "utf8" });
    return { code: r.status, stderr: r.stderr };
}

test("an activation's record names its outcome, stack, release and the files it changed or removed, one JSON line each", (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "audit-"));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const log = path.join(dir, "state", "audit.log");
    const arrays = ["PATHS=('/etc/systemd/system/amarktai-api.service' '/etc/amarktai-infra/amarktai-api/env')", "REMOVED_PATHS=('/etc/systemd/system/amarktai-api.service.d/10-workers.conf')", "changed=(1)", "removing=(0)"];
    assert.equal(audit(log, "rolled back", [...arrays, "RELEASE_ID=aaaaaaaaaaaaaaaa", "old_release=bbbbbbbbbbbbbbbb", "need_restart=1"]).code, 0);
    assert.equal(audit(log, "healthy", ["PATHS=()", "REMOVED_PATHS=()", "changed=()", "removing=()", "need_restart="]).code, 0);
    const records = fs.readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(records.length, 2);
    assert.deepEqual({ ...records[0], time: "" }, {
        time: "",
        outcome: "rolled back",
        owner: "infra/prod/amarktai-api-0123456789ab",
        unit: "amarktai-api.service",
        release: "aaaaaaaaaaaaaaaa",
        previousRelease: "bbbbbbbbbbbbbbbb",
        restarted: true,
        changed: ["/etc/amarktai-infra/amarktai-api/env"],
        removed: ["/etc/systemd/system/amarktai-api.service.d/10-workers.conf"],
    });
    assert.match(String(records[0]!.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual([records[1]!.outcome, records[1]!.release, records[1]!.restarted, records[1]!.changed], ["healthy", null, false, []]);
    assert.equal(fs.statSync(path.dirname(log)).mode & 0o777, 0o700, "root-only");
});

test("the audit log keeps its newest lines", (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "audit-"));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const log = path.join(dir, "audit.log");
    fs.writeFileSync(log, Array.from({ length: AUDIT_KEEP_LINES * 2 }, (_, i) => `{"old": ${i}}\n`).join(""));
    assert.equal(audit(log, "healthy", ["PATHS=()", "REMOVED_PATHS=()", "changed=()", "removing=()"]).code, 0);
    const lines = fs.readFileSync(log, "utf8").trim().split("\n");
    assert.equal(lines.length, AUDIT_KEEP_LINES);
    assert.match(lines.at(-1)!, /"outcome": "healthy"/);
    assert.equal(lines[0], `{"old": ${AUDIT_KEEP_LINES + 1}}`);
});

test("every way an activation ends after changing something is recorded: healthy, rolled back, unhealthy, refused", () => {
    const script = activationScript({ serviceName: "amarktai-api", unitName: "amarktai-api.service", files: [], removed: [], marker: MANAGED_MARKER, links: [], account: { user: "amarktai", group: "amarktai" }, healthUrl: "http://127.0.0.1:8000/health", healthTimeoutSec: 30 });
    for (const outcome of ["audit healthy", 'audit "rolled back"', "audit unhealthy", "audit refused"]) assert.ok(script.includes(outcome), outcome);
    assert.ok(script.indexOf("audit healthy") > script.indexOf("wait_healthy || {"), "healthy is recorded after the gate");
});
