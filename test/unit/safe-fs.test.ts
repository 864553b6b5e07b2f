/**
 * The safe file-operation helper, run for real against a scratch tree:
 * root's writes, moves, ownership changes and removals in a directory an
 * unprivileged account owns never follow what that account planted.
 * `nobody:nogroup` plays the service's account. Needs root (chown).
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { execFileSync, spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { SAFE_FS_PY, parseEnvRead } from "../../components/host";
import { renderEnvFile } from "../../components/systemd";
import { NOBODY, rootScratch, serviceTree } from "../support/safe-fs-tree";

const TRUST = ["--trust", "nobody:nogroup"];

/** A scratch tree under a root-owned directory (never /tmp: the helper refuses directories everyone can write). */
function scratch(): { root: string; helper: string; done: () => void } {
    const root = rootScratch(".safe-fs-");
    const helper = path.join(root, "safe-fs.py");
    fs.writeFileSync(helper, SAFE_FS_PY);
    return { root, helper, done: () => fs.rmSync(root, { recursive: true, force: true }) };
}

function run(helper: string, args: string[]): { status: number; stdout: string; stderr: string } {
    const r = spawnSync("python3", [helper, ...args], { encoding: "utf8" });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A root-owned 0600 canary file and 0700 canary directory, with a fingerprint of both. */
function canaries(root: string): { file: string; dir: string; fingerprint: () => string } {
    const file = path.join(root, "canary");
    const dir = path.join(root, "canary-dir");
    fs.writeFileSync(file, "canary\n", { mode: 0o600 });
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.writeFileSync(path.join(dir, "inside"), "inside\n", { mode: 0o600 });
    const fingerprint = () =>
        [file, dir, path.join(dir, "inside")]
            .map((p) => {
                const st = fs.lstatSync(p);
                return `${p} ${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)} ${st.isFile() ? fs.readFileSync(p, "utf8") : fs.readdirSync(p).join(",")}`;
            })
            .join("\n");
    return { file, dir, fingerprint };
}

test("install writes through a fresh temporary file: content, owner and mode set, nothing left behind", () => {
    const { root, helper, done } = scratch();
    try {
        const { svc, staged } = serviceTree(root);
        const target = path.join(svc, "sub", ".env");
        const r = run(helper, [...TRUST, "install", staged, target, "root", "nogroup", "0640"]);
        assert.equal(r.status, 0, r.stderr);
        assert.equal(fs.readFileSync(target, "utf8"), "NEW CONTENT\n");
        const st = fs.statSync(target);
        assert.deepEqual([st.uid, st.gid, (st.mode & 0o7777).toString(8)], [0, NOBODY, "640"]);
        assert.deepEqual(fs.readdirSync(path.dirname(target)), [".env"]);
        assert.equal(fs.statSync(path.dirname(target)).uid, 0, "a missing parent is created root-owned");
    } finally {
        done();
    }
});

test("install replaces a planted symlink at the target (or at the old temp name) without touching what it points to", () => {
    const { root, helper, done } = scratch();
    try {
        const c = canaries(root);
        const before = c.fingerprint();
        const { svc, staged } = serviceTree(root);
        const target = path.join(svc, "server.py");
        fs.symlinkSync(c.file, target);
        fs.symlinkSync(c.file, `${target}.amarktai-infra.tmp`);
        fs.lchownSync(target, NOBODY, NOBODY);
        const r = run(helper, [...TRUST, "install", staged, target, "nobody", "nogroup", "0644"]);
        assert.equal(r.status, 0, r.stderr);
        assert.ok(!fs.lstatSync(target).isSymbolicLink(), "the link was replaced by a file");
        assert.equal(fs.readFileSync(target, "utf8"), "NEW CONTENT\n");
        assert.equal(c.fingerprint(), before, "the canary changed");
    } finally {
        done();
    }
});

test("install over a hardlink to a root file leaves that file as it was", () => {
    const { root, helper, done } = scratch();
    try {
        const c = canaries(root);
        const before = c.fingerprint();
        const { svc, staged } = serviceTree(root);
        const target = path.join(svc, ".env");
        fs.linkSync(c.file, target);
        const r = run(helper, [...TRUST, "install", staged, target, "root", "nogroup", "0640"]);
        assert.equal(r.status, 0, r.stderr);
        assert.equal(fs.statSync(target).nlink, 1);
        assert.equal(c.fingerprint(), before, "the canary changed");
    } finally {
        done();
    }
});

test("a directory swapped for a symlink is refused with a clear message and nothing is written", () => {
    const { root, helper, done } = scratch();
    try {
        const c = canaries(root);
        const before = c.fingerprint();
        const { svc, staged } = serviceTree(root);
        fs.symlinkSync(c.dir, path.join(svc, "backend"));
        const r = run(helper, [...TRUST, "install", staged, path.join(svc, "backend", ".env"), "root", "nogroup", "0640"]);
        assert.equal(r.status, 2);
        assert.match(r.stderr, /refused: .*backend is a symlink or not a directory; refusing to follow it/);
        const m = run(helper, [...TRUST, "mkdir", path.join(svc, "backend"), "nobody", "nogroup", "0755"]);
        assert.equal(m.status, 2);
        assert.match(m.stderr, /backend is a symlink or not a directory/);
        assert.equal(c.fingerprint(), before, "the canary changed");
    } finally {
        done();
    }
});

test("a directory owned by an account that is not trusted is refused", () => {
    const { root, helper, done } = scratch();
    try {
        const { svc, staged } = serviceTree(root);
        const r = run(helper, ["install", staged, path.join(svc, "x"), "root", "root", "0644"]);
        assert.equal(r.status, 2);
        assert.match(r.stderr, /owned by uid 65534 \(nobody:nogroup 0755\), not by root or the service user/);
    } finally {
        done();
    }
});

test("same says 'differs' for a planted link even when it points at identical content", () => {
    const { root, helper, done } = scratch();
    try {
        const { svc, staged } = serviceTree(root);
        const target = path.join(svc, "f");
        fs.symlinkSync(staged, target);
        assert.equal(run(helper, [...TRUST, "same", staged, target, "root", "root", "0600"]).status, 10);
        fs.rmSync(target);
        assert.equal(run(helper, [...TRUST, "install", staged, target, "root", "root", "0600"]).status, 0);
        assert.equal(run(helper, [...TRUST, "same", staged, target, "root", "root", "0600"]).status, 0);
        assert.equal(run(helper, [...TRUST, "same", staged, target, "root", "root", "0644"]).status, 10);
    } finally {
        done();
    }
});

test("backup and restore put back a file with its owner and mode, and remove what was absent or planted", () => {
    const { root, helper, done } = scratch();
    try {
        const c = canaries(root);
        const before = c.fingerprint();
        const { svc, staged } = serviceTree(root);
        const backup = path.join(root, "backup");
        fs.mkdirSync(backup, { mode: 0o700 });
        const kept = path.join(svc, "kept");
        fs.writeFileSync(kept, "OLD\n", { mode: 0o640 });
        fs.chownSync(kept, 0, NOBODY);
        assert.equal(run(helper, [...TRUST, "backup", kept, backup, "k1"]).stdout.trim(), "present");
        const planted = path.join(svc, "planted");
        fs.symlinkSync(c.file, planted);
        fs.lchownSync(planted, NOBODY, NOBODY);
        assert.equal(run(helper, [...TRUST, "backup", planted, backup, "k2"]).stdout.trim(), "absent");
        assert.equal(run(helper, [...TRUST, "install", staged, kept, "nobody", "nogroup", "0644"]).status, 0);
        assert.equal(run(helper, [...TRUST, "restore", backup, "k1", kept]).status, 0);
        assert.equal(fs.readFileSync(kept, "utf8"), "OLD\n");
        const st = fs.statSync(kept);
        assert.deepEqual([st.uid, st.gid, (st.mode & 0o7777).toString(8)], [0, NOBODY, "640"]);
        assert.equal(run(helper, [...TRUST, "restore", backup, "k2", planted]).status, 0);
        assert.ok(!fs.existsSync(planted) && !fs.lstatSync(svc).isSymbolicLink());
        assert.equal(c.fingerprint(), before, "the canary changed");
    } finally {
        done();
    }
});

test("symlink replaces a regular file at the path with a root-owned link; remove never follows a link", () => {
    const { root, helper, done } = scratch();
    try {
        const c = canaries(root);
        const before = c.fingerprint();
        const { svc } = serviceTree(root);
        const link = path.join(svc, ".env");
        fs.writeFileSync(link, "old regular file\n");
        assert.equal(run(helper, [...TRUST, "symlink", "/etc/amarktai-infra/x/env", link]).status, 0);
        assert.equal(fs.readlinkSync(link), "/etc/amarktai-infra/x/env");
        assert.equal(fs.lstatSync(link).uid, 0);
        const planted = path.join(svc, "20-old.conf");
        fs.symlinkSync(c.file, planted);
        const r = run(helper, [...TRUST, "remove", planted, "# marker"]);
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, /leaving .* alone/);
        assert.equal(run(helper, [...TRUST, "remove", planted]).status, 0);
        assert.ok(!fs.existsSync(planted));
        assert.equal(c.fingerprint(), before, "the canary changed");
    } finally {
        done();
    }
});

test("mkdir creates and reports what it made, keeps a directory its owner already has, and refuses to re-own a foreign one", () => {
    const { root, helper, done } = scratch();
    try {
        const made = run(helper, [...TRUST, "mkdir", path.join(root, "a", "b"), "nobody", "nogroup", "0750"]);
        assert.equal(made.status, 0, made.stderr);
        assert.deepEqual(made.stdout.trim().split("\n"), [`parent ${path.join(root, "a")}`, `created ${path.join(root, "a", "b")}`]);
        const st = fs.statSync(path.join(root, "a", "b"));
        assert.deepEqual([st.uid, (st.mode & 0o7777).toString(8)], [NOBODY, "750"]);
        assert.equal(run(helper, [...TRUST, "mkdir", path.join(root, "a", "b"), "nobody", "nogroup", "0755"]).stdout.trim(), `exists ${path.join(root, "a", "b")}`);
        fs.mkdirSync(path.join(root, "foreign"), { mode: 0o700 });
        const refused = run(helper, [...TRUST, "mkdir", path.join(root, "foreign"), "nobody", "nogroup", "0755"]);
        assert.equal(refused.status, 2);
        assert.match(refused.stderr, /already exists, owned by root, and was not created by amarktai-infra; refusing to re-own it/);
        assert.equal(fs.statSync(path.join(root, "foreign")).uid, 0);
        assert.equal(run(helper, [...TRUST, "mkdir", path.join(root, "foreign"), "nobody", "nogroup", "0755", "adopt"]).status, 0);
        // A directory the service account owns becomes root's only when the library made it (adopt).
        const svcOwned = path.join(root, "svc-owned");
        fs.mkdirSync(svcOwned, { mode: 0o755 });
        fs.chownSync(svcOwned, NOBODY, NOBODY);
        assert.equal(run(helper, [...TRUST, "mkdir", svcOwned, "root", "root", "0755"]).status, 2);
        assert.equal(fs.statSync(svcOwned).uid, NOBODY);
        const adopted = run(helper, [...TRUST, "mkdir", svcOwned, "root", "root", "0755", "adopt"]);
        assert.equal(adopted.status, 0, adopted.stderr);
        assert.deepEqual([fs.statSync(svcOwned).uid, fs.statSync(svcOwned).gid], [0, 0]);
        // Without the service account trusted, adopt still takes only root's.
        fs.chownSync(svcOwned, NOBODY, NOBODY);
        assert.equal(run(helper, ["mkdir", svcOwned, "root", "root", "0755", "adopt"]).status, 2);
    } finally {
        done();
    }
});

test("rmtree removes a tree without following links planted inside it", () => {
    const { root, helper, done } = scratch();
    try {
        const c = canaries(root);
        const before = c.fingerprint();
        const tree = path.join(root, "tree");
        fs.mkdirSync(path.join(tree, "deep"), { recursive: true });
        fs.symlinkSync(c.dir, path.join(tree, "deep", "link"));
        fs.symlinkSync(c.file, path.join(tree, "file-link"));
        assert.equal(run(helper, ["rmtree", tree]).status, 0);
        assert.ok(!fs.existsSync(tree));
        assert.equal(c.fingerprint(), before, "the canary changed");
    } finally {
        done();
    }
});

test("rmdir removes an empty directory, and leaves a full, missing or unsafely reached one alone, exiting 0", () => {
    const { root, helper, done } = scratch();
    try {
        fs.mkdirSync(path.join(root, "empty"));
        fs.mkdirSync(path.join(root, "full"));
        fs.writeFileSync(path.join(root, "full", "x"), "x\n");
        fs.symlinkSync(path.join(root, "full"), path.join(root, "link"));
        assert.equal(run(helper, ["rmdir", path.join(root, "empty")]).status, 0);
        assert.equal(fs.existsSync(path.join(root, "empty")), false);
        assert.equal(run(helper, ["rmdir", path.join(root, "full")]).status, 0);
        assert.equal(run(helper, ["rmdir", path.join(root, "missing")]).status, 0);
        assert.equal(run(helper, ["rmdir", path.join(root, "link", "x")]).status, 0);
        assert.deepEqual(fs.readdirSync(path.join(root, "full")), ["x"]);
    } finally {
        done();
    }
});

test("a directory writable by a group other than root's or the service's is refused, saying by whom and why, and nothing is made inside it", () => {
    const { root, helper, done } = scratch();
    try {
        // Like Ubuntu's /var/log (root:syslog 0775), with group daemon.
        const log = path.join(root, "log");
        fs.mkdirSync(log);
        fs.chownSync(log, 0, 1);
        fs.chmodSync(log, 0o775);
        const r = run(helper, [...TRUST, "mkdir", path.join(log, "api"), "nobody", "nogroup", "0750"]);
        assert.equal(r.status, 2);
        assert.equal(r.stderr.trim(), `[amarktai-infra] refused: ${log} is writable by group daemon (root:daemon 0775), whose members could replace what is created inside it; refusing to work inside it: choose a directory whose parents only root can write`);
        assert.deepEqual(fs.readdirSync(log), []);
        fs.chmodSync(log, 0o777);
        assert.match(run(helper, [...TRUST, "mkdir", path.join(log, "api"), "nobody", "nogroup", "0750"]).stderr, /is writable by everyone \(root:daemon 0777\), so anyone could replace what is created inside it/);
        // The service's own group may write there (it is trusted like the service user).
        fs.chownSync(log, 0, NOBODY);
        fs.chmodSync(log, 0o775);
        assert.equal(run(helper, [...TRUST, "mkdir", path.join(log, "api"), "nobody", "nogroup", "0750"]).status, 0);
    } finally {
        done();
    }
});

test("a missing parent directory made by another deploy at the same moment is used as an existing one, not an error", () => {
    const { root, helper, done } = scratch();
    try {
        const staged = path.join(root, "staged");
        fs.writeFileSync(staged, "[Journal]\nSystemMaxUse=1G\n", { mode: 0o600 });
        // The other deploy wins the race: the directory appears between this helper's open (missing) and its mkdir.
        const racing = path.join(root, "racing.py");
        fs.writeFileSync(racing, ["import os, sys", "real_mkdir = os.mkdir", "def other_deploy_first(name, mode=0o777, *, dir_fd=None):", "    real_mkdir(name, 0o700, dir_fd=dir_fd)", "    os.chmod(name, 0o755, dir_fd=dir_fd)", "    raise FileExistsError(17, 'File exists', name)", "os.mkdir = other_deploy_first", `sys.argv = [${JSON.stringify(helper)}] + sys.argv[1:]`, `exec(compile(open(${JSON.stringify(helper)}).read(), ${JSON.stringify(helper)}, "exec"))`].join("\n"));
        const dest = path.join(root, "journald.conf.d", "60-amarktai-infra-amarktai-worker.conf");
        const r = run(racing, ["install", staged, dest, "root", "root", "0644"]);
        assert.equal(r.status, 0, r.stderr);
        assert.equal(fs.readFileSync(dest, "utf8"), "[Journal]\nSystemMaxUse=1G\n");
        const st = fs.statSync(path.dirname(dest));
        assert.deepEqual([st.uid, st.mode & 0o777], [0, 0o755]);
    } finally {
        done();
    }
});

/** A hand-made install as the service notes describe it: `app/` and `app/backend/` owned by the service account, `.env` inside. */
function handMadeInstall(root: string, content: string): { env: string; store: string } {
    const app = path.join(root, "app");
    const backend = path.join(app, "backend");
    fs.mkdirSync(backend, { recursive: true, mode: 0o755 });
    fs.chownSync(app, NOBODY, NOBODY);
    fs.chownSync(backend, NOBODY, NOBODY);
    const env = path.join(backend, ".env");
    fs.writeFileSync(env, content, { mode: 0o640 });
    fs.chownSync(env, NOBODY, NOBODY);
    // The library's own store, absent: nothing was deployed yet.
    return { env, store: path.join(root, "etc", "amarktai-api", "env") };
}

test("the JWT_SECRET of a hand-made install is kept: env-value reads it through the service-owned app directory when the service account is trusted, and fails loudly (not silently empty) when it is not", () => {
    const { root, helper, done } = scratch();
    try {
        const { env, store } = handMadeInstall(root, "JWT_SECRET=kept-secret-value\nOTHER=x\n");
        const trusted = run(helper, [...TRUST, "env-value", "JWT_SECRET", store, env]);
        assert.equal(trusted.status, 0, trusted.stderr);
        assert.equal(trusted.stdout, "kept-secret-value");
        const untrusted = run(helper, ["env-value", "JWT_SECRET", store, env]);
        assert.equal(untrusted.status, 2);
        assert.equal(untrusted.stdout, "");
        assert.match(untrusted.stderr, new RegExp(`refused: ${path.join(root, "app")} is owned by uid 65534 \\(nobody:nogroup 0755\\), not by root or the service user`));
        assert.doesNotMatch(untrusted.stderr, /kept-secret-value/);
    } finally {
        done();
    }
});

test("env-value skips an absent file (or a missing directory on the way) but refuses a link as the file or on the way, never printing the value", () => {
    const { root, helper, done } = scratch();
    try {
        const real = path.join(root, "real");
        fs.mkdirSync(real, { mode: 0o755 });
        fs.writeFileSync(path.join(real, ".env"), "JWT_SECRET=linked-secret-value\n", { mode: 0o600 });
        const absent = run(helper, ["env-value", "JWT_SECRET", path.join(root, "missing-dir", ".env"), path.join(real, "missing")]);
        assert.deepEqual([absent.status, absent.stdout, absent.stderr], [0, "", ""]);
        fs.symlinkSync(path.join(real, ".env"), path.join(real, "planted"));
        fs.symlinkSync(real, path.join(root, "linked"));
        for (const [target, why] of [
            [path.join(real, "planted"), /planted is a symlink or not a regular file; refusing to follow or read it/],
            [path.join(root, "linked", ".env"), /linked is a symlink or not a directory; refusing to follow it/],
        ] as const) {
            const r = run(helper, ["env-value", "JWT_SECRET", path.join(real, "missing"), target]);
            assert.equal(r.status, 2, target);
            assert.equal(r.stdout, "", target);
            assert.match(r.stderr, why);
            assert.doesNotMatch(r.stderr, /linked-secret-value/);
        }
    } finally {
        done();
    }
});

/** Runs the helper with a bound on its time: a read that blocked (a FIFO) fails instead of hanging the suite. */
function runBounded(helper: string, args: string[]): { status: number; stdout: string; stderr: string } {
    const r = spawnSync("python3", [helper, ...args], { encoding: "utf8", timeout: 60_000 });
    assert.equal(r.error, undefined, `the helper did not finish: ${r.error?.message}`);
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test("env-read returns every assignment of a present file as systemd's EnvironmentFile reads it (quotes, escapes, continuations, comments), with its owner, mode and digest", () => {
    const { root, helper, done } = scratch();
    try {
        const content = [
            "# a comment",
            "; another comment",
            "PLAIN=simple",
            "PADDED =   padded value   ",
            `SINGLE='a "b" $c \\d'`,
            'DOUBLE="a \\"b\\" \\$c \\\\d \\n \\`e\\`"',
            "ESCAPED=a\\ b\\\\c",
            "CONTINUED=first \\",
            "second",
            `MIXED="dq"'sq'bare`,
            "HASH=a # not a comment",
            "TAB=a\tb",
            "DUP=first",
            "DUP=second",
            "",
        ].join("\n");
        const { env } = handMadeInstall(root, content);
        const r = runBounded(helper, [...TRUST, "env-read", env]);
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stdout.split("\n").length, 2, "one JSON line");
        assert.deepEqual(parseEnvRead(r.stdout), {
            state: "present",
            owner: "nobody",
            group: "nogroup",
            mode: "0640",
            sha256: createHash("sha256").update(content).digest("hex"),
            values: {
                PLAIN: "simple",
                PADDED: "padded value",
                SINGLE: 'a "b" $c \\d',
                DOUBLE: 'a "b" $c \\d \\n `e`',
                ESCAPED: "a b\\c",
                CONTINUED: "first second",
                MIXED: "dqsqbare",
                HASH: "a # not a comment",
                TAB: "a\tb",
                DUP: "second",
            },
        });
        // What the library writes comes back exactly.
        const written = { JWT_SECRET: `a"b'c$d\`e\\f # g  `, OTHER: "x", EMPTY: "" };
        fs.writeFileSync(env, renderEnvFile(written));
        const back = parseEnvRead(runBounded(helper, [...TRUST, "env-read", env]).stdout);
        assert.equal(back.state, "present");
        assert.deepEqual(back.state === "present" ? back.values : undefined, written);
    } finally {
        done();
    }
});

test("env-read says absent for a missing file and for a missing directory on the way", () => {
    const { root, helper, done } = scratch();
    try {
        for (const target of [path.join(root, ".env"), path.join(root, "no", "such", ".env")]) {
            const r = runBounded(helper, ["env-read", target]);
            assert.equal(r.status, 0, r.stderr);
            assert.equal(r.stdout, '{"state":"absent"}\n');
            assert.deepEqual(parseEnvRead(r.stdout), { state: "absent" });
        }
    } finally {
        done();
    }
});

test("env-read refuses a link as the file or on the way, a hard link, a FIFO, a third-party owner, an untrusted directory, more than 64 KiB, non-UTF-8 text and a control character, naming the path and never a value", () => {
    const { root, helper, done } = scratch();
    try {
        const dir = path.join(root, "env");
        fs.mkdirSync(dir, { mode: 0o755 });
        const file = (name: string, content: string | Buffer, uid = 0) => {
            const p = path.join(dir, name);
            fs.writeFileSync(p, content, { mode: 0o600 });
            fs.chownSync(p, uid, 0);
            return p;
        };
        const good = file("good.env", "JWT_SECRET=refused-secret-value\n");
        fs.symlinkSync(good, path.join(dir, "link.env"));
        fs.symlinkSync(dir, path.join(root, "linked-dir"));
        fs.linkSync(file("hard.env", "JWT_SECRET=refused-secret-value\n"), path.join(dir, "hard-2.env"));
        execFileSync("mkfifo", ["-m", "0600", path.join(dir, "fifo.env")]);
        file("daemon.env", "JWT_SECRET=refused-secret-value\n", 1);
        file("big.env", `JWT_SECRET=${"S".repeat(64 * 1024)}\n`);
        file("latin1.env", Buffer.from("JWT_SECRET=refused-secret-value\xe9\n", "latin1"));
        file("control.env", "JWT_SECRET=refused-secret-\u0001value\n");
        file("newline.env", 'JWT_SECRET="refused-secret-value\nsecond line"\n');
        const { env: serviceOwnedDir } = handMadeInstall(root, "JWT_SECRET=refused-secret-value\n");
        const cases: [string, string[], RegExp][] = [
            ["a link as the file", [...TRUST, "env-read", path.join(dir, "link.env")], /link\.env is a symlink or not a regular file; refusing to follow or read it/],
            ["a link on the way", [...TRUST, "env-read", path.join(root, "linked-dir", "good.env")], /linked-dir is a symlink or not a directory; refusing to follow it/],
            ["a hard link", [...TRUST, "env-read", path.join(dir, "hard.env")], /hard\.env has 2 names \(a hard link\)/],
            ["a FIFO", [...TRUST, "env-read", path.join(dir, "fifo.env")], /fifo\.env is a symlink or not a regular file/],
            ["a third-party owner", [...TRUST, "env-read", path.join(dir, "daemon.env")], /daemon\.env is owned by uid 1 \(daemon:root 0600\), not by root or the service user; refusing to read it/],
            ["the service's file without the service trusted", ["env-read", serviceOwnedDir], /app is owned by uid 65534 \(nobody:nogroup 0755\), not by root or the service user/],
            ["more than 64 KiB", [...TRUST, "env-read", path.join(dir, "big.env")], /big\.env is 65548 bytes, more than the 65536 an env file may have/],
            ["text that is not UTF-8", [...TRUST, "env-read", path.join(dir, "latin1.env")], /latin1\.env is not UTF-8 text/],
            ["a control character", [...TRUST, "env-read", path.join(dir, "control.env")], /control\.env: the value of JWT_SECRET has a control character other than tab/],
            ["a newline inside quotes", [...TRUST, "env-read", path.join(dir, "newline.env")], /newline\.env: the value of JWT_SECRET has a control character other than tab/],
        ];
        for (const [what, args, why] of cases) {
            const r = runBounded(helper, args);
            assert.equal(r.status, 2, `${what}: ${r.stderr}`);
            assert.equal(r.stdout, "", what);
            assert.match(r.stderr, /^\[amarktai-infra\] refused: /, what);
            assert.match(r.stderr, why, what);
            assert.doesNotMatch(r.stderr, /secret-value|SSSS/, `${what}: a value reached the message`);
        }
        // The bound is on the size: a file of exactly 64 KiB is read.
        file("limit.env", `A=${"x".repeat(64 * 1024 - 3)}\n`);
        const limit = runBounded(helper, [...TRUST, "env-read", path.join(dir, "limit.env")]);
        assert.equal(limit.status, 0, limit.stderr);
        assert.equal(parseEnvRead(limit.stdout).state, "present");
    } finally {
        done();
    }
});

test("parseEnvRead rejects anything but the helper's one JSON line, never quoting the output in its error", () => {
    const secret = "parse-secret-value";
    const sha = "0".repeat(64);
    const present = (over: Record<string, unknown>) => JSON.stringify({ state: "present", owner: "root", group: "root", mode: "0600", sha256: sha, values: { JWT_SECRET: secret }, ...over });
    const bad = [
        `JWT_SECRET=${secret}`,
        `{"state":"present","values":{"JWT_SECRET":"${secret}"`,
        "",
        `[${JSON.stringify(secret)}]`,
        JSON.stringify(secret),
        `${present({})}\n${present({})}`,
        JSON.stringify({ state: "absent", values: { JWT_SECRET: secret } }),
        JSON.stringify({ state: secret }),
        present({ values: { JWT_SECRET: 1 } }),
        present({ values: [secret] }),
        present({ values: { JWT_SECRET: `${secret}\n` } }),
        present({ mode: "600" }),
        present({ sha256: secret }),
        present({ owner: `root ${secret}` }),
        present({ extra: secret }),
    ];
    for (const stdout of bad) {
        assert.throws(
            () => parseEnvRead(stdout),
            (e: unknown) => e instanceof Error && /malformed answer/.test(e.message) && !e.message.includes(secret) && !String(e.stack).includes(secret) && e.cause === undefined,
            stdout.replace(secret, "[secret]"),
        );
    }
    // A name like __proto__ stays a plain entry: it never becomes the values' prototype.
    const good = parseEnvRead(`${present({ values: { JWT_SECRET: secret, TAB: "a\tb" } }).replace('"values":{', '"values":{"__proto__":"x",')}\n`);
    assert.deepEqual(good, { state: "present", owner: "root", group: "root", mode: "0600", sha256: sha, values: Object.fromEntries([["__proto__", "x"], ["JWT_SECRET", secret], ["TAB", "a\tb"]]) });
    assert.equal(good.state === "present" ? Object.getPrototypeOf(good.values) : undefined, Object.prototype);
});
