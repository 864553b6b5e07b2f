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

/** The notes' own unit: uvicorn binds the port itself. */
const notesLayout = () => testConfig({ app: { socketActivation: false } });

test("with socket activation off the unit equals the service notes' unit, directive for directive, but for the root-owned EnvironmentFile=", () => {
    const rendered = renderSystemdFiles(notesLayout()).unit.text;
    assert.deepEqual(parseIniDirectives(rendered), parseIniDirectives(notesUnit()));
});

test("with socket activation off the unit text is the notes' text below the managed-file header, but for the root-owned EnvironmentFile=", () => {
    const rendered = renderSystemdFiles(notesLayout()).unit.text;
    const [header, blank, ...rest] = rendered.split("\n");
    assert.equal(header, `# ${MANAGED_MARKER}`);
    assert.equal(blank, "");
    assert.equal(rest.join("\n"), notesUnit());
});

test("with default settings (socket activation) the unit is the notes' text but for the socket: After= and Requires= it, uvicorn serves fd 3, and a reload is a graceful stop", () => {
    const rendered = renderSystemdFiles(testConfig()).unit.text;
    const expected = notesUnit()
        .replace("After=network.target mongodb.service\n", "After=network.target mongodb.service amarktai-api.socket\nRequires=amarktai-api.socket\n")
        .replace("--host 127.0.0.1 --port 8000 --log-level info\n", "--fd 3 --log-level info\nExecReload=/bin/kill -TERM $MAINPID\n");
    assert.notEqual(expected, notesUnit(), "the replacements found the notes' lines");
    assert.equal(rendered.split("\n").slice(2).join("\n"), expected);
});

test("the socket unit listens on the app's address and port, is wanted by sockets.target and carries the managed marker", () => {
    const files = renderSystemdFiles(testConfig({ app: { bindHost: "0.0.0.0", port: 9000 } }));
    assert.ok(files.socket, "a socket unit is rendered by default");
    assert.equal(files.socket.unitName, "amarktai-api.socket");
    assert.equal(files.socket.path, "/etc/systemd/system/amarktai-api.socket");
    assert.equal(files.socket.text.split("\n")[0], `# ${MANAGED_MARKER}`);
    const directives = parseIniDirectives(files.socket.text);
    assert.deepEqual(
        directives.filter((d) => d.section === "Socket").map((d) => `${d.name}=${d.value}`),
        ["ListenStream=0.0.0.0:9000", "NoDelay=true"],
    );
    assert.ok(directives.some((d) => d.section === "Install" && d.name === "WantedBy" && d.value === "sockets.target"));
    const v6 = renderSystemdFiles(testConfig({ app: { bindHost: "::1" } }));
    assert.match(v6.socket?.text ?? "", /^ListenStream=\[::1\]:8000$/m);
    assert.equal(renderSystemdFiles(notesLayout()).socket, undefined, "no socket unit without socket activation");
});

test("the unit lives at /etc/systemd/system/<service>.service", () => {
    const files = renderSystemdFiles(testConfig({ serviceName: "other-api" }));
    assert.equal(files.unit.path, "/etc/systemd/system/other-api.service");
    assert.equal(files.dropInDir, "/etc/systemd/system/other-api.service.d");
    assert.match(files.unit.text, /^SyslogIdentifier=other-api$/m);
});

test("Requires= and Wants= appear only when configured, and mongod.service can replace mongodb.service", () => {
    const plain = renderSystemdFiles(notesLayout()).unit.text;
    assert.doesNotMatch(plain, /^(Requires|Wants)=/m);
    const dependencies = { after: ["network.target", "mongod.service"], requires: ["mongod.service"], wants: ["redis.service"] };
    const text = renderSystemdFiles(testConfig({ app: { socketActivation: false }, dependencies })).unit.text;
    assert.match(text, /^After=network.target mongod.service$/m);
    assert.match(text, /^Requires=mongod.service$/m);
    assert.match(text, /^Wants=redis.service$/m);
    const socketActivated = renderSystemdFiles(testConfig({ dependencies })).unit.text;
    assert.match(socketActivated, /^After=network.target mongod.service amarktai-api.socket$/m);
    assert.match(socketActivated, /^Requires=mongod.service amarktai-api.socket$/m);
});

test("bind address, port and log level flow into ExecStart when uvicorn binds the port itself", () => {
    const text = renderSystemdFiles(testConfig({ app: { socketActivation: false, bindHost: "0.0.0.0", port: 9000, logLevel: "warning" } })).unit.text;
    assert.match(text, /^ExecStart=\/var\/amarktai\/venv\/bin\/python -m uvicorn server:app --host 0.0.0.0 --port 9000 --log-level warning$/m);
    assert.doesNotMatch(text, /^ExecReload=/m);
});

test("with socket activation uvicorn serves the socket's fd 3 and never binds the address itself", () => {
    const text = renderSystemdFiles(testConfig({ app: { bindHost: "0.0.0.0", port: 9000, logLevel: "warning" } })).unit.text;
    assert.match(text, /^ExecStart=\/var\/amarktai\/venv\/bin\/python -m uvicorn server:app --fd 3 --log-level warning$/m);
    assert.doesNotMatch(text, /--host|--port/);
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
