import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseHostRead, readHostScript } from "../../components/host";
import { MANAGED_MARKER, sha256 } from "../../components/model";
import { driftOf } from "../../components/pulumi/providers/service-activation";
import { driftedView } from "../../components/pulumi/providers/host-file";
import { prepareDriftOf } from "../../components/pulumi/providers/host-prepare";
import { releaseDriftOf } from "../../components/pulumi/providers/app-release";

const spec = (files: { path: string; secret: boolean }[]) => readHostScript({ serviceName: "amarktai-api", unitName: "amarktai-api.service", files, marker: MANAGED_MARKER });

test("the read script parses with bash -n and passes shellcheck", () => {
    const script = spec([{ path: "/etc/systemd/system/amarktai-api.service", secret: false }, { path: "/etc/amarktai-infra/amarktai-api/env", secret: true }]);
    assert.equal(spawnSync("bash", ["-n"], { input: script }).status, 0);
    const checked = spawnSync("shellcheck", ["--shell=bash", "--severity=warning", "-"], { input: script, encoding: "utf8" });
    assert.equal(checked.status, 0, checked.stdout);
});

test("the read script reports each file's hash, mode and owner, the text of plain files, key names and line hashes of secret ones, absence, and never follows a link", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "host-read-"));
    const unit = path.join(dir, "unit.service");
    const env = path.join(dir, ".env");
    const link = path.join(dir, "server.py");
    const missing = path.join(dir, "gone.conf");
    const unitText = `# ${MANAGED_MARKER}\n[Service]\nRestartSec=30\n`;
    fs.writeFileSync(unit, unitText, { mode: 0o644 });
    fs.writeFileSync(env, "API_KEY=sk-very-secret\nFLAG=true\n", { mode: 0o640 });
    fs.chmodSync(env, 0o640);
    fs.symlinkSync("/etc/shadow", link);
    const r = spawnSync("bash", ["-c", spec([{ path: unit, secret: false }, { path: env, secret: true }, { path: link, secret: false }, { path: missing, secret: false }])], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!r.stdout.includes("sk-very-secret") && !r.stdout.includes(Buffer.from("sk-very-secret").toString("base64").slice(0, 12)), "no secret value leaves the host");
    const read = parseHostRead(r.stdout);
    const u = read.files[unit]!;
    assert.equal(u.state, "present");
    assert.ok(u.state === "present" && u.sha256 === sha256(unitText) && u.mode === "0644" && u.text === unitText);
    const e = read.files[env]!;
    assert.ok(e.state === "present" && e.mode === "0640" && e.text === undefined);
    assert.deepEqual(e.state === "present" && e.keyHashes, { API_KEY: sha256("API_KEY=sk-very-secret"), FLAG: sha256("FLAG=true") });
    assert.equal(read.files[link]!.state, "link");
    assert.equal(read.files[missing]!.state, "absent");
    fs.rmSync(dir, { recursive: true, force: true });
});

/** A read that asked for no account, directory or release. */
const NOTHING_ELSE = { account: { users: {}, groups: {} }, dirs: {}, releases: {} };

const activation = {
    connection: { host: "h", port: 22, user: "u", hostKey: "k", privateKey: "p" },
    service: "amarktai-api",
    files: {
        "/etc/systemd/system/amarktai-api.service": { mode: "0644", owner: "root", group: "root", effect: "systemd" as const },
        "/etc/amarktai-infra/amarktai-api/env": { mode: "0640", owner: "root", group: "amarktai", effect: "restart" as const },
    },
    contentHashes: { "/etc/systemd/system/amarktai-api.service": sha256("unit\n").slice(0, 16), "/etc/amarktai-infra/amarktai-api/env": sha256("A=1\n").slice(0, 16) },
    links: { "/var/amarktai/app/backend/.env": "/etc/amarktai-infra/amarktai-api/env" },
    health: { url: "http://127.0.0.1:8000/health", timeoutSec: 60 },
    activatedAt: "t",
};

test("drift: a hand-edited unit, a world-readable .env, a removed .env link, a disabled and stopped unit and a foreign drop-in are each named", () => {
    const drift = driftOf(activation, {
        files: {
            "/etc/systemd/system/amarktai-api.service": { state: "present", sha256: sha256("edited\n"), mode: "0644", owner: "root", group: "root" },
            "/etc/amarktai-infra/amarktai-api/env": { state: "present", sha256: sha256("A=1\n"), mode: "0644", owner: "root", group: "amarktai" },
        },
        foreign: {
            "/etc/systemd/system/amarktai-api.service.d/override.conf": { kind: "file", sha256: sha256("[Service]\nMemoryMax=50M\n"), sections: { Service: { MemoryMax: "50M" } }, unparsedLines: 0 },
            "/etc/systemd/journald.conf.d/90-admin.conf": { kind: "file", sha256: sha256("x"), sections: {}, unparsedLines: 1 },
        },
        links: { "/var/amarktai/app/backend/.env": "" },
        unit: { enabled: "disabled", active: "inactive" },
        ...NOTHING_ELSE,
    });
    assert.deepEqual(drift, {
        files: {
            "/etc/systemd/system/amarktai-api.service": "content differs",
            "/etc/amarktai-infra/amarktai-api/env": "mode 0644 (wants 0640)",
            "/var/amarktai/app/backend/.env": "not a root-owned link to /etc/amarktai-infra/amarktai-api/env",
        },
        unit: "disabled, inactive",
        foreignDropIns: { "/etc/systemd/system/amarktai-api.service.d/override.conf": { sha256: sha256("[Service]\nMemoryMax=50M\n"), directives: ["[Service] MemoryMax=50M"] } },
        foreignDropInsAction: "up refuses to activate until they are removed or adopted as overrides (foreignDropIns: refuse)",
    });
});

test("no drift when the host matches the last activation", () => {
    const drift = driftOf(activation, {
        files: {
            "/etc/systemd/system/amarktai-api.service": { state: "present", sha256: sha256("unit\n"), mode: "0644", owner: "root", group: "root" },
            "/etc/amarktai-infra/amarktai-api/env": { state: "absent" },
        },
        foreign: {},
        links: { "/var/amarktai/app/backend/.env": "/etc/amarktai-infra/amarktai-api/env" },
        unit: { enabled: "enabled", active: "active" },
        ...NOTHING_ELSE,
    });
    assert.deepEqual(drift, { files: { "/etc/amarktai-infra/amarktai-api/env": "absent on the host" } });
    assert.deepEqual(driftOf(activation, { files: {}, foreign: {}, links: {}, unit: { enabled: "enabled", active: "active" }, ...NOTHING_ELSE }), {});
});

test("drift: a socket-activated service whose socket unit was stopped and disabled by hand is named; a running unit alone does not hide it", () => {
    const socketActivated = { ...activation, files: { ...activation.files, "/etc/systemd/system/amarktai-api.socket": { mode: "0644", owner: "root", group: "root", effect: "systemd" as const } } };
    const host = { files: {}, foreign: {}, links: {}, unit: { enabled: "enabled", active: "active" }, ...NOTHING_ELSE };
    assert.deepEqual(driftOf(socketActivated, { ...host, socket: { enabled: "disabled", active: "inactive" } }), { unit: "amarktai-api.socket: disabled, inactive" });
    assert.deepEqual(driftOf(socketActivated, { ...host, socket: { enabled: "enabled", active: "active" } }), {});
    assert.deepEqual(driftOf(activation, { ...host, socket: { enabled: "disabled", active: "inactive" } }), {}, "without socket activation a socket unit's state is not the service's business");
});

test("the read script reports the socket unit's state only where its file exists", () => {
    const script = spec([]);
    assert.match(script, /SOCKET_UNIT="\$\{UNIT%\.service\}\.socket"/);
    assert.deepEqual(parseHostRead("unit\tenabled\tactive\nsocket\tdisabled\tinactive\n").socket, { enabled: "disabled", active: "inactive" });
    assert.equal(parseHostRead("unit\tenabled\tactive\n").socket, undefined);
});

test("a drifted .env is shown by which keys differ, never by value", () => {
    const view = "FLAG=true\nAPI_KEY=[secret 0123456789ab]\nGONE=[secret 0123456789ab]";
    const wanted = { FLAG: sha256("FLAG=true"), API_KEY: sha256("API_KEY=new"), GONE: sha256("GONE=x") };
    const shown = driftedView(view, wanted, { state: "present", sha256: "x", mode: "0640", owner: "root", group: "amarktai", keyHashes: { FLAG: sha256("FLAG=true"), API_KEY: sha256("API_KEY=old"), EXTRA: sha256("EXTRA=1") } });
    assert.equal(shown, "FLAG=true\nAPI_KEY=[differs on the host]\nGONE=[missing on the host]\nEXTRA=[on the host only]");
    assert.match(driftedView(view, wanted, { state: "absent" }), /absent on the host/);
});

test("the read script reports the account, each directory's owner and mode (never following a link), and each release's health", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "host-read-"));
    const kept = path.join(dir, "logs");
    const linked = path.join(dir, "app");
    const gone = path.join(dir, "gone");
    fs.mkdirSync(kept, { mode: 0o750 });
    fs.chmodSync(kept, 0o750);
    fs.symlinkSync("/etc", linked);
    const releases = path.join(dir, "releases");
    const release = (id: string, complete: boolean, python: boolean, installed?: string, actual: string[] = []) => {
        const r = path.join(releases, id);
        fs.mkdirSync(path.join(r, "venv", "bin"), { recursive: true });
        if (python) fs.symlinkSync(process.execPath, path.join(r, "venv", "bin", "python"));
        for (const d of actual) fs.mkdirSync(path.join(r, "venv", "lib", "python3.13", "site-packages", d), { recursive: true });
        if (installed !== undefined) fs.writeFileSync(path.join(r, ".installed"), installed);
        if (complete) fs.writeFileSync(path.join(r, ".complete"), `${id}\n`);
    };
    release("aaaaaaaaaaaaaaaa", true, true, "six-1.17.0.dist-info\nuvicorn-0.38.0.dist-info\n", ["uvicorn-0.38.0.dist-info", "six-1.17.0.dist-info"]);
    release("bbbbbbbbbbbbbbbb", true, true, "uvicorn-0.38.0.dist-info\n", ["uvicorn-0.38.0.dist-info", "evil-1.0.dist-info"]);
    release("cccccccccccccccc", true, false);
    release("dddddddddddddddd", false, true);
    const script = readHostScript({
        serviceName: "amarktai-api",
        unitName: "amarktai-api.service",
        files: [],
        marker: MANAGED_MARKER,
        account: { user: "root", group: "no-such-group-here" },
        directories: [kept, linked, gone],
        releases: ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc", "dddddddddddddddd", "eeeeeeeeeeeeeeee"].map((id) => ({ releasesDir: releases, id })),
    });
    const checked = spawnSync("shellcheck", ["--shell=bash", "--severity=warning", "-"], { input: script, encoding: "utf8" });
    assert.equal(checked.status, 0, checked.stdout);
    const r = spawnSync("bash", ["-c", script], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const read = parseHostRead(r.stdout);
    assert.deepEqual(read.account, { users: { root: true }, groups: { "no-such-group-here": false } });
    const owner = os.userInfo().username;
    const group = spawnSync("id", ["-gn"], { encoding: "utf8" }).stdout.trim();
    assert.deepEqual(read.dirs, { [kept]: { state: "present", mode: "0750", owner, group }, [linked]: { state: "link" }, [gone]: { state: "absent" } });
    const at = (id: string) => read.releases[path.join(releases, id)];
    assert.equal(process.getuid?.(), 0, "needs root: a release is read only when root owns it");
    assert.deepEqual(at("aaaaaaaaaaaaaaaa"), { state: "ok" });
    assert.deepEqual(at("bbbbbbbbbbbbbbbb"), { state: "packages", changes: "+evil-1.0.dist-info" });
    assert.deepEqual(at("cccccccccccccccc"), { state: "no-python" });
    assert.deepEqual(at("dddddddddddddddd"), { state: "incomplete" });
    assert.deepEqual(at("eeeeeeeeeeeeeeee"), { state: "absent" });
    fs.rmSync(dir, { recursive: true, force: true });
});

test("drift of the preparation: a missing user, a re-owned or re-moded directory and a removed one are each named; a matching host is no drift", () => {
    const spec = {
        serviceName: "amarktai-api",
        allowExistingUser: false,
        user: "amarktai",
        group: "amarktai",
        directories: [
            { key: "paths.app", path: "/var/amarktai/app", owner: "root", group: "root", mode: "0755" },
            { key: "paths.logs", path: "/var/amarktai/logs", owner: "amarktai", group: "amarktai", mode: "0750" },
            { key: "paths.releases", path: "/var/amarktai/releases", owner: "root", group: "root", mode: "0755" },
        ],
    };
    const base = { files: {}, foreign: {}, links: {}, unit: { enabled: "enabled", active: "active" }, releases: {} };
    assert.deepEqual(
        prepareDriftOf(spec, {
            ...base,
            account: { users: { amarktai: false }, groups: { amarktai: true } },
            dirs: {
                "/var/amarktai/app": { state: "present", mode: "0755", owner: "root", group: "root" },
                "/var/amarktai/logs": { state: "present", mode: "0777", owner: "root", group: "root" },
                "/var/amarktai/releases": { state: "absent" },
            },
        }),
        {
            account: { "user amarktai": "missing on the host" },
            directories: { "/var/amarktai/logs": "owner root:root (wants amarktai:amarktai), mode 0777 (wants 0750)", "/var/amarktai/releases": "missing on the host" },
        },
    );
    assert.deepEqual(
        prepareDriftOf(spec, {
            ...base,
            account: { users: { amarktai: true }, groups: { amarktai: true } },
            dirs: Object.fromEntries(spec.directories.map((d) => [d.path, { state: "present" as const, mode: d.mode, owner: d.owner, group: d.group }])),
        }),
        {},
    );
});

test("drift of a release says what broke and that the next up builds it again; a sound release is no drift", () => {
    assert.equal(releaseDriftOf({ state: "ok" }), "");
    assert.equal(releaseDriftOf(undefined), "");
    assert.match(releaseDriftOf({ state: "absent" }), /not on the host/);
    assert.match(releaseDriftOf({ state: "no-python" }), /python is gone/);
    assert.match(releaseDriftOf({ state: "packages", changes: "+evil-1.0.dist-info" }), /packages changed since it was built \(\+evil-1\.0\.dist-info\): the next up builds it again/);
});
