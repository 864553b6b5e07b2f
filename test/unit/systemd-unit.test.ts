import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { MANAGED_MARKER } from "../../components/model";
import { parseIniDirectives, renderSystemdFiles } from "../../components/systemd";
import { testConfig } from "../support/config";

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "..", "..", "..", "test", "fixtures", name), "utf8");

/**
 * The one deliberate difference from the notes: `EnvironmentFile=` names the
 * root-owned real file. The notes' path is in a directory the service can
 * write, and systemd reads `EnvironmentFile=` as root before dropping
 * privileges, so a link the service planted there would hand it root-only
 * files; the notes' path stays as a root-owned link to the real file.
 */
const NOTES_ENV_LINE = "EnvironmentFile=/var/amarktai/app/backend/.env";
const OUR_ENV_LINE = "EnvironmentFile=/etc/amarktai-infra/amarktai-api/env";
const notesUnit = () => {
    const text = fixture("notes-unit.service");
    assert.ok(text.includes(`${NOTES_ENV_LINE}\n`), "the notes' unit reads the .env at the notes' path");
    return text.replace(`${NOTES_ENV_LINE}\n`, `${OUR_ENV_LINE}\n`);
};

test("with default settings the unit equals the service notes' unit, directive for directive, but for the root-owned EnvironmentFile=", () => {
    const rendered = renderSystemdFiles(testConfig()).unit.text;
    assert.deepEqual(parseIniDirectives(rendered), parseIniDirectives(notesUnit()));
});

test("with default settings the unit text is the notes' text below the managed-file header, but for the root-owned EnvironmentFile=", () => {
    const rendered = renderSystemdFiles(testConfig()).unit.text;
    const [header, blank, ...rest] = rendered.split("\n");
    assert.equal(header, `# ${MANAGED_MARKER}`);
    assert.equal(blank, "");
    assert.equal(rest.join("\n"), notesUnit());
});

test("the unit lives at /etc/systemd/system/<service>.service", () => {
    const files = renderSystemdFiles(testConfig({ serviceName: "other-api" }));
    assert.equal(files.unit.path, "/etc/systemd/system/other-api.service");
    assert.equal(files.dropInDir, "/etc/systemd/system/other-api.service.d");
    assert.match(files.unit.text, /^SyslogIdentifier=other-api$/m);
});

test("Requires= and Wants= appear only when configured, and mongod.service can replace mongodb.service", () => {
    const plain = renderSystemdFiles(testConfig()).unit.text;
    assert.doesNotMatch(plain, /^(Requires|Wants)=/m);
    const text = renderSystemdFiles(testConfig({ dependencies: { after: ["network.target", "mongod.service"], requires: ["mongod.service"], wants: ["redis.service"] } })).unit.text;
    assert.match(text, /^After=network.target mongod.service$/m);
    assert.match(text, /^Requires=mongod.service$/m);
    assert.match(text, /^Wants=redis.service$/m);
});

test("bind address, port and log level flow into ExecStart", () => {
    const text = renderSystemdFiles(testConfig({ app: { bindHost: "0.0.0.0", port: 9000, logLevel: "warning" } })).unit.text;
    assert.match(text, /^ExecStart=\/var\/amarktai\/venv\/bin\/python -m uvicorn server:app --host 0.0.0.0 --port 9000 --log-level warning$/m);
});

test("Group= is written only when the group differs from the user", () => {
    assert.doesNotMatch(renderSystemdFiles(testConfig()).unit.text, /^Group=/m);
    assert.match(renderSystemdFiles(testConfig({ group: "svc" })).unit.text, /^User=amarktai\nGroup=svc$/m);
});

test("the strict profile keeps every directive of the notes and adds the sandbox", () => {
    const notes = parseIniDirectives(renderSystemdFiles(testConfig()).unit.text);
    const strict = parseIniDirectives(renderSystemdFiles(testConfig({ hardening: "strict" })).unit.text);
    for (const d of notes) {
        assert.ok(
            strict.some((s) => s.section === d.section && s.name === d.name && s.value === d.value),
            `strict lost ${d.section}/${d.name}=${d.value}`,
        );
    }
    const names = new Set(strict.map((d) => d.name));
    for (const extra of ["PrivateDevices", "ProtectKernelModules", "ProtectKernelLogs", "ProtectClock", "ProtectProc", "RestrictAddressFamilies", "SystemCallFilter", "CapabilityBoundingSet", "UMask"]) {
        assert.ok(names.has(extra), `strict lacks ${extra}`);
    }
});
