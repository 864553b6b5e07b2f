/**
 * What a host must pass before anything on it changes, run for real in bash
 * with stand-ins for systemctl, cloud-init and python3: the wait for boot and
 * cloud-init (none on a booted host, bounded by timeouts.bootSec otherwise),
 * the OS, systemd and Python refusals, and the refusal of a service directory
 * under a parent others can write (on a real scratch tree). Also the order:
 * every wait and refusal comes before the first line that changes the host.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { spawnSync } from "child_process";
import { PRELUDE, bootWaitLines, detachedScript, osReleaseFunctions, prepareScript, pythonVersionLines, saferDirectory, supportedOsLines, unsafeParentFunction } from "../../components/host";
import { DEFAULT_HOST_WAITS } from "../../components/model";
import { planService } from "../../components/plan";
import { testConfig } from "../support/config";
import { StubHost } from "../support/host-stubs";

const script = (...parts: (readonly string[])[]) => parts.flat().join("\n") + "\n";

/** The boot wait with cloud-init's paths moved into the scratch directory. */
function bootWait(host: StubHost, bootSec: number): string {
    return script(PRELUDE, bootWaitLines(bootSec)).split("/run/cloud-init/").join(`${host.dir}/run-cloud-init/`).split("/etc/cloud/cloud-init.disabled").join(`${host.dir}/cloud-init.disabled`);
}

const RESULT_OK = '{\n "v1": {\n  "datasource": "DataSourceNoCloud [seed=/dev/vdb]",\n  "errors": []\n }\n}\n';
const RESULT_ERRORS = '{\n "v1": {\n  "datasource": "DataSourceNoCloud [seed=/dev/vdb]",\n  "errors": [\n   "(\'scripts_user\', RuntimeError(\'Runparts: 1 failures\'))"\n  ]\n }\n}\n';
const BOOTED_SYSTEMCTL = 'case "$*" in "is-system-running") echo running ;; *) echo "unexpected: systemctl $*" >&2; exit 99 ;; esac';

test("on a booted host whose cloud-init has finished, the boot wait runs one systemctl and never starts cloud-init", async () => {
    const host = new StubHost();
    try {
        host.command("systemctl", BOOTED_SYSTEMCTL).command("cloud-init", "echo 'status: done'");
        host.file("run-cloud-init/result.json", RESULT_OK);
        const r = await host.run(bootWait(host, 900));
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(r.calls, ["systemctl is-system-running"]);
        assert.doesNotMatch(r.stdout, /waiting/);
        process.stderr.write(`    boot wait on a booted host: ${r.ms} ms\n`);
    } finally {
        host.done();
    }
});

test("a host still starting is waited for: the wait says what it waits for, and goes on once boot and cloud-init finish", async () => {
    const host = new StubHost();
    try {
        const booted = path.join(host.dir, "booted");
        // `--wait` returns once the test says the boot finished, which it does when the script has said it waits.
        host.command("systemctl", `case "$*" in "is-system-running") echo starting; exit 1 ;; "is-system-running --wait") while [ ! -e ${JSON.stringify(booted)} ]; do sleep 0.1; done; echo running ;; *) exit 99 ;; esac`);
        host.command("cloud-init", `[ "$*" = "status --wait --long" ] || exit 99; printf '....\\nstatus: done\\nextended_status: done\\nboot_status_code: enabled-by-generator\\n'`);
        const r = await host.run(bootWait(host, 900), {
            onStdout: (out) => {
                if (out.includes("waiting for boot to finish")) fs.writeFileSync(booted, "");
            },
        });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(r.calls, ["systemctl is-system-running", "systemctl is-system-running --wait", "cloud-init status --wait --long"]);
        assert.match(r.stdout, /waiting for boot to finish, up to \d+s \(timeouts\.bootSec\): systemd is starting\n.*boot finished \(systemd: running\)\n.*waiting for cloud-init to finish, up to \d+s \(timeouts\.bootSec\)\n.*cloud-init status: done/);
    } finally {
        host.done();
    }
});

test("a boot that never finishes fails within timeouts.bootSec, naming the setting, systemd's state and the jobs still running", async () => {
    const host = new StubHost();
    try {
        host.command("systemctl", 'case "$*" in "is-system-running") echo starting; exit 1 ;; "is-system-running --wait") exec sleep 600 ;; "list-jobs --no-pager --no-legend") printf \'  7 cloud-final.service start running\\n  1 multi-user.target start waiting\\n\' ;; *) exit 99 ;; esac');
        const r = await host.run(bootWait(host, 2));
        assert.equal(r.code, 1);
        assert.ok(r.ms < 20_000, `it took ${r.ms} ms`);
        assert.match(r.stderr, /the host did not finish booting within 2s \(timeouts\.bootSec\): systemd is starting; still running: cloud-final\.service \(start, running\), multi-user\.target \(start, waiting\)/);
    } finally {
        host.done();
    }
});

test("bootSec 0 does not wait: a host still starting is refused at once", async () => {
    const host = new StubHost();
    try {
        host.command("systemctl", 'case "$*" in "is-system-running") echo starting; exit 1 ;; list-jobs*) ;; *) exit 99 ;; esac');
        const r = await host.run(bootWait(host, 0));
        assert.equal(r.code, 1);
        assert.match(r.stderr, /within 0s \(timeouts\.bootSec\): systemd is starting/);
        assert.ok(!r.calls.includes("systemctl is-system-running --wait"), r.calls.join("\n"));
    } finally {
        host.done();
    }
});

test("a host shutting down is refused naming systemd's state", async () => {
    const host = new StubHost();
    try {
        host.command("systemctl", 'case "$*" in is-system-running*) echo stopping; exit 1 ;; list-jobs*) ;; *) exit 99 ;; esac');
        const r = await host.run(bootWait(host, 30));
        assert.equal(r.code, 1);
        assert.match(r.stderr, /systemd is stopping \(wanted running or degraded\)/);
    } finally {
        host.done();
    }
});

test("cloud-init that never finishes fails within timeouts.bootSec", async () => {
    const host = new StubHost();
    try {
        host.command("systemctl", 'case "$*" in "is-system-running") echo running ;; list-jobs*) echo "  9 cloud-final.service start running" ;; *) exit 99 ;; esac');
        host.command("cloud-init", "exec sleep 600");
        const r = await host.run(bootWait(host, 2));
        assert.equal(r.code, 1);
        assert.ok(r.ms < 20_000, `it took ${r.ms} ms`);
        assert.match(r.stdout, /waiting for cloud-init to finish, up to 2s \(timeouts\.bootSec\)/);
        assert.match(r.stderr, /cloud-init did not finish within 2s \(timeouts\.bootSec\): status running; still running: cloud-final\.service \(start, running\)/);
    } finally {
        host.done();
    }
});

test("cloud-init done with recoverable errors (exit 2) is fine; an error (exit 1) is refused with what it reported", async () => {
    const host = new StubHost();
    try {
        host.command("systemctl", BOOTED_SYSTEMCTL);
        host.command("cloud-init", `printf '\\nstatus: done\\nextended_status: degraded done\\nrecoverable_errors:\\nWARNING:\\n\\t- deprecated key\\n'; exit 2`);
        const degraded = await host.run(bootWait(host, 60));
        assert.equal(degraded.code, 0, degraded.stderr);
        assert.match(degraded.stdout, /cloud-init finished with recoverable errors: status: done; extended_status: degraded done; .*- deprecated key/);

        host.file("run-cloud-init/result.json", RESULT_ERRORS);
        host.command("cloud-init", `printf 'status: error\\nextended_status: error - done\\ndetail: DataSourceNoCloud\\nerrors:\\n\\t- Runparts: 1 failures\\n'; exit 1`);
        const failed = await host.run(bootWait(host, 60));
        assert.equal(failed.code, 1);
        assert.match(failed.stdout, /cloud-init finished with errors; asking it what it reported/);
        assert.match(failed.stderr, /cloud-init reported status: error; extended_status: error - done; detail: DataSourceNoCloud; errors:; - Runparts: 1 failures \(exit 1\)/);
    } finally {
        host.done();
    }
});

test("cloud-init disabled on the host is not started", async () => {
    const host = new StubHost();
    try {
        host.command("systemctl", BOOTED_SYSTEMCTL).command("cloud-init", "exit 99");
        host.file("cloud-init.disabled", "");
        const r = await host.run(bootWait(host, 60));
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(r.calls, ["systemctl is-system-running"]);
    } finally {
        host.done();
    }
});

/** A detached script, with systemd's PID 1 marker moved into the scratch directory. */
function detached(host: StubHost): string {
    fs.mkdirSync(path.join(host.dir, "run-systemd-system"), { recursive: true });
    return detachedScript("prepare the host", "echo inner\n").split("/run/systemd/system").join(`${host.dir}/run-systemd-system`);
}

test("systemd older than 254 is refused before systemd-run is reached, naming the version found and the one needed", async () => {
    const host = new StubHost();
    try {
        host.command("systemctl", 'if [ "$*" = --version ]; then printf \'systemd 252 (252.39-1~deb12u2)\\n+PAM +AUDIT +SELINUX\\n\'; else exit 99; fi').command("systemd-run", "exit 0");
        const r = await host.run(detached(host));
        assert.equal(r.code, 1);
        assert.match(r.stderr, /has systemd 252 \(252\.39-1~deb12u2\): amarktai-infra needs systemd 254 or newer/);
        assert.deepEqual(r.calls, ["systemctl --version"], "one systemctl, and no systemd-run");
    } finally {
        host.done();
    }
});

test("systemd 255 goes on to systemd-run with --expand-environment=no", async () => {
    const host = new StubHost();
    try {
        host.command("systemctl", 'if [ "$*" = --version ]; then echo "systemd 255 (255.4-1ubuntu8)"; else exit 99; fi').command("systemd-run", "exit 0");
        const r = await host.run(detached(host));
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.calls.length, 2);
        assert.match(r.calls[1]!, /^systemd-run .*--expand-environment=no/);
    } finally {
        host.done();
    }
});

test("a host without systemd as PID 1 is refused before systemd-run", async () => {
    const host = new StubHost();
    try {
        host.command("systemctl", 'echo "systemd 257 (257.9-1)"').command("systemd-run", "exit 0");
        const r = await host.run(detached(host).split(`${host.dir}/run-systemd-system`).join(`${host.dir}/missing`));
        assert.equal(r.code, 1);
        assert.match(r.stderr, /systemd 257 is installed but is not the init system \(PID 1\)/);
        assert.deepEqual(r.calls, ["systemctl --version"]);
    } finally {
        host.done();
    }
});

test("Python older than 3.11 is refused naming the version found and the one needed; 3.11 and newer pass", async () => {
    const host = new StubHost();
    try {
        const check = script(PRELUDE, osReleaseFunctions(), pythonVersionLines());
        host.command("python3", 'echo "Python 3.10.12"');
        const old = await host.run(check);
        assert.equal(old.code, 1);
        assert.match(old.stderr, /python3 on .* is Python 3\.10\.12 \(.*python3\): amarktai-infra needs Python 3\.11 or newer/);
        assert.deepEqual(old.calls, ["python3 --version"], "one python3 start");
        for (const ok of ["Python 3.11.2", "Python 3.12.3", "Python 3.13.5", "Python 4.0.0"]) {
            host.command("python3", `echo ${JSON.stringify(ok)}`);
            const r = await host.run(check);
            assert.equal(r.code, 0, `${ok}: ${r.stderr}`);
        }
        host.command("python3", 'echo "Python 3.x"');
        assert.match((await host.run(check)).stderr, /is Python 3\.x/);
    } finally {
        host.done();
    }
});

test("an OS that is neither Ubuntu nor Debian (nor derived from them) is refused naming it", async () => {
    const host = new StubHost();
    try {
        const osRelease = path.join(host.dir, "os-release");
        const check = script(PRELUDE, osReleaseFunctions(), supportedOsLines()).split("/etc/os-release").join(osRelease);
        const cases: [string, boolean][] = [
            ['NAME="Fedora Linux"\nID=fedora\nPRETTY_NAME="Fedora Linux 40 (Server Edition)"\n', false],
            ['PRETTY_NAME="Ubuntu 24.04.1 LTS"\nID=ubuntu\nID_LIKE=debian\n', true],
            ['PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n', true],
            ["PRETTY_NAME='Linux Mint 22'\nID=linuxmint\nID_LIKE=\"ubuntu debian\"", true],
        ];
        for (const [content, supported] of cases) {
            fs.writeFileSync(osRelease, content);
            const r = await host.run(check);
            assert.equal(r.code, supported ? 0 : 1, `${content}: ${r.stderr}`);
        }
        fs.writeFileSync(osRelease, cases[0]![0]);
        assert.match((await host.run(check)).stderr, /unsupported OS: Fedora Linux 40 \(Server Edition\) \(ID=fedora, ID_LIKE=\); amarktai-infra needs Ubuntu \(24\.04 or newer\) or Debian \(13 or newer\)/);
    } finally {
        host.done();
    }
});

/** Runs `refuse_unsafe_parents` for `dir` as the service `svc:svc` on this machine's real files. */
function unsafeParents(dir: string, group = "amarktai-nosuch"): ReturnType<typeof spawnSync> {
    const lines = script(PRELUDE, [`USER_NAME=${group}`, `GROUP_NAME=${group}`], unsafeParentFunction(), [`refuse_unsafe_parents paths.logs ${JSON.stringify(dir)} /var/amarktai/logs`]);
    return spawnSync("bash", ["-c", lines], { encoding: "utf8" });
}

test("a service directory under a parent writable by a group is refused before anything is created, saying why and what to do", () => {
    assert.equal(process.getuid?.(), 0, "needs root: it gives the scratch directories owners");
    const host = new StubHost();
    try {
        const parent = path.join(host.dir, "log");
        fs.mkdirSync(parent);
        fs.chownSync(parent, 0, 1); // group daemon
        fs.chmodSync(parent, 0o775);
        const r = unsafeParents(path.join(parent, "api"));
        assert.equal(r.status, 1);
        assert.equal(
            String(r.stderr).trim(),
            `[amarktai-infra] error: paths.logs: ${parent}/api: its parent ${parent} is writable by group daemon (root:daemon 0775), whose members could replace what is created inside it; choose a directory whose parents only root can write, such as /var/amarktai/logs`,
        );
        assert.equal(fs.existsSync(path.join(parent, "api")), false);
        // Deeper down, the directory is named as on the way; a group-writable parent of the service's own group is trusted.
        assert.match(String(unsafeParents(path.join(parent, "a", "b")).stderr), new RegExp(`${parent} \\(on its way\\) is writable by group daemon`));
        assert.equal(unsafeParents(path.join(parent, "api"), "daemon").status, 0);
        // Root's group may write (as the helper allows); everyone may not; another owner may not; a link is never followed.
        fs.chownSync(parent, 0, 0);
        assert.equal(unsafeParents(path.join(parent, "api")).status, 0);
        fs.chmodSync(parent, 0o1777);
        assert.match(String(unsafeParents(path.join(parent, "api")).stderr), /is writable by everyone \(root:root 1777\), so anyone could replace/);
        fs.chmodSync(parent, 0o755);
        fs.chownSync(parent, 65534, 0);
        assert.match(String(unsafeParents(path.join(parent, "api")).stderr), /is owned by nobody \(nobody:root 0755\), not root/);
        fs.chownSync(parent, 0, 0);
        fs.symlinkSync(parent, path.join(host.dir, "link"));
        assert.match(String(unsafeParents(path.join(host.dir, "link", "api")).stderr), /its parent .*\/link is a symbolic link \(to .*\/log\); amarktai-infra never follows a link/);
        // Missing directories are created by root: nothing below the first missing one is looked at.
        assert.equal(unsafeParents(path.join(parent, "new", "deeper", "api")).status, 0);
    } finally {
        host.done();
    }
});

test("Ubuntu's /var/log (root:syslog 0775) is named as such in the refusal", () => {
    assert.equal(process.getuid?.(), 0, "needs root: it gives the scratch directory an owner");
    const host = new StubHost();
    try {
        // The same check with /var/log and the syslog group standing for a scratch directory and group daemon.
        const varLog = path.join(host.dir, "var-log");
        fs.mkdirSync(varLog);
        fs.chownSync(varLog, 0, 1);
        fs.chmodSync(varLog, 0o775);
        const fn = unsafeParentFunction().join("\n").split("= /var/log ]").join(`= ${varLog} ]`).split("root:syslog 0775").join("root:daemon 0775");
        const r = spawnSync("bash", ["-c", script(PRELUDE, ["USER_NAME=amarktai", "GROUP_NAME=amarktai", fn, `refuse_unsafe_parents paths.logs ${varLog}/api /var/amarktai/logs`])], { encoding: "utf8" });
        assert.match(r.stderr, new RegExp(`paths\\.logs: ${varLog}/api: its parent ${varLog} is writable by group daemon \\(root:daemon 0775, as on stock Ubuntu\\), whose members could replace what is created inside it; choose a directory whose parents only root can write, such as /var/amarktai/logs`));
    } finally {
        host.done();
    }
});

test("the suggested directory is the default's place for the key", () => {
    assert.equal(saferDirectory({ key: "paths.logs", path: "/var/log/api" }), "/var/amarktai/logs");
    assert.equal(saferDirectory({ key: "paths.app", path: "/srv/shared/app" }), "/var/amarktai/app");
    assert.equal(saferDirectory({ key: "paths.workingDirectory", path: "/srv/shared/backend" }), "/var/amarktai/backend");
});

const plan = planService(testConfig({ paths: { logs: "/var/log/amarktai-api" } }), []);
const PREPARE_LINES = prepareScript(plan.prepare, DEFAULT_HOST_WAITS).split("\n");

/** The index of the first line matching `pattern` (which must exist). */
function lineOf(lines: readonly string[], pattern: RegExp): number {
    const i = lines.findIndex((l) => pattern.test(l));
    assert.notEqual(i, -1, `no line matches ${pattern}`);
    return i;
}

test("prepare waits and refuses before its first change to the host; python3's version right after installing it", () => {
    const firstChange = lineOf(PREPARE_LINES, /^\s*(apt_get (update|install)|install -d|groupadd|useradd|: > |.*safe_fs .* mkdir )/);
    assert.match(PREPARE_LINES[firstChange]!, /apt_get update/, "installing python3 is the first change");
    for (const before of [/^case " \$\(os_field ID\)/, /^boot_state=\$\(systemctl is-system-running/, /cloud-init status --wait/, /^refuse_foreign_unit "\$UNIT"/, /already exists on this host and was not created/, /^for i .*refuse_unsafe_parents/]) {
        assert.ok(lineOf(PREPARE_LINES, before) < firstChange, `${before} comes after the first change`);
    }
    const pythonCheck = lineOf(PREPARE_LINES, /python_version=\$\(python3 --version/);
    assert.ok(pythonCheck > firstChange && pythonCheck < lineOf(PREPARE_LINES, /^install -d/), "python3's version is checked once it is there, before anything else is created");
});

test("every detached script checks systemd's version before systemd-run", () => {
    const lines = detachedScript("x", "true\n").split("\n");
    assert.ok(lineOf(lines, /systemctl --version/) < lineOf(lines, /systemd-run/));
    assert.equal(lines.filter((l) => /systemctl --version/.test(l)).length, 1);
});

test("the whole prepare script, on a host with a group-writable log parent, refuses before it changes anything", async () => {
    assert.equal(process.getuid?.(), 0, "needs root: it gives the scratch directory an owner");
    const host = new StubHost();
    try {
        const parent = path.join(host.dir, "log");
        fs.mkdirSync(parent);
        fs.chownSync(parent, 0, 1);
        fs.chmodSync(parent, 0o775);
        host.file("run-cloud-init/result.json", RESULT_OK);
        host.command("systemctl", 'case "$1" in is-system-running) echo running ;; show) ;; *) exit 99 ;; esac');
        for (const change of ["apt-get", "install", "groupadd", "useradd", "cloud-init"]) host.command(change, "exit 97");
        const spec = { ...plan.prepare, user: "amarktai-nosuch", group: "amarktai-nosuch", directories: [{ key: "paths.logs", path: `${parent}/api`, owner: "amarktai-nosuch", group: "amarktai-nosuch", mode: "0750" }] };
        const prepare = prepareScript(spec, DEFAULT_HOST_WAITS).split("/run/cloud-init/").join(`${host.dir}/run-cloud-init/`).split("/var/lib/amarktai-infra").join(`${host.dir}/state`);
        const r = await host.run(prepare);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.stderr, new RegExp(`paths\\.logs: ${parent}/api: its parent ${parent} is writable by group daemon`));
        assert.deepEqual(r.calls.filter((c) => !c.startsWith("systemctl ")), [], "nothing that changes the host ran");
        assert.deepEqual(fs.readdirSync(parent), []);
        assert.equal(fs.existsSync(path.join(host.dir, "state")), false);
    } finally {
        host.done();
    }
});
