/**
 * The safe file-operation helper, run for real against a scratch tree:
 * root's writes, moves, ownership changes and removals in a directory an
 * unprivileged account owns never follow what that account planted.
 * `nobody:nogroup` plays the service's account. Needs root (chown).
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { SAFE_FS_PY } from "../../components/host";
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
