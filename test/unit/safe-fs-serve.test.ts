/**
 * The safe file helper as one coprocess for a whole activation: every
 * operation answers exactly as a separate run of the helper would (exit
 * code, stdout, stderr, the trust given to each call only), one Python
 * starts for all of them, and a helper that is gone is replaced by
 * separate runs. Run for real in bash, as root, in a scratch tree.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { PRELUDE, safeFsFunction, safeFsServeFunctions } from "../../components/host";
import { rootScratch, serviceTree } from "../support/safe-fs-tree";

/** A root-owned scratch tree (not under /tmp: the helper refuses directories everyone can write), a `svc/` the service account owns, a staged file, and a python3 that counts its starts. */
function scratch(): { root: string; svc: string; staged: string; starts: () => number; done: () => void } {
    const root = rootScratch(".safe-fs-serve-");
    const { svc, staged } = serviceTree(root);
    const bin = path.join(root, "bin");
    fs.mkdirSync(bin);
    const log = path.join(root, "python-starts");
    const real = spawnSync("bash", ["-c", "command -v python3"], { encoding: "utf8" }).stdout.trim();
    fs.writeFileSync(path.join(bin, "python3"), `#!/bin/bash\necho start >> ${JSON.stringify(log)}\nexec ${JSON.stringify(real)} "$@"\n`, { mode: 0o755 });
    return {
        root,
        svc,
        staged,
        starts: () => (fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n").length : 0),
        done: () => fs.rmSync(root, { recursive: true, force: true }),
    };
}

/** Runs `lines` after the helper's functions (started as a coprocess when `serve`), each call's result printed as `rc=N out=<…> err=<…>`. */
function script(root: string, serve: boolean, lines: string[]): { status: number | null; stdout: string; stderr: string } {
    const body = [
        ...PRELUDE,
        ...safeFsFunction(),
        ...safeFsServeFunctions(),
        'call() { local rc=0 out err; out=$(safe_fs_call "$@" 2>"$ERRF") || rc=$?; err=$(cat "$ERRF"); printf \'rc=%s out=<%s> err=<%s>\\n\' "$rc" "$out" "$err"; }',
        'ERRF=$(mktemp)',
        ...(serve ? ["safe_fs_serve"] : []),
        ...lines,
    ].join("\n");
    const r = spawnSync("bash", ["-c", body], { encoding: "utf8", env: { ...process.env, PATH: `${path.join(root, "bin")}:${process.env.PATH}` } });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("through one coprocess, each operation answers as a separate run would, and Python starts once", () => {
    const t = scratch();
    try {
        const target = path.join(t.svc, "sub", ".env");
        const q = JSON.stringify;
        const lines = [
            `call --trust nobody:nogroup install ${q(t.staged)} ${q(target)} root nogroup 0640`,
            `call --trust nobody:nogroup same ${q(t.staged)} ${q(target)} root nogroup 0640`,
            `echo changed > ${q(target)}`,
            `call --trust nobody:nogroup same ${q(t.staged)} ${q(target)} root nogroup 0640`,
            // The trust of one call is not carried into the next: svc/ belongs to the service account.
            `call install ${q(t.staged)} ${q(target)} root nogroup 0640`,
            `mkdir -m 0700 ${q(path.join(t.root, "backup"))}`,
            `call --trust nobody:nogroup backup ${q(target)} ${q(path.join(t.root, "backup"))} env`,
            `call --trust nobody:nogroup symlink ${q(target)} ${q(path.join(t.svc, "link"))}`,
        ];
        const served = script(t.root, true, lines);
        assert.equal(served.status, 0, served.stderr);
        assert.equal(t.starts(), 1, "one Python for every operation");
        const results = served.stdout.trim().split("\n");
        assert.deepEqual(results.slice(0, 3), ["rc=0 out=<> err=<>", "rc=0 out=<> err=<>", "rc=10 out=<> err=<>"]);
        assert.match(results[3]!, /^rc=2 out=<> err=<\[amarktai-infra\] refused: .*svc.* owned by .*>$/);
        assert.equal(results[4], "rc=0 out=<present> err=<>");
        assert.equal(results[5], `rc=0 out=<linked ${path.join(t.svc, "link")} -> ${target}> err=<>`);
        assert.equal(fs.readlinkSync(path.join(t.svc, "link")), target);

        // The same calls, each a separate run of the helper: the same answers.
        fs.rmSync(path.join(t.svc, "sub"), { recursive: true });
        fs.rmSync(path.join(t.svc, "link"));
        fs.rmSync(path.join(t.root, "backup"), { recursive: true });
        const before = t.starts();
        const separate = script(t.root, false, lines);
        assert.equal(separate.status, 0, separate.stderr);
        assert.equal(t.starts() - before, lines.length - 2, "one Python per operation without the coprocess");
        assert.equal(separate.stdout, served.stdout);
    } finally {
        t.done();
    }
});

test("a coprocess that is gone is replaced by separate runs: the operation still happens", () => {
    const t = scratch();
    try {
        const target = path.join(t.svc, "file");
        const q = JSON.stringify;
        const r = script(t.root, true, [
            `call --trust nobody:nogroup same ${q(t.staged)} ${q(target)} root nogroup 0644`,
            'kill "$SAFE_FS_SERVER_PID"; wait "$SAFE_FS_SERVER_PID" 2>/dev/null || true',
            `call --trust nobody:nogroup install ${q(t.staged)} ${q(target)} root nogroup 0644`,
        ]);
        assert.equal(r.status, 0, r.stderr);
        assert.deepEqual(r.stdout.trim().split("\n"), ["rc=10 out=<> err=<>", "rc=0 out=<> err=<>"]);
        assert.equal(fs.readFileSync(target, "utf8"), "NEW CONTENT\n");
        assert.equal(t.starts(), 2, "the coprocess, then one separate run");
    } finally {
        t.done();
    }
});
