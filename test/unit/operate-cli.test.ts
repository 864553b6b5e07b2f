/**
 * The operator command's pure parts: its command line (bad input named
 * before any host is contacted), the stack's config as the CLI prints it,
 * host selection, and how reports are printed.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { HelpRequested, USAGE, UsageError, parseOperatorArgs } from "../../components/operate/args";
import { formatDoctor, formatJournalRecord, formatRestart, formatStatus, journalTime, mergeJournals, statusSummary } from "../../components/operate/format";
import { operatedHosts, rawConfigOf, selectHosts } from "../../components/operate/stack";
import { HostStatus } from "../../components/host";
import { loadConfig } from "../../components/config";

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJrLw0/yHgIQgd1mOq03l/DYoJq/TmjmAsaEpj7CY3VG";

test("flags are taken anywhere, with their values, and logs gets journalctl's defaults", () => {
    const a = parseOperatorArgs(["--since", "10 minutes ago", "logs", "-s", "prod", "--host", "web-1", "--host=web-2", "-o", "json"]);
    assert.equal(a.command, "logs");
    assert.equal(a.stack, "prod");
    assert.deepEqual(a.hosts, ["web-1", "web-2"]);
    assert.equal(a.since, "10 minutes ago");
    assert.equal(a.lines, undefined, "--since alone reads the whole range");
    assert.equal(a.json, true);
    assert.equal(parseOperatorArgs(["logs"]).lines, 50);
    assert.equal(parseOperatorArgs(["logs", "-f"]).lines, 10);
    assert.equal(parseOperatorArgs(["logs", "-n", "0", "-f"]).lines, 0);
    assert.equal(parseOperatorArgs(["restart", "--loop", "10"]).loop, 10);
    assert.equal(parseOperatorArgs(["status"]).connectTimeoutSec, 30);
});

test("bad input is refused naming the flag and what it takes", () => {
    const refused = (argv: string[], message: RegExp) => assert.throws(() => parseOperatorArgs(argv), (e: unknown) => e instanceof UsageError && message.test(e.message));
    refused([], /a command is needed: status, logs, restart, doctor/);
    refused(["stats"], /unknown command 'stats'; the commands are status, logs, restart, doctor/);
    refused(["logs", "-n", "ten"], /-n\/--lines: must be a whole number from 0 to 1000000, not 'ten'/);
    refused(["restart", "--loop", "0"], /--loop: must be a whole number from 1 to 100/);
    refused(["status", "--loop", "3"], /--loop: only for restart, not status/);
    refused(["status", "-f"], /-f\/--follow: only for logs, not status/);
    refused(["logs", "-o", "yaml"], /-o\/--output-format: must be short or json, not 'yaml'/);
    refused(["logs", "-f", "--until", "now"], /--until: cannot be combined with -f\/--follow/);
    refused(["logs", "--since", "yesterday\nrm -rf /"], /--since: must be a time/);
    refused(["logs", "--bogus"], /unknown flag --bogus/);
    refused(["status", "--host"], /--host: needs a value/);
    refused(["status", "-s", "a", "--stack", "b"], /-s\/--stack: given more than once/);
    refused(["status", "extra"], /unexpected argument 'extra'/);
    assert.throws(() => parseOperatorArgs(["logs", "--help"]), (e: unknown) => e instanceof HelpRequested && e.message === USAGE, "--help asks for the usage, which is not an error");
});

test("the stack's config is read as the program reads it, secrets included, and hosts are picked by name or address", () => {
    const json = JSON.stringify({
        "amarktai-infra:hosts": { value: JSON.stringify([{ name: "web-1", address: "10.0.0.5", hostKey: HOST_KEY }, { address: "10.0.0.6", port: 2222, user: "root", hostKey: HOST_KEY.replace("AAAAIJ", "AAAAIK") }]), objectValue: [], secret: false },
        "amarktai-infra:sshPrivateKey": { value: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----", secret: true },
        "amarktai-infra:serviceName": { value: "amarktai-api", secret: false },
        "other:key": { value: "ignored", secret: false },
    });
    const raw = rawConfigOf(json, "amarktai-infra");
    assert.deepEqual(Object.keys(raw).sort(), ["hosts", "serviceName", "sshPrivateKey"]);
    const { config, secrets } = loadConfig(raw, "amarktai-infra");
    const hosts = operatedHosts(config, secrets, 30);
    assert.deepEqual(hosts.map((h) => [h.name, h.connection.host, h.connection.port, h.connection.user, h.connection.waits?.connectSec]), [["web-1", "10.0.0.5", 22, "ubuntu", 30], ["10.0.0.6", "10.0.0.6", 2222, "root", 30]]);
    assert.equal(hosts[0]!.connection.hostKey, HOST_KEY);
    assert.deepEqual(selectHosts(hosts, ["10.0.0.6"]).map((h) => h.name), ["10.0.0.6"]);
    assert.deepEqual(selectHosts(hosts, []).map((h) => h.name), ["web-1", "10.0.0.6"]);
    assert.throws(() => selectHosts(hosts, ["web-9"]), /--host web-9: not a host of this stack; its hosts are web-1, 10\.0\.0\.6/);
});

const STATUS: HostStatus = {
    load: "loaded", active: "active", sub: "running", enabled: "enabled", failed: false, mainPid: 1234, uptimeSec: 7385, restarts: 0, memoryBytes: 50_593_792, cpuSec: 3.14,
    release: "0123456789abcdef", lastActivation: { time: "2026-12-06T21:54:12Z", outcome: "healthy", release: "0123456789abcdef", owner: "p/s/r" }, healthy: true, listener: { state: "unit", detail: "" },
};

test("status prints one row per host, names what is wrong, and ends with the fleet's summary", () => {
    const text = formatStatus("amarktai-api.service", [
        { host: "web-1", ok: true, value: STATUS },
        { host: "web-2", ok: true, value: { ...STATUS, healthy: true, listener: { state: "other", detail: "pid 77 (python -m http.server 8000) in /user.slice" } } },
        { host: "web-3", ok: false, error: "cannot reach root@10.0.0.7:22: connection refused\nmore" },
    ]);
    assert.match(text, /^web-1 +active\/running +enabled +1234 +2h 03m +0 +48\.3 MiB +3\.1s +0123456789abcdef +2026-12-06T21:54:12Z \(healthy\) +healthy$/m);
    assert.match(text, /^web-2 .* answers, NOT the unit's$/m);
    assert.match(text, /^web-2: pid 77 \(python -m http\.server 8000\) in \/user\.slice$/m);
    assert.match(text, /^web-3 +unreachable/m);
    assert.match(text, /^web-3: cannot reach root@10\.0\.0\.7:22: connection refused$/m);
    assert.match(text, /3 hosts: 1 healthy, 1 unhealthy, 1 unreachable\n$/);
    assert.equal(statusSummary([{ host: "a", ok: true, value: { ...STATUS, failed: true } }]), "1 host: 0 healthy, 1 unhealthy, 0 unreachable");
});

test("journal lines from every host merge into one timeline, host first, microseconds kept", () => {
    const r = (usec: number, message: string) => ({ realtimeUsec: usec, identifier: "amarktai-api", pid: 42, priority: 6, message });
    const merged = mergeJournals([
        { host: "b", records: [r(1_700_000_000_000_002, "b1"), r(1_700_000_000_000_005, "b2")] },
        { host: "a", records: [r(1_700_000_000_000_001, "a1"), r(1_700_000_000_000_005, "a2")] },
    ]);
    assert.deepEqual(merged.map((m) => m.record.message), ["a1", "b1", "a2", "b2"]);
    assert.equal(journalTime(1_700_000_000_000_002), "2023-11-14T22:13:20.000002Z");
    assert.equal(formatJournalRecord("web-1", r(1_700_000_000_123_456, "startup complete"), false), "web-1 2023-11-14T22:13:20.123456Z amarktai-api[42]: startup complete");
    assert.deepEqual(JSON.parse(formatJournalRecord("web-1", r(1_700_000_000_123_456, "x"), true)), { host: "web-1", time: "2023-11-14T22:13:20.123456Z", realtimeUsec: 1_700_000_000_123_456, identifier: "amarktai-api", pid: 42, priority: 6, message: "x" });
});

test("restart and doctor reports read as one line per host and one line per check", () => {
    assert.equal(formatRestart("web-1", { seconds: [3.04], warnings: [] }), "web-1: restarted, healthy after 3.0 s; no warnings from the notes' list in the journal");
    assert.equal(
        formatRestart("web-1", { seconds: [3, 4.5], warnings: [{ pattern: "never awaited", count: 2, example: "RuntimeWarning: coroutine 'x' was never awaited" }] }),
        "web-1: 2 restarts, healthy after each (3.0 s, 4.5 s); journal warnings: \"never awaited\" ×2 (e.g. RuntimeWarning: coroutine 'x' was never awaited)",
    );
    assert.equal(formatDoctor("web-1", [{ check: "unit", ok: true, detail: "active" }, { check: "port", ok: false, detail: "held by pid 7" }], "won't start: port"), "web-1: won't start: port\n  ok    unit  active\n  FAIL  port  held by pid 7\n");
});
