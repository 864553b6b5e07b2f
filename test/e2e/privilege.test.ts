/**
 * The privilege boundary on a real VM with the real CLI: config that would
 * take over the host is refused (at preview, or on the host before anything
 * changes); nothing the service user plants in its own directories steers a
 * root deploy step (root-owned canaries keep their content, owner and mode);
 * a secret-flagged plain value never appears in plain text; and
 * `purgeOnDestroy` removes only what the library created. One VM, shared by
 * every step in order; each step leaves it in a known state.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { TestStack } from "../../tools/stack";
import { REPO, VmInfo, hostCounters, startVm, stopVm, vmPrivateKey, vmRun, vmSsh } from "../../tools/vm";

const MINUTE = 60_000;
const NS = "amarktai-infra";
const BACKEND = "/var/amarktai/app/backend";
const ENV_STORE = "/etc/amarktai-infra/amarktai-api/env";
/** A plain key's value set with --secret: must never be seen in plain text. */
const LEAKY = `leaky-${process.pid}-value-set-with-secret`;

let vm: VmInfo;
let stack: TestStack;
/** A copy of the demo app (in the checkout's ignored `out/`) whose files the steps change. */
let appDir: string;
/** The canaries' fingerprint taken before any deploy. */
let canariesBefore: string;

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Owner, mode, size and content hash of the root-owned canary file and directory (and the file inside it). */
function canaries(): string {
    return vmRun(vm, "stat -c '%n %U:%G %a %s' /root/canary /srv/rootdir /srv/rootdir/inside && sha256sum /root/canary /srv/rootdir/inside && ls -A /srv/rootdir", { root: true });
}

function health(): string {
    return vmSsh(vm, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/health").stdout.trim();
}

function envDigest(name: string): string | null {
    return (JSON.parse(vmRun(vm, `curl -fsS 'http://127.0.0.1:8000/debug/env-digest?name=${name}'`)) as { sha256: string | null }).sha256;
}

function writeApp(version: string): void {
    const server = fs.readFileSync(path.join(REPO, "demo-app", "server.py"), "utf8");
    fs.writeFileSync(path.join(appDir, "server.py"), `${server}\n# version ${version}\n`);
    fs.writeFileSync(path.join(appDir, "extra.py"), `VERSION = ${JSON.stringify(version)}\n`);
}

/** What must not change on the host when a config is refused. */
function hostSnapshot(): string {
    return vmRun(
        vm,
        "stat -c '%n %U:%G %a' /etc /etc/hostname /var/amarktai /var/amarktai/logs; ls -la --time-style=+ /etc/systemd/system | sha256sum; test ! -e /var/lib/amarktai-infra && echo no-state; test ! -e /var/amarktai/app && echo no-app; id amarktai",
        { root: true },
    );
}

before(async () => {
    vm = startVm(`e2e-priv-${process.pid}`);
    // Root-owned canaries, and a user and a log directory that exist before the library ever runs.
    vmRun(
        vm,
        [
            "printf 'canary, root only\\n' > /root/canary && chmod 0600 /root/canary",
            "install -d -o root -g root -m 0700 /srv/rootdir && printf 'inside\\n' > /srv/rootdir/inside && chmod 0600 /srv/rootdir/inside",
            "groupadd --system amarktai && useradd --system --gid amarktai --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin amarktai",
            "install -d -o root -g root -m 0755 /var/amarktai && install -d -o amarktai -g amarktai -m 0750 /var/amarktai/logs",
        ].join(" && "),
        { root: true },
    );
    canariesBefore = canaries();
    fs.mkdirSync(path.join(REPO, "out"), { recursive: true });
    appDir = fs.mkdtempSync(path.join(REPO, "out", "privilege-app-"));
    writeApp("1");
    stack = await TestStack.create("priv");
    await stack.setConfig({
        hosts: [{ name: "vm", address: vm.host, port: vm.port, user: vm.user, hostKey: vm.hostKey }],
        app: { sourceDir: appDir },
        env: { FLAG: "one" },
        purgeOnDestroy: true,
    });
    await stack.setSecret("sshPrivateKey", vmPrivateKey(vm));
    await stack.setSecret("secretEnv.OPENAI_API_KEY", `sk-${process.pid}-privilege`);
});

after(() => {
    if (vm) stopVm(vm.name);
    stack?.cleanup();
    if (appDir) fs.rmSync(appDir, { recursive: true, force: true });
});

test("serviceName ssh, paths.logs /etc and user root are refused naming the key, before any SSH session; sshd still answers and /etc is unchanged", { timeout: 10 * MINUTE }, async () => {
    const snapshot = hostSnapshot();
    const before = hostCounters(vm);
    const cases: [Record<string, unknown>, string, RegExp][] = [
        [{ serviceName: "ssh" }, `${NS}:serviceName`, /system unit name/],
        [{ paths: { logs: "/etc" } }, `${NS}:paths.logs`, /\/etc is a system directory/],
        [{ user: "root" }, `${NS}:user`, /must not be root/],
    ];
    for (const [patch, key, words] of cases) {
        await stack.setConfig(patch);
        const r = await stack.up();
        assert.notEqual(r.code, 0, `${key} was accepted`);
        const line = (r.stdout + r.stderr).split("\n").find((l) => l.includes(`${key}: `));
        assert.ok(line, `no refusal naming ${key}:\n${(r.stdout + r.stderr).slice(-3000)}`);
        assert.match(line, words);
        await stack.removeConfig(...Object.keys(patch));
    }
    assert.equal(hostCounters(vm).sessions - before.sessions, 1, "an SSH session was opened (the count includes the counting one)");
    assert.equal(hostSnapshot(), snapshot, "the host changed");
    assert.equal(vmRun(vm, "systemctl is-active ssh", { root: true }).trim(), "active");
});

test("on the host, an existing user the library did not create and an existing unit it did not write are refused before anything changes", { timeout: 10 * MINUTE }, async () => {
    const snapshot = hostSnapshot();
    const user = await stack.up();
    assert.notEqual(user.code, 0, "a pre-existing user was taken over without allowExistingUser");
    assert.match(user.stdout + user.stderr, /user: amarktai already exists on this host and was not created by amarktai-infra; set adopt: true on this host \(hosts\[i\]\.adopt\) to take over a hand-made install of the service notes, or allowExistingUser: true/);
    assert.equal(hostSnapshot(), snapshot, "the host changed");

    vmRun(vm, "printf '[Service]\\nExecStart=/bin/true\\n' > /etc/systemd/system/handmade-api.service", { root: true });
    const unitBefore = vmRun(vm, "sha256sum /etc/systemd/system/handmade-api.service", { root: true });
    await stack.setConfig({ serviceName: "handmade-api", allowExistingUser: true });
    const unit = await stack.up();
    assert.notEqual(unit.code, 0, "a hand-made unit was replaced");
    assert.match(unit.stdout + unit.stderr, /serviceName: handmade-api\.service already exists on this host \(\/etc\/systemd\/system\/handmade-api\.service\) and was not written by amarktai-infra/);
    assert.equal(vmRun(vm, "sha256sum /etc/systemd/system/handmade-api.service", { root: true }), unitBefore);
    await stack.removeConfig("serviceName");
    vmRun(vm, "rm /etc/systemd/system/handmade-api.service", { root: true });
    assert.equal(hostSnapshot().replace(/^.*systemd\/system.*$/m, ""), snapshot.replace(/^.*systemd\/system.*$/m, ""), "the host changed");
});

test("a value set with --secret in env is refused at preview and up, and never appears in plain text", { timeout: 10 * MINUTE }, async () => {
    await stack.setSecret("env.LEAKY", LEAKY);
    const preview = await stack.run(["preview", "--diff"]);
    const up = await stack.run(["up", "--yes", "--skip-preview", "--diff"]);
    for (const [what, r] of [["preview --diff", preview], ["up --diff", up]] as const) {
        assert.notEqual(r.code, 0, `${what} accepted a secret in env`);
        assert.match(r.stdout + r.stderr, /amarktai-infra:env: holds a value set with --secret.*secretEnv/);
        assert.ok(!(r.stdout + r.stderr).includes(LEAKY), `the value appeared in ${what}`);
    }
    const exported = await stack.mustRun(["stack", "export"]);
    assert.ok(!exported.stdout.includes(LEAKY), "the value appeared in stack export");
    await stack.removeConfig("env");
    await stack.setConfig({ env: { FLAG: "one" } });
});

test("the first deploy, as a user that existed before (allowExistingUser), is healthy; the .env is root's, the notes' path a root-owned link", { timeout: 15 * MINUTE }, async () => {
    const r = await stack.up();
    assert.equal(r.code, 0, `up failed:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
    assert.equal(health(), "200");
    assert.equal(vmRun(vm, `stat -c '%a %U %G' ${ENV_STORE} /etc/amarktai-infra/amarktai-api`, { root: true }).trim(), "640 root amarktai\n755 root root");
    assert.equal(vmRun(vm, `stat -c '%U %N' ${BACKEND}/.env`, { root: true }).trim(), `root '${BACKEND}/.env' -> '${ENV_STORE}'`);
    assert.equal(vmSsh(vm, `runuser -u amarktai -- /bin/sh -c ${shq(`printf x >> ${ENV_STORE}`)}`, { root: true }).code === 0, false, "the service can write its .env");
    assert.equal(canaries(), canariesBefore);
});

test("links and a hardlink planted at every path a deploy writes do not steer it: canaries unchanged, deploy succeeds", { timeout: 15 * MINUTE }, async () => {
    // Every name root writes or used to write in the app's directories: targets, the old fixed temp names, the venv marker.
    const plants = [
        `cd ${BACKEND}`,
        "rm -f server.py && ln -s /root/canary server.py",
        "ln -s /root/canary server.py.amarktai-infra.tmp",
        "rm -f .env && ln -s /root/canary .env",
        "ln -s /root/canary .env.amarktai-infra.tmp",
        "ln -s /srv/rootdir extra.py.amarktai-infra.tmp",
        "ln -s /root/canary /var/amarktai/venv/.amarktai-infra-requirements.tmp",
    ];
    // The app and its venv are a root-owned release: the service user cannot plant anything there.
    for (const plant of plants.slice(1)) {
        assert.notEqual(vmSsh(vm, `runuser -u amarktai -- /bin/sh -c ${shq(`${plants[0]} && ${plant}`)}`, { root: true }).code, 0, `the service user could ${plant}`);
    }
    // Plant them as root, as if it could (and the hardlink, which fs.protected_hardlinks would stop anyway): a new release never writes through them.
    vmRun(vm, [...plants, "rm -f extra.py && ln /root/canary extra.py"].join(" && "), { root: true });
    writeApp("2");
    await stack.setConfig({ env: { FLAG: "two" } });
    const r = await stack.up();
    assert.equal(r.code, 0, `up failed:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
    assert.equal(canaries(), canariesBefore, "a canary changed");
    assert.equal(health(), "200");
    assert.equal(envDigest("FLAG"), (await import("crypto")).createHash("sha256").update("two").digest("hex"));
    assert.equal(vmRun(vm, `stat -c '%F %U %G %a %h' ${BACKEND}/server.py ${BACKEND}/extra.py`, { root: true }).trim(), "regular file root root 644 1\nregular file root root 644 1");
    assert.match(vmRun(vm, `tail -n 1 ${BACKEND}/server.py`, { root: true }), /# version 2/);
    assert.equal(vmRun(vm, `stat -c '%U %N' ${BACKEND}/.env`, { root: true }).trim(), `root '${BACKEND}/.env' -> '${ENV_STORE}'`);
    assert.match(vmRun(vm, `cat ${ENV_STORE}`, { root: true }), /^FLAG=two$/m);
});

test("a working directory swapped for a link to a root directory does not steer the deploy: the canary untouched, the link put back", { timeout: 15 * MINUTE }, async () => {
    // The working directory is a root-owned link in a root-owned directory: the service user cannot swap it.
    assert.notEqual(vmSsh(vm, `runuser -u amarktai -- /bin/sh -c ${shq(`mv ${BACKEND} ${BACKEND}.moved || ln -sfn /srv/rootdir ${BACKEND}`)}`, { root: true }).code, 0, "the service user swapped its working directory");
    // As root, as if it could: the next deploy (app, .env and requirements changed) replaces the link, never writes through it.
    vmRun(vm, `ln -sfnT /srv/rootdir ${BACKEND}`, { root: true });
    writeApp("3");
    await stack.setConfig({ env: { FLAG: "three" }, app: { sourceDir: appDir, requirements: ["uvicorn==0.38.0", "six==1.17.0"] } });
    const again = await stack.up();
    assert.equal(again.code, 0, `up failed:\n${again.stdout.slice(-4000)}\n${again.stderr.slice(-4000)}`);
    assert.equal(health(), "200");
    assert.match(vmRun(vm, `tail -n 1 ${BACKEND}/server.py`, { root: true }), /# version 3/);
    assert.equal(vmRun(vm, `stat -c '%U %N' ${BACKEND}`, { root: true }).trim(), `root '${BACKEND}' -> '/var/amarktai/releases/current/app'`);
    assert.equal(canaries(), canariesBefore, "a canary changed");
});

test("destroy with purgeOnDestroy removes what the library created and keeps the user and the log directory that existed before", { timeout: 10 * MINUTE }, async () => {
    const r = await stack.run(["destroy", "--yes", "--skip-preview"]);
    assert.equal(r.code, 0, `destroy failed:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
    assert.equal(vmRun(vm, "id -un amarktai").trim(), "amarktai");
    assert.equal(vmRun(vm, "stat -c '%U %G %a' /var/amarktai/logs", { root: true }).trim(), "amarktai amarktai 750");
    assert.equal(vmSsh(vm, "test -e /var/amarktai/app || test -e /var/amarktai/venv || test -e /etc/amarktai-infra/amarktai-api || test -e /etc/systemd/system/amarktai-api.service", { root: true }).code, 1, "something the library created is left");
    assert.equal(canaries(), canariesBefore, "a canary changed");
    // The secret-flagged value never reached the host or the state.
    assert.equal(vmSsh(vm, "journalctl -q --no-pager -o cat | grep -c -F -f /dev/stdin", { root: true, input: `${LEAKY}\n` }).stdout.trim(), "0");
    const stateFiles = fs.readdirSync(path.join(stack.dir, "state"), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    assert.ok(stateFiles.length > 0);
    for (const f of stateFiles) {
        assert.ok(!fs.readFileSync(path.join(f.parentPath, f.name), "utf8").includes(LEAKY), `the value is in ${f.name}`);
    }
});
