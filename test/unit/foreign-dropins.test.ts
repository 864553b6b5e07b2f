import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { activationScript, parseHostRead, readHostScript, unitDropInDir } from "../../components/host";
import { dropInSummaryFunction } from "../../components/host/dropin";
import { MANAGED_MARKER, dropInDirectiveLines, serviceStateDir, sha256 } from "../../components/model";
import { driftOf } from "../../components/pulumi/providers/service-activation";

const SECRET = "abc123secret";
/** A drop-in as `systemctl edit` leaves it, with a token in it. */
const OVERRIDE = `### Editing /etc/systemd/system/x.service.d/override.conf\n[Service]\nEnvironment=API_TOKEN=${SECRET}\nMemoryMax=50M\nExecStartPre=/usr/bin/curl -H 'Authorization: ${SECRET}' https://example.com\nRestart=always\nAfter=network.target\nAfter=db.service\n\n[Unit]\nDescription=token ${SECRET}\n`;

/** A fresh unit name, so the test's drop-in directory under /etc/systemd/system is its own. */
function uniqueService(prefix: string): string {
    return `${prefix}-${process.pid}-${Date.now()}`;
}

/** Writes `text` as `override.conf` of `service`'s unit; returns the path and a cleanup. */
/** Runs `summarise_dropin record` on a scratch file holding `text`; its output mentions the file as `shownAs`. */
function summaryRecord(text: string, shownAs: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dropin-"));
    const file = path.join(dir, "override.conf");
    fs.writeFileSync(file, text);
    const r = spawnSync("bash", ["-c", `${dropInSummaryFunction().join("\n")}\nsummarise_dropin record "$1"`, "bash", file], { encoding: "utf8" });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.replaceAll(file, shownAs);
}

function plantOverride(service: string, text: string): { file: string; cleanup: () => void } {
    const dir = unitDropInDir(`${service}.service`);
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, "override.conf");
    fs.writeFileSync(file, text);
    return { file, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

test("a foreign drop-in is summarised on the host: path, SHA-256 and directive names reach the read, its secret values never do", () => {
    assert.equal(process.getuid?.(), 0, "this test writes under /etc/systemd/system and must run as root");
    const service = uniqueService("foreign-read");
    const { file, cleanup } = plantOverride(service, OVERRIDE);
    try {
        const r = spawnSync("bash", ["-c", readHostScript({ serviceName: service, unitName: `${service}.service`, files: [], marker: MANAGED_MARKER })], { encoding: "utf8" });
        assert.equal(r.status, 0, r.stderr);
        assert.ok(!r.stdout.includes(SECRET), "the secret left the host");
        assert.ok(!r.stdout.includes(Buffer.from(OVERRIDE).toString("base64").slice(0, 40)), "the text left the host, base64-encoded");
        const read = parseHostRead(r.stdout);
        assert.ok(!JSON.stringify(read).includes(SECRET));
        assert.deepEqual(read.foreign[file], {
            kind: "file",
            sha256: sha256(OVERRIDE),
            sections: { Service: { Environment: null, MemoryMax: "50M", ExecStartPre: null, Restart: "always", After: "network.target db.service" }, Unit: { Description: null } },
            unparsedLines: 0,
        });
    } finally {
        cleanup();
    }
});

test("a changed value in a foreign drop-in is drift: the hash in the state's drift changes, the value does not appear", () => {
    const summarise = (text: string) => parseHostRead(summaryRecord(text, "/etc/systemd/system/amarktai-api.service.d/override.conf"));
    const props = {
        connection: { host: "h", port: 22, user: "u", hostKey: "k", privateKey: "p" },
        service: "amarktai-api",
        files: {},
        contentHashes: {},
        health: { url: "http://127.0.0.1:8000/health", timeoutSec: 60 },
        activatedAt: "t",
    };
    const before = driftOf(props, summarise(OVERRIDE)).foreignDropIns;
    const after = driftOf(props, summarise(OVERRIDE.replace(SECRET, "rotated-token"))).foreignDropIns;
    const key = "/etc/systemd/system/amarktai-api.service.d/override.conf";
    assert.deepEqual(before?.[key], { sha256: sha256(OVERRIDE), directives: ["[Service] Environment, MemoryMax=50M, ExecStartPre, Restart=always, After=network.target db.service", "[Unit] Description"] });
    assert.notDeepEqual(after?.[key], before?.[key], "a rotated token is drift");
    assert.ok(!JSON.stringify(before).includes(SECRET) && !JSON.stringify(after).includes("rotated-token"));
});

test("only allow-listed directives with plain values are shown with their value; credentials, command lines, unknown names and odd values are named only", () => {
    const text = [
        "[Service]",
        "EnvironmentFile=/root/secret.env",
        "LoadCredential=token:/root/token",
        "SetCredential=token:hunter2hunter2",
        "ExecStop=/bin/kill $MAINPID",
        "MyOwnSetting=hunter2hunter2",
        "CPUQuota=50%",
        "RestartSec=5 ; $(hunter2)",
        "TimeoutStopSec=\\",
        "  30s",
        "not a directive hunter2hunter2",
        "[Bad Section hunter2]",
        "MemoryHigh=1G",
        "[Journal]",
        "SystemMaxUse=200M",
    ].join("\n");
    const file = "/etc/systemd/system/x.service.d/x.conf";
    const stdout = summaryRecord(text, file);
    assert.ok(!stdout.includes("hunter2"));
    const found = parseHostRead(stdout).foreign[file];
    assert.deepEqual(found, {
        kind: "file",
        sha256: sha256(text),
        sections: {
            Service: { EnvironmentFile: null, LoadCredential: null, SetCredential: null, ExecStop: null, MyOwnSetting: null, CPUQuota: "50%", RestartSec: null, TimeoutStopSec: "30s" },
            Journal: { SystemMaxUse: "200M" },
        },
        unparsedLines: 3,
    });
});

test("a foreign drop-in that is a link is reported as one and never read", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dropin-"));
    const link = path.join(dir, "x.conf");
    fs.writeFileSync(path.join(dir, "target"), `[Service]\nEnvironment=T=${SECRET}\n`);
    fs.symlinkSync(path.join(dir, "target"), link);
    const r = spawnSync("bash", ["-c", `${dropInSummaryFunction().join("\n")}\nsummarise_dropin record "$1"; summarise_dropin text "$1"`, "bash", link], { encoding: "utf8" });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!r.stdout.includes(SECRET) && !r.stdout.includes("Environment"));
    assert.deepEqual(parseHostRead(r.stdout).foreign[link], { kind: "link" });
});

test("the activation refuses a foreign drop-in naming the file, its hash and directive names, never its text", () => {
    assert.equal(process.getuid?.(), 0, "this test writes under /etc/systemd/system and must run as root");
    const service = uniqueService("foreign-refuse");
    const { file, cleanup } = plantOverride(service, OVERRIDE);
    try {
        const script = activationScript({ serviceName: service, unitName: `${service}.service`, files: [], removed: [], marker: MANAGED_MARKER, links: [], account: { user: "root", group: "root" }, healthUrl: "http://127.0.0.1:1/", healthTimeoutSec: 1 });
        const r = spawnSync("bash", ["-c", script], { encoding: "utf8" });
        const out = r.stdout + r.stderr;
        assert.equal(r.status, 1, out);
        assert.ok(!out.includes(SECRET), `the refusal printed a secret:\n${out}`);
        assert.match(out, new RegExp(`unmanaged drop-in\\(s\\) ${file.replace(/[.]/g, "\\.")} would override`));
        const summary = parseHostRead(spawnSync("bash", ["-c", `${dropInSummaryFunction().join("\n")}\nsummarise_dropin record "$1"`, "bash", file], { encoding: "utf8" }).stdout).foreign[file];
        assert.ok(summary?.kind === "file");
        assert.ok(out.includes(`${file} (sha256 ${sha256(OVERRIDE)}): ${dropInDirectiveLines(summary).join("; ")}`), out);
        assert.match(out, /\[Service\] Environment, MemoryMax=50M, ExecStartPre, Restart=always/);
        assert.ok(fs.existsSync(file), "nothing was changed");
    } finally {
        cleanup();
        fs.rmSync(serviceStateDir(service), { recursive: true, force: true });
        fs.rmSync(`/run/amarktai-infra-${service}.lock`, { force: true });
    }
});
