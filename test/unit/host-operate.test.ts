/**
 * The operator's host scripts run in bash on this machine, with `systemctl`
 * and `journalctl` stubbed on PATH and a real HTTP server in a control group of
 * its own standing in for the service: `logs` passes journalctl the operator's
 * query and masks every .env value; `restart` restarts, waits for the
 * health gate, and finds the notes' warnings in the journal.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { OperatedService } from "../../components/model";
import { JournalRecord, RestartReport, journalScript, restartScript } from "../../components/host";
import { cgroupRoot } from "../support/cgroup";

const SECRET = "jwt-abcdef-123456";

function scratch(): { dir: string; service: (port: number) => OperatedService } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "operate-"));
    fs.mkdirSync(path.join(dir, "bin"));
    fs.writeFileSync(path.join(dir, "env"), `# Managed\nJWT_SECRET="${SECRET}"\nENABLE_TRADING=false\n`, { mode: 0o640 });
    // systemctl: every call logged; the unit is active, never restarted by itself, in this process's cgroup.
    fs.writeFileSync(
        path.join(dir, "bin", "systemctl"),
        `#!/bin/bash\necho "$*" >> ${JSON.stringify(path.join(dir, "systemctl.log"))}\ncase "$*" in\n  *is-active*) echo active ;;\n  *NRestarts*) echo 0 ;;\n  *ControlGroup*) echo "$STUB_CGROUP" ;;\nesac\n`,
        { mode: 0o755 },
    );
    // journalctl: its arguments logged; JSON entries for `-o json`, the service's text lines otherwise.
    const entries = [
        { __REALTIME_TIMESTAMP: "1700000000000001", SYSLOG_IDENTIFIER: "amarktai-api", _PID: "42", PRIORITY: "6", MESSAGE: "startup complete" },
        { __REALTIME_TIMESTAMP: "1700000000000002", SYSLOG_IDENTIFIER: "amarktai-api", _PID: "42", PRIORITY: "3", MESSAGE: `settings: JWT_SECRET=${SECRET}` },
        { __REALTIME_TIMESTAMP: "1700000000000003", _COMM: "python", PRIORITY: "6", MESSAGE: [104, 105] },
    ];
    fs.writeFileSync(path.join(dir, "journal.json"), entries.map((e) => JSON.stringify(e)).join("\n") + "\n");
    fs.writeFileSync(
        path.join(dir, "journal.txt"),
        ["INFO: Shutting down", `RuntimeWarning: coroutine 'close' was never awaited (token ${SECRET})`, "INFO: Application startup complete.", "RuntimeWarning: coroutine 'stop' was never awaited"].join("\n") + "\n",
    );
    fs.writeFileSync(
        path.join(dir, "bin", "journalctl"),
        `#!/bin/bash\nprintf '%s\\n' "$@" > ${JSON.stringify(path.join(dir, "journalctl.args"))}\ncase "$*" in\n  *"-o json"*) cat ${JSON.stringify(path.join(dir, "journal.json"))} ;;\n  *) cat ${JSON.stringify(path.join(dir, "journal.txt"))} ;;\nesac\n`,
        { mode: 0o755 },
    );
    return {
        dir,
        service: (port) => ({
            serviceName: "amarktai-api", unitName: "amarktai-api.service", user: "amarktai", group: "amarktai",
            healthUrl: `http://127.0.0.1:${port}/health`, healthPort: port, healthTimeoutSec: 20,
            envLink: path.join(dir, ".env"), envStore: path.join(dir, "env"), venvPython: "/nonexistent/python", workingDirectory: dir, appModule: "server",
            releasesDir: path.join(dir, "releases"), auditLog: path.join(dir, "audit.log"), dependencies: { after: [], requires: [], wants: [] },
        }),
    };
}

/** Runs a script with the stubs first on PATH, without blocking this process (its HTTP server must answer). */
function runScript(dir: string, script: string, unitCgroup = "/nonexistent"): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
        const child = spawn("bash", ["-c", script], { env: { ...process.env, PATH: `${path.join(dir, "bin")}:${process.env.PATH}`, STUB_CGROUP: unitCgroup }, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
}

test("logs passes journalctl the operator's query as separate arguments and masks every .env value in the messages", async (t) => {
    const { dir, service } = scratch();
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const r = await runScript(dir, journalScript(service(8000), { lines: 5, since: "10 minutes ago; rm -rf /", until: "2026-12-06 10:00" }));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(fs.readFileSync(path.join(dir, "journalctl.args"), "utf8").trim().split("\n"), ["--no-pager", "-o", "json", "-u", "amarktai-api.service", "-n", "5", "--since=10 minutes ago; rm -rf /", "--until=2026-12-06 10:00"]);
    const records = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as JournalRecord);
    assert.deepEqual(records, [
        { realtimeUsec: 1700000000000001, identifier: "amarktai-api", pid: 42, priority: 6, message: "startup complete" },
        { realtimeUsec: 1700000000000002, identifier: "amarktai-api", pid: 42, priority: 3, message: "settings: JWT_SECRET=[secret JWT_SECRET]" },
        { realtimeUsec: 1700000000000003, identifier: "python", pid: null, priority: 6, message: "hi" },
    ]);
    assert.doesNotMatch(r.stdout, new RegExp(SECRET));
});

test("restart --loop restarts the unit each time, waits until it is healthy, and counts the notes' warnings in the journal, masked", async (t) => {
    assert.equal(process.getuid?.(), 0, "needs root: the stand-in service runs in a control group of its own, as a unit's would");
    const { dir, service } = scratch();
    // The stand-in service: an HTTP server answering /health, in a "unit" control group of its own.
    fs.writeFileSync(path.join(dir, "health"), "ok");
    const group = `/amarktai-test-restart-${process.pid}`;
    fs.mkdirSync(path.join(cgroupRoot(), group));
    const server = spawn("python3", ["-c", "import http.server, socketserver, sys\nh = http.server.SimpleHTTPRequestHandler\ns = socketserver.TCPServer(('127.0.0.1', 0), h)\nprint(s.server_address[1], flush=True)\ns.serve_forever()"], { cwd: dir, stdio: ["ignore", "pipe", "ignore"] });
    const exited = new Promise<void>((resolve) => server.once("exit", () => resolve()));
    t.after(async () => {
        server.kill("SIGKILL");
        await exited;
        fs.rmdirSync(path.join(cgroupRoot(), group));
        fs.rmSync(dir, { recursive: true, force: true });
    });
    const port = Number(await new Promise<string>((resolve) => server.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim()))));
    fs.writeFileSync(path.join(cgroupRoot(), group, "cgroup.procs"), `${server.pid}\n`);
    const r = await runScript(dir, restartScript(service(port), 3), group);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(fs.readFileSync(path.join(dir, "systemctl.log"), "utf8").split("\n").filter((l) => l === "restart amarktai-api.service").length, 3);
    assert.deepEqual(r.stdout.match(/restart \d of 3: healthy after [\d.]+ s/g)?.map((l) => l.slice(0, 12)), ["restart 1 of", "restart 2 of", "restart 3 of"]);
    const report = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as RestartReport;
    assert.equal(report.seconds.length, 3);
    assert.deepEqual(report.warnings, [{ pattern: "never awaited", count: 2, example: "RuntimeWarning: coroutine 'close' was never awaited (token [secret JWT_SECRET])" }]);
});

test("restart fails naming the restart that did not become healthy, with the journal's last lines", async (t) => {
    const { dir, service } = scratch();
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    // Nothing listens on the health port: the gate waits its timeout, then fails.
    const r = await runScript(dir, restartScript({ ...service(1), healthTimeoutSec: 2 }, 2));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /amarktai-api\.service did not become healthy after restart 1 of 2/);
    assert.match(r.stderr, /INFO: Shutting down/);
    assert.doesNotMatch(r.stderr, new RegExp(SECRET));
});

test("a restart count that is not a whole number of at least one is refused", () => {
    const { dir, service } = scratch();
    fs.rmSync(dir, { recursive: true, force: true });
    assert.throws(() => restartScript(service(8000), 0), /at least 1/);
    assert.throws(() => restartScript(service(8000), 1.5), /at least 1/);
});
