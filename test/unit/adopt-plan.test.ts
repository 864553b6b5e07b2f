import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { AdoptionSurvey, MANAGED_MARKER, serviceStateDir, sha256 } from "../../components/model";
import { adoptionPlanInput, lineDiff, maskEnvironmentValues, planAdoption, planService } from "../../components/plan";
import { testConfig } from "../support/config";

const NOTES_UNIT = fs.readFileSync(path.join(__dirname, "..", "..", "..", "test", "fixtures", "notes-unit.service"), "utf8");
const OVERRIDE_CONF = "/etc/systemd/system/amarktai-api.service.d/override.conf";
const MEMORY = { overrides: { memory: { memoryMax: "2G", memoryHigh: "1.5G" } } };

/** What the survey finds on a host installed by hand exactly as the service notes say. */
function notesSurvey(changes: Partial<AdoptionSurvey> = {}, unitText = NOTES_UNIT): AdoptionSurvey {
    return {
        unit: { state: "hand-made", path: "/etc/systemd/system/amarktai-api.service", sha256: sha256(unitText), owner: "root", group: "root", mode: "0644", text: unitText, active: true, mainPid: 4321 },
        socketUnit: { state: "absent" },
        dropIns: [{ path: OVERRIDE_CONF, kind: "file", sha256: "1".repeat(64), sections: { Service: { MemoryMax: "2G", MemoryHigh: "1.5G" } }, unparsedLines: 0 }],
        otherDropIns: [],
        user: { uid: 998, gid: 998, primaryGroup: "amarktai" },
        group: { gid: 998 },
        dirs: [
            { key: "paths.app", path: "/var/amarktai/app", state: "present", owner: "amarktai", group: "amarktai", mode: "0755" },
            { key: "paths.workingDirectory", path: "/var/amarktai/app/backend", state: "present", owner: "amarktai", group: "amarktai", mode: "0755" },
            { key: "paths.logs", path: "/var/amarktai/logs", state: "present", owner: "root", group: "root", mode: "0755" },
            { key: "paths.releases", path: "/var/amarktai/releases", state: "absent" },
            { key: "paths.venv", path: "/var/amarktai/venv", state: "present", owner: "amarktai", group: "amarktai", mode: "0755" },
        ],
        envFile: { path: "/var/amarktai/app/backend/.env", state: "present", owner: "amarktai", group: "amarktai", mode: "0600", sha256: "2".repeat(64), keys: ["JWT_SECRET", "MONGO_URL", "FEATURE_X"] },
        recorded: false,
        handover: { available: true },
        ...changes,
    };
}

/** The adoption plan of `survey` against the config `raw` (defaults plus these keys), rendered by the project's own plan. */
function planFor(survey: AdoptionSurvey, raw: Record<string, unknown> = MEMORY, secretEnvKeys: readonly string[] = []) {
    const config = testConfig(raw);
    return planAdoption(adoptionPlanInput(config, planService(config), survey, secretEnvKeys));
}

test("a notes host is adopted: the report diffs the hand-made unit against the managed one, uvicorn's own port against the socket's fd 3", () => {
    const plan = planFor(notesSurvey());
    assert.equal(plan.state, "adopt");
    assert.deepEqual(plan.refusals, []);
    assert.ok(plan.report.includes("- ExecStart=/var/amarktai/venv/bin/python -m uvicorn server:app --host 127.0.0.1 --port 8000 --log-level info"), plan.report.join("\n"));
    assert.ok(plan.report.includes("+ ExecStart=/var/amarktai/venv/bin/python -m uvicorn server:app --fd 3 --log-level info"), plan.report.join("\n"));
    assert.ok(plan.report.includes("+ Requires=amarktai-api.socket"));
    assert.ok(plan.report.includes("  User=amarktai"), "unchanged lines are context");
    assert.match(plan.report[0]!, new RegExp(`^unit /etc/systemd/system/amarktai-api\\.service \\(hand-made, root:root 0644, sha256 ${sha256(NOTES_UNIT)}, active, main pid 4321\\)`));
});

test("the takeover of a notes host backs up the unit, override.conf and the .env, and adopts the account and the existing directories", () => {
    const plan = planFor(notesSurvey());
    assert.deepEqual(plan.take, {
        unit: { path: "/etc/systemd/system/amarktai-api.service", sha256: sha256(NOTES_UNIT) },
        dropIns: [{ path: OVERRIDE_CONF, sha256: "1".repeat(64) }],
        envFile: { path: "/var/amarktai/app/backend/.env", sha256: "2".repeat(64) },
        user: "amarktai",
        group: "amarktai",
        dirs: ["/var/amarktai/app", "/var/amarktai/app/backend", "/var/amarktai/logs"],
    });
});

test("override.conf is converted when the config has its MemoryMax and MemoryHigh as an override", () => {
    const plan = planFor(notesSurvey());
    const at = plan.report.indexOf(`drop-in ${OVERRIDE_CONF} (sha256 111111111111)`);
    assert.notEqual(at, -1, plan.report.join("\n"));
    assert.deepEqual(plan.report.slice(at + 1, at + 3), ["  [Service] MemoryMax=2G, MemoryHigh=1.5G", "  converted: its settings are in the config; backed up and removed"]);
});

test("override.conf is refused when the config does not have its settings, naming them and the override keys to put them in", () => {
    const plan = planFor(notesSurvey(), {});
    assert.equal(plan.refusals.length, 1);
    assert.match(plan.refusals[0]!, /override\.conf sets \[Service\] MemoryMax=2G and \[Service\] MemoryHigh=1\.5G, which the config does not/);
    assert.match(plan.refusals[0]!, /overrides\.<name>\.memoryMax, overrides\.<name>\.memoryHigh\) or set foreignDropIns: remove/);
    assert.deepEqual(plan.take.dropIns, []);
});

test("a drop-in with a different value is not converted", () => {
    const plan = planFor(notesSurvey(), { overrides: { memory: { memoryMax: "3G", memoryHigh: "1.5G" } } });
    assert.equal(plan.refusals.length, 1);
    assert.match(plan.refusals[0]!, /sets \[Service\] MemoryMax=2G, which the config does not/);
});

test("with foreignDropIns: remove an unconverted drop-in is backed up and removed, and the report names what is lost", () => {
    const plan = planFor(notesSurvey(), { foreignDropIns: "remove" });
    assert.deepEqual(plan.refusals, []);
    assert.ok(plan.report.includes("  not converted: the config does not have [Service] MemoryMax=2G and [Service] MemoryHigh=1.5G; backed up and removed (foreignDropIns: remove)"), plan.report.join("\n"));
    assert.deepEqual(plan.take.dropIns, [{ path: OVERRIDE_CONF, sha256: "1".repeat(64) }]);
});

test("a drop-in whose values are not shown (Environment=) is never converted", () => {
    const survey = notesSurvey({ dropIns: [{ path: OVERRIDE_CONF, kind: "file", sha256: "3".repeat(64), sections: { Service: { Environment: null } }, unparsedLines: 0 }] });
    const plan = planFor(survey, { overrides: { env: { environment: { TOKEN: "x" } } } });
    assert.equal(plan.refusals.length, 1);
    assert.match(plan.refusals[0]!, /sets \[Service\] Environment \(value not shown\), which the config does not: put them in the config \(overrides\.<name>\.environment/);
});

test("no secret value reaches the report: every Environment= value of both units is hidden, the names kept", () => {
    const unit = NOTES_UNIT.replace('Environment="PATH=/var/amarktai/venv/bin"\n', 'Environment="PATH=/var/amarktai/venv/bin"\nEnvironment=API_TOKEN=s3cr3t-token "DB_URL=mongodb://u:pa55@db/x" \'Q=zq9 w7\'\n');
    const plan = planFor(notesSurvey({ unit: { ...(notesSurvey().unit as Extract<AdoptionSurvey["unit"], { state: "hand-made" }>), text: unit, sha256: sha256(unit) } }));
    const text = plan.report.join("\n");
    for (const secret of ["s3cr3t-token", "pa55", "zq9", "w7", "/var/amarktai/venv/bin\""]) assert.ok(!text.includes(secret), `the report shows ${secret}`);
    assert.ok(plan.report.includes(`- Environment=API_TOKEN=[hidden] "DB_URL=[hidden]" 'Q=[hidden]'`), text);
    assert.ok(plan.report.includes('  Environment="PATH=[hidden]"'), "the same assignment on both sides is context");
});

test("masking hides the value of a continued Environment= line and leaves every other line as it is", () => {
    assert.equal(maskEnvironmentValues("Environment=A=1 \\\n  B=2\nExecStart=/bin/x --token y\n"), "Environment=A=[hidden] \\\n[hidden]\nExecStart=/bin/x --token y\n");
    assert.equal(maskEnvironmentValues("Environment = A=\"x y\" =z\n"), "Environment = A=[hidden] [hidden]\n");
});

test("the line diff keeps common lines as context and puts removals before additions", () => {
    assert.deepEqual(lineDiff(["a", "b", "c"], ["a", "x", "c", "d"]), ["  a", "- b", "+ x", "  c", "+ d"]);
    assert.deepEqual(lineDiff([], ["a"]), ["+ a"]);
});

test("the .env is listed by key: kept as a secret, set by env, or replaced by secretEnv", () => {
    const plan = planFor(notesSurvey(), { ...MEMORY, env: { FEATURE_X: "on" } }, ["MONGO_URL"]);
    const at = plan.report.findIndex((l) => l.startsWith(".env /var/amarktai/app/backend/.env (amarktai:amarktai 0600, sha256 222222222222)"));
    assert.notEqual(at, -1, plan.report.join("\n"));
    assert.deepEqual(plan.report.slice(at + 1, at + 4), ["  JWT_SECRET: kept as a secret", "  MONGO_URL: replaced by secretEnv.MONGO_URL", "  FEATURE_X: set by env (the config's value replaces the host's)"]);
});

test("the account is kept and each directory shows its owner and mode now and after", () => {
    const plan = planFor(notesSurvey());
    for (const line of [
        "user amarktai (uid 998, gid 998): kept (adopted; never removed by destroy)",
        "group amarktai (gid 998): kept (adopted; never removed by destroy)",
        "paths.app /var/amarktai/app amarktai:amarktai 0755: kept",
        "paths.logs /var/amarktai/logs root:root 0755 → amarktai:amarktai 0750",
        "paths.releases /var/amarktai/releases: created root:root 0755",
    ]) {
        assert.ok(plan.report.includes(line), `missing ${line}\n${plan.report.join("\n")}`);
    }
});

test("the hand-made venv directory is reported as moved aside into the releases directory by the first activation", () => {
    const plan = planFor(notesSurvey());
    const line = plan.report.find((l) => l.startsWith("paths.venv /var/amarktai/venv"));
    assert.equal(
        line,
        "paths.venv /var/amarktai/venv (a directory, amarktai:amarktai 0755): the first activation moves it to /var/amarktai/releases/before-releases-venv-<time> (put back if that activation fails; kept by destroy, even with purgeOnDestroy) and replaces it with a root-owned link to /var/amarktai/releases/current/venv",
    );
});

test("the port line says whether the port moves to the socket without a refused connection, with a gap, or stays with the service", () => {
    assert.ok(planFor(notesSurvey()).report.includes("port 8000 moves to amarktai-api.socket without a refused connection"));
    assert.ok(planFor(notesSurvey({ handover: { available: false, why: "the kernel has no net.ipv4.tcp_migrate_req" } })).report.includes("port 8000 moves to amarktai-api.socket with one short gap (the kernel has no net.ipv4.tcp_migrate_req)"));
    assert.ok(planFor(notesSurvey(), { ...MEMORY, app: { socketActivation: false } }).report.includes("port 8000 stays bound by the service"));
});

test("the report ends with where the backup is kept", () => {
    const report = planFor(notesSurvey()).report;
    assert.equal(report[report.length - 1], `a backup of the unit, drop-ins and .env is kept in ${serviceStateDir("amarktai-api")}/adopted-<time>/ (root only; destroy keeps it)`);
});

test("a host without the unit is fresh: one line, nothing refused, nothing taken", () => {
    const plan = planFor(notesSurvey({ unit: { state: "absent" } }));
    assert.equal(plan.state, "fresh");
    assert.equal(plan.report.length, 1);
    assert.match(plan.report[0]!, /nothing hand-made to take over/);
    assert.deepEqual(plan.refusals, []);
    assert.deepEqual(plan.take, { dropIns: [], dirs: [] });
});

test("a host whose unit is the library's, or which has the library's record, is already managed", () => {
    for (const survey of [notesSurvey({ unit: { state: "managed" } }), notesSurvey({ recorded: true })]) {
        const plan = planFor(survey);
        assert.equal(plan.state, "managed");
        assert.match(plan.report[0]!, /already managed/);
        assert.deepEqual(plan.refusals, []);
        assert.deepEqual(plan.take, { dropIns: [], dirs: [] });
    }
});

/** The refusals of `survey` (with the memory override, so the notes' override.conf is converted). */
function refusalsOf(survey: AdoptionSurvey, raw: Record<string, unknown> = MEMORY): string {
    const plan = planFor(survey, raw);
    assert.equal(plan.state, "adopt");
    assert.equal(plan.refusals.length, 1, plan.refusals.join("\n"));
    return plan.refusals[0]!;
}

const notesUnit = () => notesSurvey().unit as Extract<AdoptionSurvey["unit"], { state: "hand-made" }>;
const withUnitText = (text: string) => notesSurvey({ unit: { ...notesUnit(), text, sha256: sha256(text) } });

test("a package's unit is refused, naming the path and why", () => {
    const r = refusalsOf(notesSurvey({ unit: { state: "foreign", path: "/usr/lib/systemd/system/amarktai-api.service", why: "a package's unit" } }));
    assert.match(r, /^amarktai-api\.service on this host is \/usr\/lib\/systemd\/system\/amarktai-api\.service, and a package's unit: only a plain root-owned unit at \/etc\/systemd\/system\/amarktai-api\.service is taken over \(hosts\[i\]\.adopt\)/);
});

test("a socket unit of the same name that the library did not write is refused", () => {
    assert.match(refusalsOf(notesSurvey({ socketUnit: { state: "foreign", path: "/etc/systemd/system/amarktai-api.socket", why: "it was not written by amarktai-infra" } })), /amarktai-api\.socket .* would hand its listener to the service/);
});

test("a unit running as another user is refused, naming the user key", () => {
    assert.match(refusalsOf(withUnitText(NOTES_UNIT.replace("User=amarktai", "User=www-data"))), /runs as User=www-data, but the config's user is amarktai: set user: www-data/);
});

test("a unit without User= (running as root) is refused", () => {
    assert.match(refusalsOf(withUnitText(NOTES_UNIT.replace("User=amarktai\n", ""))), /has no User=, so it runs as root/);
});

test("a unit running with another Group= is refused, naming the group key", () => {
    assert.match(refusalsOf(withUnitText(NOTES_UNIT.replace("User=amarktai\n", "User=amarktai\nGroup=staff\n"))), /runs with Group=staff, but the config's group is amarktai: set group: staff/);
});

test("a user whose primary group is not the config's group is refused", () => {
    assert.match(refusalsOf(notesSurvey({ user: { uid: 998, gid: 100, primaryGroup: "users" } })), /user amarktai exists with the primary group users, not the config's group amarktai: set group: users/);
});

test("a user with uid 0 is refused", () => {
    assert.match(refusalsOf(notesSurvey({ user: { uid: 0, gid: 998, primaryGroup: "amarktai" } })), /user amarktai has uid 0/);
});

test("a group with gid 0 is refused", () => {
    assert.match(refusalsOf(notesSurvey({ group: { gid: 0 } })), /group amarktai has gid 0/);
});

test("a user whose primary gid is 0 is refused", () => {
    assert.match(refusalsOf(notesSurvey({ user: { uid: 998, gid: 0, primaryGroup: "amarktai" } })), /user amarktai has gid 0/);
});

test("a directory that is a link is refused, naming its key", () => {
    const dirs = notesSurvey().dirs.map((d) => (d.key === "paths.logs" ? { key: d.key, path: d.path, state: "link" as const } : d));
    assert.match(refusalsOf(notesSurvey({ dirs })), /^paths\.logs: \/var\/amarktai\/logs is a link \(or reached through one\) on this host/);
});

test("a path that is not a directory is refused, naming its key", () => {
    const dirs = notesSurvey().dirs.map((d) => (d.key === "paths.app" ? { key: d.key, path: d.path, state: "other" as const } : d));
    assert.match(refusalsOf(notesSurvey({ dirs })), /^paths\.app: \/var\/amarktai\/app is not a directory/);
});

test("a directory owned by a third user is refused, naming its key", () => {
    const dirs = notesSurvey().dirs.map((d) => (d.key === "paths.logs" ? { ...d, owner: "bob" } : d));
    assert.match(refusalsOf(notesSurvey({ dirs })), /^paths\.logs: \/var\/amarktai\/logs is owned by bob, neither root nor the service user amarktai/);
});

test("a .env that is a link is refused", () => {
    assert.match(refusalsOf(notesSurvey({ envFile: { path: "/var/amarktai/app/backend/.env", state: "link" } })), /^paths\.envFile: \/var\/amarktai\/app\/backend\/\.env is a link/);
});

test("a .env that is not a regular file is refused", () => {
    assert.match(refusalsOf(notesSurvey({ envFile: { path: "/var/amarktai/app/backend/.env", state: "other" } })), /^paths\.envFile: .* is not a regular file/);
});

test("a .env the file helper refused to read is refused with its reason", () => {
    const why = "/var/amarktai/app/backend/.env has 2 names (a hard link)";
    assert.match(refusalsOf(notesSurvey({ envFile: { path: "/var/amarktai/app/backend/.env", state: "refused", why } })), /is not read: \/var\/amarktai\/app\/backend\/\.env has 2 names \(a hard link\)/);
});

test("a .env owned by a third user is refused", () => {
    assert.match(refusalsOf(notesSurvey({ envFile: { ...notesSurvey().envFile, owner: "bob" } })), /^paths\.envFile: .* is owned by bob, neither root nor the service user amarktai/);
});

test("a drop-in that is a link is refused", () => {
    assert.match(refusalsOf(notesSurvey({ dropIns: [{ path: OVERRIDE_CONF, kind: "link" }] })), /override\.conf is a link or not a plain file/);
});

test("the managed unit's marker line shows as added, and the hand-made unit is never refused for lacking it", () => {
    const plan = planFor(notesSurvey());
    assert.ok(plan.report.includes(`+ # ${MANAGED_MARKER}`));
});
