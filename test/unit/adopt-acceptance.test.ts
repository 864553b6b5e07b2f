/**
 * What an adoption's record lets the preparation, the activation and the
 * removal accept: the hand-made unit (only while its bytes are the recorded
 * ones), the user, group and directories, the hand-made drop-in, and the
 * backup that outlives `destroy`. The unit check runs for real in a private
 * mount namespace with tmpfs over /etc/systemd/system and the state root, so
 * this machine's own units are never touched.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { PRELUDE, activationScript, foreignUnitFunction, prepareScript, quoteScript, removalScript, shellQuote, unitDropInDir } from "../../components/host";
import { MANAGED_MARKER, createdRecordPath, serviceStateDir } from "../../components/model";
import { planService } from "../../components/plan";
import { loadTestConfig } from "../support/config";

const SERVICE = "amarktai-adopttest";
const UNIT_PATH = `/etc/systemd/system/${SERVICE}.service`;
const HAND_MADE = "[Unit]\nDescription=hand-made\n\n[Service]\nExecStart=/bin/true\n";
const sha = (text: string) => crypto.createHash("sha256").update(text).digest("hex");

/** Runs `body` after the unit check's functions, in a mount namespace whose /etc/systemd/system and state root are empty tmpfs. */
function inScratchSystem(body: string): { code: number; out: string } {
    assert.equal(process.getuid?.(), 0, "this test needs root (mount namespaces); the suite runs as root");
    const script = [
        ...PRELUDE,
        "mount -t tmpfs tmpfs /etc/systemd/system",
        "mkdir -p /var/lib/amarktai-infra && mount -t tmpfs tmpfs /var/lib/amarktai-infra",
        // No systemd to ask here: the FragmentPath fallback finds nothing.
        "systemctl() { return 1; }",
        ...foreignUnitFunction(SERVICE),
        body,
    ].join("\n");
    const r = spawnSync("unshare", ["--mount", "--propagation", "private", "bash", "-c", script], { encoding: "utf8" });
    return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

test("a hand-made unit at the notes' path is refused with the way to adopt it", () => {
    const r = inScratchSystem(`printf '%s' ${quoteScript(HAND_MADE)} > ${UNIT_PATH}\nrefuse_foreign_unit ${SERVICE}.service\necho accepted`);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /set adopt: true on this host \(hosts\[i\]\.adopt\)/);
    assert.doesNotMatch(r.out, /accepted/);
});

test("an adopted unit is accepted while its bytes are the recorded ones, and refused again once changed", () => {
    const record = `adopted unit ${UNIT_PATH} ${sha(HAND_MADE)}`;
    const body = [
        `printf '%s' ${quoteScript(HAND_MADE)} > ${UNIT_PATH}`,
        `mkdir -p /var/lib/amarktai-infra/${SERVICE} && printf '%s\\n' ${shellQuote(record)} > ${createdRecordPath(SERVICE)}`,
        `refuse_foreign_unit ${SERVICE}.service && echo accepted-as-recorded`,
        `printf 'ExecStartPre=/bin/sh -c id\\n' >> ${UNIT_PATH}`,
        `refuse_foreign_unit ${SERVICE}.service; echo not-reached`,
    ].join("\n");
    const r = inScratchSystem(body);
    assert.match(r.out, /accepted-as-recorded/);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /already exists on this host/);
    assert.doesNotMatch(r.out, /not-reached/);
});

test("a link at the unit's path is never adopted, even with a matching record line, and gets no adopt hint", () => {
    const body = [
        `printf '%s' ${quoteScript(HAND_MADE)} > /etc/systemd/system/elsewhere`,
        `ln -s /etc/systemd/system/elsewhere ${UNIT_PATH}`,
        `mkdir -p /var/lib/amarktai-infra/${SERVICE} && printf '%s\\n' ${shellQuote(`adopted unit ${UNIT_PATH} ${sha(HAND_MADE)}`)} > ${createdRecordPath(SERVICE)}`,
        `refuse_foreign_unit ${SERVICE}.service; echo not-reached`,
    ].join("\n");
    const r = inScratchSystem(body);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /Choose another serviceName/);
    assert.doesNotMatch(r.out, /adopt: true/);
});

test("a unit the library wrote is ours without any record", () => {
    const r = inScratchSystem(`printf '# %s\\n[Service]\\nExecStart=/bin/true\\n' ${shellQuote(MANAGED_MARKER)} > ${UNIT_PATH}\nrefuse_foreign_unit ${SERVICE}.service && echo ours`);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /ours/);
});

test("the preparation accepts an adopted user, group and directory, and its refusals say how to adopt", () => {
    const { config } = loadTestConfig({});
    const script = prepareScript(planService(config).prepare, { bootSec: 60, aptLockSec: 60 });
    assert.match(script, /! recorded "adopted user \$USER_NAME"/);
    assert.match(script, /! recorded "adopted group \$GROUP_NAME"/);
    assert.match(script, /recorded "adopted dir \$p"/);
    assert.match(script, /user: \$USER_NAME already exists on this host .*set adopt: true on this host \(hosts\[i\]\.adopt\)/);
});

test("the activation removes a hand-made drop-in an adoption recorded with its hash, and still refuses one it did not", () => {
    assert.equal(process.getuid?.(), 0, "this test writes under /etc/systemd/system and must run as root");
    const service = `adopt-dropin-${process.pid}-${Date.now()}`;
    const dir = unitDropInDir(`${service}.service`);
    const adopted = path.join(dir, "override.conf");
    const text = "[Service]\nMemoryMax=2G\n";
    const run = () => {
        const script = activationScript({ serviceName: service, unitName: `${service}.service`, files: [], removed: [], marker: MANAGED_MARKER, links: [], account: { user: "nobody", group: "nogroup" }, healthUrl: "http://127.0.0.1:1/", healthTimeoutSec: 1 });
        const r = spawnSync("bash", ["-c", script], { encoding: "utf8" });
        return r.stdout + r.stderr;
    };
    try {
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(adopted, text);
        fs.mkdirSync(serviceStateDir(service), { recursive: true });
        // Recorded with other bytes (changed since the adoption): refused like any foreign drop-in.
        fs.writeFileSync(createdRecordPath(service), `adopted dropin ${adopted} ${sha("[Service]\nMemoryMax=1G\n")}\n`);
        assert.match(run(), /unmanaged drop-in\(s\) .*override\.conf would override/);
        assert.ok(fs.existsSync(adopted));
        // Recorded with these bytes: removed, saying why.
        fs.writeFileSync(createdRecordPath(service), `adopted dropin ${adopted} ${sha(text)}\n`);
        const out = run();
        assert.doesNotMatch(out, /would override/);
        assert.match(out, new RegExp(`removed the unmanaged drop-in ${adopted.replace(/[.]/g, "\\.")} \\(adopted: its settings are in the config`));
        assert.ok(!fs.existsSync(adopted), "the adopted drop-in was removed");
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
        fs.rmSync(serviceStateDir(service), { recursive: true, force: true });
        fs.rmSync(`/run/amarktai-infra-${service}.lock`, { force: true });
    }
});

test("destroy keeps the adoption's backup, with or without purge", () => {
    const { config } = loadTestConfig({});
    const plan = planService(config);
    const base = { serviceName: config.serviceName, unitName: plan.unitName, marker: MANAGED_MARKER, files: plan.files.map((f) => f.file) };
    const kept = removalScript(base as Parameters<typeof removalScript>[0]);
    assert.match(kept, /find "\$STATE" -mindepth 1 -maxdepth 1 ! -name created ! -name "adopted-\*" -exec rm -rf/);
    const purged = removalScript({ ...base, purge: plan.purge ?? { paths: [], envLink: config.paths.envFile, user: config.user, group: config.group } } as Parameters<typeof removalScript>[0]);
    assert.match(purged, /if \[ -n "\$adopted" \]; then find "\$STATE" -mindepth 1 -maxdepth 1 ! -name created ! -name "adopted-\*"/);
    assert.match(purged, /case "\$\{e##\*\/\}" in before-releases-\*\) ;;/);
});
