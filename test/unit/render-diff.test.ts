import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { freshClone, git, scriptEnv } from "../support/clone";

test("render-diff shows, per stack, the unified diff of every host file and the plan between two commits", () => {
    const dir = freshClone();
    const { env, cleanup } = scriptEnv();
    try {
        const base = git(dir, "rev-parse", "HEAD").trim();
        // The pull request: one override changed, one added, a flag added, a requirement added (prod only).
        const prod = path.join(dir, "Pulumi.prod.yaml");
        let text = fs.readFileSync(prod, "utf8");
        text = text.replace("workers: 4 ", "workers: 2 ");
        text = text.replace('    ENABLE_TRADING: "false"\n', '    ENABLE_TRADING: "false"\n    FEATURE_SIGNALS: "on"\n');
        text += "  amarktai-infra:app:\n    requirements:\n      - uvicorn==0.38.0\n      - httpx==0.28.1\n";
        text = text.replace(/(      cpuQuota: .*\n)/, '$1    restartcap:\n      order: 40\n      environment:\n        MAX_RESTARTS: "3"\n');
        fs.writeFileSync(prod, text);
        git(dir, "commit", "-q", "-am", "a pull request");
        const md = path.join(dir, "comment.md");
        const r = spawnSync("bash", ["scripts/render-diff", base, "HEAD", "--stack", "staging", "--stack", "prod", "--markdown", md], { cwd: dir, env, encoding: "utf8" });
        assert.equal(r.status, 0, r.stdout + r.stderr);
        assert.doesNotMatch(r.stderr, /building/, "the revisions share this checkout's code: nothing to build");
        const out = r.stdout;
        assert.match(out, /^== stack staging: no file changes$/m);
        assert.match(out, /^== stack prod: 4 file\(s\) change$/m);
        // The changed drop-in: its one line, old and new.
        assert.match(out, /^--- base\/prod\/api-1\/etc\/systemd\/system\/amarktai-api\.service\.d\/10-workers\.conf$/m);
        assert.match(out, /^-ExecStart=\/var\/amarktai\/venv\/bin\/python -m uvicorn server:app --fd 3 --workers 4 --timeout-worker-healthcheck 30 --log-level info$/m);
        assert.match(out, /^\+ExecStart=\/var\/amarktai\/venv\/bin\/python -m uvicorn server:app --fd 3 --workers 2 --timeout-worker-healthcheck 30 --log-level info$/m);
        // The added drop-in: every one of its lines .
        const added = /^\+\+\+ head\/prod\/api-1\/etc\/systemd\/system\/amarktai-api\.service\.d\/40-restartcap\.conf\n@@ -0,0 \+1,(\d+) @@\n((?:\+.*\n)+)/m.exec(out);
        assert.ok(added, out);
        assert.match(added[2]!, /^\+\[Service\]$/m);
        assert.match(added[2]!, /^\+Environment="?MAX_RESTARTS=3"?$/m);
        assert.equal(added[2]!.trimEnd().split("\n").length, Number(added[1]));
        // The .env gained the flag; the plan its requirement.
        assert.match(out, /^\+FEATURE_SIGNALS=on$/m);
        assert.match(out, /^-  requirements: uvicorn==0\.38\.0$/m);
        assert.match(out, /^\+  requirements: uvicorn==0\.38\.0 httpx==0\.28\.1$/m);
        // The pull-request comment: the same diff per stack.
        const comment = fs.readFileSync(md, "utf8");
        assert.match(comment, /^### Files on the hosts: `[0-9a-f]{7,}` → `[0-9a-f]{7,}`$/m);
        assert.match(comment, /^#### staging\n\nNo file changes\.$/m);
        assert.match(comment, /<summary><b>prod<\/b>: 4 file\(s\) change<\/summary>\n\n```diff\ndiff -ruN base\/prod\/api-1\/etc\/amarktai-infra\/amarktai-api\/env /);
        assert.ok(comment.includes("+FEATURE_SIGNALS=on\n"));
        // Nothing tracked was touched.
        assert.equal(git(dir, "status", "--porcelain", "--untracked-files=no"), "");
    } finally {
        cleanup();
        fs.rmSync(dir, { recursive: true, force: true });
    }
});
