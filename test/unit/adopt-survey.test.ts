import { after, test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AdoptionSurveySpec, adoptionSurveyScript, adoptionTakeoverScript, parseAdoptionSurvey } from "../../components/host";
import { AdoptionTake, MANAGED_MARKER, createdRecordPath, serviceStateDir, sha256 } from "../../components/model";
import { adoptionPlanInput, adoptionSurveyTargets, planAdoption, planService } from "../../components/plan";
import { testConfig } from "../support/config";

const FIXTURE = path.join(__dirname, "..", "..", "..", "test", "fixtures", "notes-unit.service");
const NOTES_UNIT = fs.readFileSync(FIXTURE, "utf8");
const OVERRIDE_TEXT = "[Service]\nMemoryMax=2G\nMemoryHigh=1.5G\n";
const ENV_TEXT = "JWT_SECRET=topsecret-jwt-value\nMONGO_URL=mongodb://app:hunter2-pw@localhost/amarktai\n";
const SECRETS = ["topsecret-jwt-value", "hunter2-pw"];
const UNIT_PATH = "/etc/systemd/system/amarktai-api.service";
const OVERRIDE_PATH = "/etc/systemd/system/amarktai-api.service.d/override.conf";
const ENV_PATH = "/var/amarktai/app/backend/.env";

/** The notes' layout, as the survey of the stack's default config looks at it. */
const config = testConfig({ overrides: { memory: { memoryMax: "2G", memoryHigh: "1.5G" } } });
const servicePlan = planService(config);
const SPEC: AdoptionSurveySpec = adoptionSurveyTargets(config, servicePlan);

const TAKE: AdoptionTake = {
    unit: { path: UNIT_PATH, sha256: sha256(NOTES_UNIT) },
    dropIns: [{ path: OVERRIDE_PATH, sha256: sha256(OVERRIDE_TEXT) }],
    envFile: { path: ENV_PATH, sha256: sha256(ENV_TEXT) },
    user: "amarktai",
    group: "amarktai",
    dirs: ["/var/amarktai/app", "/var/amarktai/app/backend", "/var/amarktai/logs"],
};

for (const [name, script] of [
    ["survey", adoptionSurveyScript(SPEC)],
    ["takeover", adoptionTakeoverScript(SPEC, TAKE)],
    ["takeover of a unit alone", adoptionTakeoverScript(SPEC, { unit: TAKE.unit!, dropIns: [], dirs: [] })],
] as const) {
    test(`the adoption ${name} script parses with bash -n and passes shellcheck`, () => {
        const parsed = spawnSync("bash", ["-n"], { input: script, encoding: "utf8" });
        assert.equal(parsed.status, 0, parsed.stderr);
        const checked = spawnSync("shellcheck", ["--shell=bash", "--severity=warning", "-"], { input: script, encoding: "utf8" });
        assert.notEqual(checked.error?.message.includes("ENOENT"), true, "shellcheck is not installed (scripts/test.sh installs it)");
        assert.equal(checked.status, 0, checked.stdout);
    });

    test(`the adoption ${name} script stops at the first failing command (set -euo pipefail)`, () => {
        assert.match(script, /^set -euo pipefail$/m);
    });
}

test("the takeover refuses a take outside the notes' layout before any script exists", () => {
    assert.throws(() => adoptionTakeoverScript(SPEC, { ...TAKE, unit: { path: "/usr/lib/systemd/system/amarktai-api.service", sha256: "0".repeat(64) } }), /only \/etc\/systemd\/system\/amarktai-api\.service is taken over/);
    assert.throws(() => adoptionTakeoverScript(SPEC, { ...TAKE, dropIns: [{ path: "/etc/systemd/system/other.service.d/x.conf", sha256: "0".repeat(64) }] }), /only \*\.conf files in/);
    assert.throws(() => adoptionTakeoverScript(SPEC, { ...TAKE, envFile: { path: "/etc/shadow", sha256: "0".repeat(64) } }), /only \/var\/amarktai\/app\/backend\/\.env is taken over/);
    assert.throws(() => adoptionTakeoverScript(SPEC, { ...TAKE, unit: { path: UNIT_PATH, sha256: "not a hash" } }), /has no SHA-256/);
    assert.throws(() => adoptionTakeoverScript(SPEC, { ...TAKE, user: "root" }), /must be the service's user/);
});

const SAMPLE_SUMMARY = '{"sections":{"Service":{"MemoryMax":"2G","Environment":null}},"unparsedLines":1}';
const SAMPLE = [
    `unit\thand-made\t${UNIT_PATH}\t${sha256(NOTES_UNIT)}\troot\troot\t0644\t1\t4321`,
    `unittext\t${Buffer.from(NOTES_UNIT).toString("base64")}`,
    "socket\tforeign\t/usr/lib/systemd/system/amarktai-api.socket\ta package's unit",
    `foreign\t${OVERRIDE_PATH}\tfile\t${"a".repeat(64)}\t${SAMPLE_SUMMARY}`,
    "foreign\t/etc/systemd/system/amarktai-api.service.d/x.conf\tlink",
    "otherdropin\t/etc/systemd/system.control/amarktai-api.service.d/50-MemoryMax.conf",
    "user\t998\t997\tamarktai",
    "group\t997",
    "dir\tpaths.app\t/var/amarktai/app\tpresent\tamarktai\tamarktai\t0755",
    "dir\tpaths.releases\t/var/amarktai/releases\tabsent",
    `envfile\t${ENV_PATH}\tpresent\tamarktai\tamarktai\t0600\t${"b".repeat(64)}`,
    "envkey\tJWT_SECRET",
    "envkey\tMONGO_URL",
    "recorded\t0",
    "handover\t0\tthe kernel has no net.ipv4.tcp_migrate_req",
    "",
].join("\n");

test("parseAdoptionSurvey reads every record of the survey into one survey", () => {
    assert.deepEqual(parseAdoptionSurvey(SAMPLE), {
        unit: { state: "hand-made", path: UNIT_PATH, sha256: sha256(NOTES_UNIT), owner: "root", group: "root", mode: "0644", text: NOTES_UNIT, active: true, mainPid: 4321 },
        socketUnit: { state: "foreign", path: "/usr/lib/systemd/system/amarktai-api.socket", why: "a package's unit" },
        dropIns: [
            { path: OVERRIDE_PATH, kind: "file", sha256: "a".repeat(64), sections: { Service: { MemoryMax: "2G", Environment: null } }, unparsedLines: 1 },
            { path: "/etc/systemd/system/amarktai-api.service.d/x.conf", kind: "link" },
        ],
        otherDropIns: ["/etc/systemd/system.control/amarktai-api.service.d/50-MemoryMax.conf"],
        user: { uid: 998, gid: 997, primaryGroup: "amarktai" },
        group: { gid: 997 },
        dirs: [
            { key: "paths.app", path: "/var/amarktai/app", state: "present", owner: "amarktai", group: "amarktai", mode: "0755" },
            { key: "paths.releases", path: "/var/amarktai/releases", state: "absent" },
        ],
        envFile: { path: ENV_PATH, state: "present", owner: "amarktai", group: "amarktai", mode: "0600", sha256: "b".repeat(64), keys: ["JWT_SECRET", "MONGO_URL"] },
        recorded: false,
        handover: { available: false, why: "the kernel has no net.ipv4.tcp_migrate_req" },
    });
});

test("parseAdoptionSurvey reads the survey of an empty host: no user, no group, nothing found", () => {
    const survey = parseAdoptionSurvey(["unit\tabsent", "socket\tabsent", `envfile\t${ENV_PATH}\tabsent`, "recorded\t1", "handover\t1", ""].join("\n"));
    assert.deepEqual(survey, { unit: { state: "absent" }, socketUnit: { state: "absent" }, dropIns: [], otherDropIns: [], dirs: [], envFile: { path: ENV_PATH, state: "absent" }, recorded: true, handover: { available: true } });
});

/** SAMPLE with one line replaced (or, with `undefined`, removed). */
function sampleWith(kind: string, line: string | undefined): string {
    const lines = SAMPLE.split("\n");
    const at = lines.findIndex((l) => l.startsWith(`${kind}\t`));
    assert.notEqual(at, -1);
    if (line === undefined) lines.splice(at, 1);
    else lines[at] = line;
    return lines.join("\n");
}

test("parseAdoptionSurvey refuses malformed records, naming the record kind and never the value", () => {
    const cases: [string, string, RegExp][] = [
        [SAMPLE + "secret-record\ts3cr3t-value\n", "unknown", /unknown "secret-record" record on line 16/],
        [sampleWith("user", "user\tx-s3cr3t-value\t997\tamarktai"), "user", /malformed "user" record/],
        [sampleWith("unit", `unit\thand-made\t${UNIT_PATH}\ts3cr3t-value\troot\troot\t0644\t1\t4321`), "unit", /malformed "unit" record/],
        [sampleWith("dir", "dir\tpaths.app\t/var/amarktai/app\tpresent\tamarktai\ts3cr3t-value"), "dir", /malformed "dir" record/],
        [sampleWith("foreign", `foreign\t${OVERRIDE_PATH}\tfile\t${"a".repeat(64)}\t{"sections":{"Service":{"X":["s3cr3t-value"]}},"unparsedLines":0}`), "foreign", /malformed "foreign" record/],
        [sampleWith("envfile", `envfile\t${ENV_PATH}\tpresent\tamarktai\tamarktai\t0600\ts3cr3t-value`), "envfile", /malformed "envfile" record/],
        [sampleWith("handover", "handover\tmaybe-s3cr3t-value"), "handover", /malformed "handover" record/],
        [SAMPLE + "recorded\t1\n", "repeated", /repeated "recorded" record/],
        [sampleWith("handover", undefined), "missing", /no "handover" record/],
        [sampleWith("unittext", `unittext\t${Buffer.from("s3cr3t-value").toString("base64")}`), "unittext", /"unittext" record does not match/],
        [sampleWith("envfile", `envfile\t${ENV_PATH}\tabsent`), "envkey without a .env", /malformed "envkey" record/],
    ];
    for (const [output, what, message] of cases) {
        assert.throws(
            () => parseAdoptionSurvey(output),
            (e: Error) => {
                assert.match(e.message, message, what);
                assert.ok(!e.message.includes("s3cr3t"), `${what}: the message shows the value: ${e.message}`);
                return true;
            },
        );
    }
});

/** A temporary directory removed when the file's tests end. */
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "adopt-survey-"));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

test("the survey runs for real on this machine: a made-up service has no unit, user, group, directories or .env; a root directory is present root root 0755", () => {
    const name = `amarktai-adopt-test-${process.pid}`;
    const spec: AdoptionSurveySpec = { serviceName: name, user: name, group: name, directories: [{ key: "paths.app", path: `${scratch}/app` }, { key: "paths.logs", path: `${scratch}/logs` }], envFile: `${scratch}/app/.env` };
    const run = () => {
        const r = spawnSync("bash", ["-c", adoptionSurveyScript(spec)], { encoding: "utf8", timeout: 60_000 });
        assert.equal(r.status, 0, r.stderr);
        return parseAdoptionSurvey(r.stdout);
    };
    const first = run();
    assert.deepEqual(first.unit, { state: "absent" });
    assert.deepEqual(first.socketUnit, { state: "absent" });
    assert.equal(first.user, undefined);
    assert.equal(first.group, undefined);
    assert.deepEqual(first.dirs, [
        { key: "paths.app", path: `${scratch}/app`, state: "absent" },
        { key: "paths.logs", path: `${scratch}/logs`, state: "absent" },
    ]);
    assert.deepEqual(first.envFile, { path: `${scratch}/app/.env`, state: "absent" });
    assert.equal(first.recorded, false);
    fs.mkdirSync(`${scratch}/app`, { mode: 0o755 });
    fs.chmodSync(`${scratch}/app`, 0o755);
    fs.chownSync(`${scratch}/app`, 0, 0);
    fs.symlinkSync(`${scratch}/app`, `${scratch}/logs`);
    assert.deepEqual(run().dirs, [
        { key: "paths.app", path: `${scratch}/app`, state: "present", owner: "root", group: "root", mode: "0755" },
        { key: "paths.logs", path: `${scratch}/logs`, state: "link" },
    ]);
});

/**
 * Runs `scripts` one after another as root in a private mount namespace where `/etc/systemd`,
 * `/var` and `/run` are empty tmpfs and `/etc/passwd` and `/etc/group` have an `amarktai` user and
 * group: a host installed by hand as the service notes say (the notes' unit, a `systemctl edit`
 * override.conf, `chown -R amarktai:amarktai` of the app and the venv, a root-owned logs directory,
 * the `.env`), changed by `tweak` (shell) first. Nothing outside the namespace is touched.
 */
function onNotesHost(tweak: string, scripts: readonly string[]): { stdout: string; stderr: string; status: number }[] {
    const dir = fs.mkdtempSync(path.join(scratch, "host-"));
    scripts.forEach((s, i) => fs.writeFileSync(`${dir}/script-${i}.sh`, s));
    fs.writeFileSync(`${dir}/env`, ENV_TEXT);
    const setup = [
        "set -euo pipefail",
        'D="$1"; N="$2"',
        "mount -t tmpfs -o mode=0755 tmpfs /etc/systemd",
        "mount -t tmpfs -o mode=0755 tmpfs /var",
        "mount -t tmpfs -o mode=0755 tmpfs /run",
        "mkdir -m 0755 /etc/systemd/system",
        'u=4242; while getent passwd "$u" >/dev/null || getent group "$u" >/dev/null; do u=$((u + 1)); done',
        "grep -v '^amarktai:' /etc/passwd > \"$D/passwd\"; grep -v '^amarktai:' /etc/group > \"$D/group\"",
        'echo "amarktai:x:$u:$u::/nonexistent:/usr/sbin/nologin" >> "$D/passwd"; echo "amarktai:x:$u:" >> "$D/group"',
        'mount --bind "$D/passwd" /etc/passwd; mount --bind "$D/group" /etc/group',
        "install -d -m 0755 /var/amarktai /var/amarktai/app /var/amarktai/app/backend /var/amarktai/venv /var/amarktai/venv/bin /var/amarktai/logs",
        `install -m 0644 '${FIXTURE}' ${UNIT_PATH}`,
        "mkdir /etc/systemd/system/amarktai-api.service.d",
        `printf '%s' '${OVERRIDE_TEXT}' > ${OVERRIDE_PATH}; chmod 0644 ${OVERRIDE_PATH}`,
        `install -m 0600 "$D/env" ${ENV_PATH}`,
        "chown -R amarktai:amarktai /var/amarktai/app /var/amarktai/venv",
        tweak,
        'for ((i = 0; i < N; i++)); do rc=0; bash "$D/script-$i.sh" > "$D/out-$i" 2> "$D/err-$i" || rc=$?; echo "$rc" > "$D/rc-$i"; done',
    ].join("\n");
    const r = spawnSync("unshare", ["--mount", "--propagation", "private", "bash", "-c", setup, "setup", dir, String(scripts.length)], { encoding: "utf8", timeout: 120_000 });
    assert.equal(r.status, 0, `the scratch host could not be set up (the suite runs as root): ${r.stderr}`);
    return scripts.map((_, i) => ({ stdout: fs.readFileSync(`${dir}/out-${i}`, "utf8"), stderr: fs.readFileSync(`${dir}/err-${i}`, "utf8"), status: Number(fs.readFileSync(`${dir}/rc-${i}`, "utf8")) }));
}

test("the survey of a host installed by hand as the notes say finds the hand-made unit, override.conf, the account, the directories and the .env's key names only", () => {
    const [run] = onNotesHost("", [adoptionSurveyScript(SPEC)]);
    assert.equal(run!.status, 0, run!.stderr);
    for (const secret of SECRETS) assert.ok(!run!.stdout.includes(secret) && !run!.stderr.includes(secret), "a .env value left the host");
    const survey = parseAdoptionSurvey(run!.stdout);
    assert.deepEqual(survey.unit, { state: "hand-made", path: UNIT_PATH, sha256: sha256(NOTES_UNIT), owner: "root", group: "root", mode: "0644", text: NOTES_UNIT, active: false, mainPid: 0 });
    assert.deepEqual(survey.socketUnit, { state: "absent" });
    assert.deepEqual(survey.dropIns, [{ path: OVERRIDE_PATH, kind: "file", sha256: sha256(OVERRIDE_TEXT), sections: { Service: { MemoryMax: "2G", MemoryHigh: "1.5G" } }, unparsedLines: 0 }]);
    assert.ok(survey.user && survey.user.uid > 0 && survey.user.gid === survey.user.uid && survey.user.primaryGroup === "amarktai", JSON.stringify(survey.user));
    assert.deepEqual(survey.group, { gid: survey.user.gid });
    const owned = { state: "present", owner: "amarktai", group: "amarktai", mode: "0755" };
    assert.deepEqual(survey.dirs, [
        { key: "paths.app", path: "/var/amarktai/app", ...owned },
        { key: "paths.workingDirectory", path: "/var/amarktai/app/backend", ...owned },
        { key: "paths.logs", path: "/var/amarktai/logs", state: "present", owner: "root", group: "root", mode: "0755" },
        { key: "paths.releases", path: "/var/amarktai/releases", state: "absent" },
        { key: "paths.venv", path: "/var/amarktai/venv", ...owned },
    ]);
    assert.deepEqual(survey.envFile, { path: ENV_PATH, state: "present", owner: "amarktai", group: "amarktai", mode: "0600", sha256: sha256(ENV_TEXT), keys: ["JWT_SECRET", "MONGO_URL"] });
    assert.equal(survey.recorded, false);
    const plan = planAdoption(adoptionPlanInput(config, servicePlan, survey, []));
    assert.equal(plan.state, "adopt");
    assert.deepEqual(plan.refusals, []);
    assert.deepEqual(plan.take, TAKE);
});

test("the survey never follows a .env link the service user planted, and reports a unit link and a third user's .env as such", () => {
    const [linked] = onNotesHost(`rm ${ENV_PATH}; ln -s /etc/shadow ${ENV_PATH}; mv ${UNIT_PATH} /etc/systemd/real.service; ln -s /etc/systemd/real.service ${UNIT_PATH}`, [adoptionSurveyScript(SPEC)]);
    assert.equal(linked!.status, 0, linked!.stderr);
    const survey = parseAdoptionSurvey(linked!.stdout);
    assert.deepEqual(survey.envFile, { path: ENV_PATH, state: "link" });
    assert.deepEqual(survey.unit, { state: "foreign", path: UNIT_PATH, why: "it is a symbolic link to /etc/systemd/real.service" });
    const [foreign] = onNotesHost(`chown nobody ${ENV_PATH}`, [adoptionSurveyScript(SPEC)]);
    assert.equal(foreign!.status, 0, foreign!.stderr);
    const env = parseAdoptionSurvey(foreign!.stdout).envFile;
    assert.equal(env.state, "refused");
    assert.match(env.why ?? "", /owned by uid \d+ \(nobody:amarktai 0600\), not by root or the service user/);
    for (const secret of SECRETS) assert.ok(!foreign!.stdout.includes(secret), "a .env value left the host");
});

const INSPECT = [
    `cat ${createdRecordPath("amarktai-api")}`,
    "echo ---",
    `cd ${serviceStateDir("amarktai-api")}`,
    "find . -path './adopted-*' -printf '%p %u:%g %m\\n' | sort",
    "echo ---",
    "cat adopted-*/MANIFEST",
    "echo ---",
    "sha256sum adopted-*/unit/* adopted-*/dropins/* adopted-*/env/.env | sed 's|  adopted-[^/]*/| |'",
].join("\n");


/** The record lines a finished takeover of the notes host leaves, its backup last. */
function adoptedRecordLines(backup: string): string[] {
    return [
        `adopted unit ${UNIT_PATH} ${sha256(NOTES_UNIT)}`,
        `adopted dropin ${OVERRIDE_PATH} ${sha256(OVERRIDE_TEXT)}`,
        "adopted user amarktai",
        "adopted group amarktai",
        "adopted dir /var/amarktai/app",
        "adopted dir /var/amarktai/app/backend",
        "adopted dir /var/amarktai/logs",
        `adopted backup ${backup}`,
    ];
}

test("the takeover keeps a root-only backup with a MANIFEST, records what it adopted, and a second run changes nothing", () => {
    const takeover = adoptionTakeoverScript(SPEC, TAKE);
    const [first, second, inspect] = onNotesHost("", [takeover, takeover, INSPECT]);
    assert.equal(first!.status, 0, first!.stderr);
    const backup = /^backup (\S+)$/.exec(first!.stdout.trimEnd().split("\n").pop()!)?.[1];
    assert.match(backup ?? "", new RegExp(`^${serviceStateDir("amarktai-api")}/adopted-\\d{8}T\\d{6}Z$`), first!.stdout);
    assert.equal(second!.status, 0, second!.stderr);
    assert.equal(second!.stdout.trimEnd().split("\n").pop(), `backup ${backup}`, "the second run names the first backup");
    const [record, tree, manifest, sums] = inspect!.stdout.split("---\n");
    assert.equal(record, [...adoptedRecordLines(backup!), ""].join("\n"));
    const name = path.basename(backup!);
    assert.equal(
        tree,
        [
            `./${name} root:root 700`,
            `./${name}/MANIFEST root:root 600`,
            `./${name}/dropins root:root 700`,
            `./${name}/dropins/override.conf root:root 600`,
            `./${name}/env root:root 700`,
            `./${name}/env/.env root:root 600`,
            `./${name}/unit root:root 700`,
            `./${name}/unit/amarktai-api.service root:root 600`,
            "",
        ].join("\n"),
        "one backup, root only",
    );
    assert.equal(sums, [`${sha256(NOTES_UNIT)} unit/amarktai-api.service`, `${sha256(OVERRIDE_TEXT)} dropins/override.conf`, `${sha256(ENV_TEXT)} env/.env`, ""].join("\n"));
    assert.match(manifest!, new RegExp(`env/\\.env  was  ${ENV_PATH.replace(/\./g, "\\.")}  \\(amarktai:amarktai 0600, sha256 ${sha256(ENV_TEXT)}\\)`));
    assert.match(manifest!, /unit\/amarktai-api\.service {2}was {2}\/etc\/systemd\/system\/amarktai-api\.service {2}\(root:root 0644/);
    assert.match(manifest!, /To go back to the hand-made install by hand/);
    for (const secret of SECRETS) assert.ok(!manifest!.includes(secret) && !first!.stdout.includes(secret), "a .env value is in the MANIFEST or the log");
});

test("the takeover changes nothing when a file changed since the preview", () => {
    const [run, inspect] = onNotesHost(`printf 'CPUQuota=50%%\\n' >> ${OVERRIDE_PATH}`, [adoptionTakeoverScript(SPEC, TAKE), `ls -A ${serviceStateDir("amarktai-api")} 2>&1 || true`]);
    assert.notEqual(run!.status, 0);
    assert.match(run!.stderr, new RegExp(`${OVERRIDE_PATH.replace(/\./g, "\\.")} changed since the preview; run pulumi preview again`));
    assert.match(inspect!.stdout, /No such file or directory/, "no state directory, no record, no backup");
});

test("a takeover that did not finish is run again: a new backup, and only the missing record lines", () => {
    const takeover = adoptionTakeoverScript(SPEC, TAKE);
    const record = createdRecordPath("amarktai-api");
    // The first run stopped before its last record line: no `adopted backup` line, so it did not finish.
    const unfinish = `sed -i -e '/^adopted backup /d' -e '/^adopted dir /d' ${record}`;
    const [first, , second, inspect] = onNotesHost("", [takeover, unfinish, takeover, `cat ${record}; ls -d ${serviceStateDir("amarktai-api")}/adopted-*`]);
    assert.equal(first!.status, 0, first!.stderr);
    assert.equal(second!.status, 0, second!.stderr);
    const firstBackup = first!.stdout.trimEnd().split("\n").pop()!.replace(/^backup /, "");
    const secondBackup = second!.stdout.trimEnd().split("\n").pop()!.replace(/^backup /, "");
    assert.notEqual(secondBackup, firstBackup);
    const lines = inspect!.stdout.trimEnd().split("\n");
    assert.deepEqual(lines.filter((l) => l.startsWith("adopted ")), adoptedRecordLines(secondBackup));
    assert.deepEqual(lines.filter((l) => l.startsWith("/")).sort(), [firstBackup, secondBackup].sort());
});

test("the managed marker makes the survey report the unit as managed", () => {
    const [run] = onNotesHost(`printf '# %s\\n[Unit]\\n' '${MANAGED_MARKER.replace(/'/g, "'\\''")}' > ${UNIT_PATH}`, [adoptionSurveyScript(SPEC)]);
    assert.equal(run!.status, 0, run!.stderr);
    assert.deepEqual(parseAdoptionSurvey(run!.stdout).unit, { state: "managed" });
});
