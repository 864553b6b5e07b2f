import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import { readFileSync } from "fs";
import * as path from "path";
import { parse } from "yaml";

// Compiled to dist/test/unit/: the repository root is three levels up.
const REPO = path.resolve(__dirname, "../../..");
const WORKFLOW_PATH = path.join(REPO, ".github/workflows/infra.yml");
const WORKFLOW = readFileSync(WORKFLOW_PATH, "utf8");

// ---- a tiny reader for the block-style YAML the workflow is written in -------
// (kept dependency-free for the main workflow: mappings by indentation, `- ` sequences,
// `[a, b]` flow lists and plain/quoted scalars are all the workflow uses).

interface Entry {
    key: string;
    /** The text after `key:` on the same line, comment and quotes removed. */
    value: string;
    /** The lines nested under the key. */
    body: string[];
}

const indentOf = (line: string) => line.length - line.trimStart().length;

function meaningfulLines(text: string): string[] {
    return text.split("\n").filter((l) => l.trim() !== "" && !l.trimStart().startsWith("#"));
}

function scalar(raw: string): string {
    const text = raw.replace(/\s+#.*$/, "").trim();
    const quoted = /^(["'])(.*)\1$/.exec(text);
    return quoted ? quoted[2]! : text;
}

/** The key/value entries at the outermost indentation of `lines`. */
function entries(lines: string[]): Entry[] {
    if (lines.length === 0) return [];
    const base = Math.min(...lines.map(indentOf));
    const out: Entry[] = [];
    for (const line of lines) {
        const match = indentOf(line) === base ? /^\s*([^\s:#][^:]*?):(?:\s+(.*))?$/.exec(line) : null;
        if (match && !line.trimStart().startsWith("- ")) {
            out.push({ key: match[1]!, value: scalar(match[2] ?? ""), body: [] });
        } else if (out.length > 0 && indentOf(line) > base) {
            out[out.length - 1]!.body.push(line);
        }
    }
    return out;
}

function get(lines: string[], key: string): Entry | undefined {
    return entries(lines).find((e) => e.key === key);
}

function mustGet(lines: string[], key: string, where: string): Entry {
    const entry = get(lines, key);
    assert.ok(entry, `${where} has no \`${key}:\``);
    return entry;
}

/** The items of a `- ` sequence, each as the lines of a mapping. */
function items(lines: string[]): string[][] {
    if (lines.length === 0) return [];
    const base = Math.min(...lines.map(indentOf));
    const out: string[][] = [];
    for (const line of lines) {
        if (indentOf(line) === base && line.trimStart().startsWith("- ")) {
            out.push([line.replace("- ", "  ")]);
        } else if (out.length > 0) {
            out[out.length - 1]!.push(line);
        }
    }
    return out;
}

/** A list written as `[a, b]` or as `- a` lines. */
function list(entry: Entry): string[] {
    const flow = /^\[(.*)\]$/.exec(entry.value);
    if (flow) return flow[1]!.split(",").map(scalar).filter((v) => v !== "");
    return items(entry.body).map((item) => scalar(item[0]!));
}

interface Step {
    uses: string;
    with: Record<string, string>;
    env: Record<string, string>;
}

function asRecord(entry: Entry | undefined): Record<string, string> {
    return Object.fromEntries(entries(entry?.body ?? []).map((e) => [e.key, e.value]));
}

function steps(job: string[]): Step[] {
    return items(get(job, "steps")?.body ?? []).map((item) => ({
        uses: get(item, "uses")?.value ?? "",
        with: asRecord(get(item, "with")),
        env: asRecord(get(item, "env")),
    }));
}

const top = meaningfulLines(WORKFLOW);
const jobs = new Map(entries(mustGet(top, "jobs", "the workflow").body).map((e) => [e.key, e.body]));
const triggers = mustGet(top, "on", "the workflow").body;

function jobsRunning(command: string): [string, string[]][] {
    return [...jobs].filter(([, job]) => steps(job).some((s) => s.uses.startsWith("pulumi/actions@") && s.with["command"] === command));
}

function matrixStacks(job: string[], name: string): string[] {
    const matrix = mustGet(mustGet(job, "strategy", `job ${name}`).body, "matrix", `job ${name} strategy`).body;
    return list(mustGet(matrix, "stack", `job ${name} matrix`));
}

const PULUMI_SECRETS_ENV = {
    PULUMI_BACKEND_URL: "${{ secrets.PULUMI_BACKEND_URL }}",
    PULUMI_CONFIG_PASSPHRASE: "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}",
};

// ---- tests ---------------------------------------------------------------------

test("actionlint, with shellcheck on every run: step, passes on the workflow", () => {
    // The first run installs actionlint with `go install` (about a minute on a cold cache).
    const run = spawnSync("bash", ["tools/actionlint.sh"], { cwd: REPO, encoding: "utf8", timeout: 10 * 60 * 1000 });
    const output = `${run.stdout}${run.stderr}${run.error ? String(run.error) : ""}`;
    assert.equal(run.status, 0, `tools/actionlint.sh failed:\n${output}`);
    assert.match(run.stderr, /with shellcheck/, `shellcheck is not on PATH, so run: steps went unchecked:\n${output}`);
});

test("the workflow runs on pull requests and on pushes to main only", () => {
    assert.deepEqual(entries(triggers).map((e) => e.key).sort(), ["pull_request", "push"]);
    assert.deepEqual(list(mustGet(mustGet(triggers, "push", "on").body, "branches", "on.push")), ["main"]);
});

test("pull requests preview every stack with a diff and a pull-request comment", () => {
    const previewers = jobsRunning("preview");
    assert.equal(previewers.length, 1, "expected exactly one job running `command: preview`");
    const [name, job] = previewers[0]!;
    assert.match(mustGet(job, "if", `job ${name}`).value, /github\.event_name == 'pull_request'/);
    assert.deepEqual(matrixStacks(job, name), ["staging", "prod"]);
    const preview = steps(job).find((s) => s.with["command"] === "preview")!;
    assert.equal(preview.uses, "pulumi/actions@v6");
    assert.equal(preview.with["stack-name"], "${{ matrix.stack }}");
    assert.equal(preview.with["diff"], "true");
    assert.equal(preview.with["comment-on-pr"], "true");
    assert.equal(preview.with["github-token"], "${{ secrets.GITHUB_TOKEN }}");
    for (const [key, value] of Object.entries(PULUMI_SECRETS_ENV)) assert.equal(preview.env[key], value, `preview env ${key}`);
    assert.ok(steps(job).some((s) => s.uses.startsWith("pulumi/actions@") && s.with["command"] === undefined), "the preview job installs the Pulumi CLI");
    assert.equal(mustGet(job, "needs", `job ${name}`).value, "test", "previews wait for the build and tests");
});

test("pull requests also get each stack's preview with only what changes, from the preview's JSON, as a comment of its own", () => {
    const [, job] = jobsRunning("preview")[0]!;
    const stepItems = items(get(job, "steps")?.body ?? []);
    const at = stepItems.findIndex((item) => item.some((l) => l.includes("components/operate/preview-cli.js")));
    assert.ok(at >= 0, "no step prints the preview with only what changes");
    const summary = stepItems[at]!;
    assert.ok(summary.some((l) => /pulumi preview --json .*--stack "\$STACK"/.test(l)), summary.join("\n"));
    const env = asRecord(get(summary, "env"));
    assert.equal(env["STACK"], "${{ matrix.stack }}");
    for (const [key, value] of Object.entries(PULUMI_SECRETS_ENV)) assert.equal(env[key], value, `summary env ${key}`);
    const comment = steps(job)[at + 1]!;
    assert.ok(comment.uses.startsWith("marocchino/sticky-pull-request-comment@"), "the summary is posted as a comment");
    assert.equal(comment.with["path"], "preview-summary.md");
    assert.equal(comment.with["header"], "preview-summary-${{ matrix.stack }}");
});

test("pulumi up runs only on pushes to main, one deploy per stack, gated by its environment", () => {
    const deployers = jobsRunning("up").concat(jobsRunning("update"));
    assert.equal(deployers.length, 1, "expected exactly one job running `command: up`");
    const [name, job] = deployers[0]!;
    const condition = mustGet(job, "if", `job ${name}`).value;
    assert.match(condition, /github\.event_name == 'push'/);
    assert.match(condition, /github\.ref == 'refs\/heads\/main'/);
    assert.doesNotMatch(condition, /\|\|/, "the deploy condition must not be widened with ||");
    assert.deepEqual(matrixStacks(job, name), ["prod"]);
    assert.equal(mustGet(job, "environment", `job ${name}`).value, "${{ matrix.stack }}");
    const concurrency = mustGet(job, "concurrency", `job ${name}`).body;
    assert.match(mustGet(concurrency, "group", `job ${name} concurrency`).value, /\$\{\{ matrix\.stack \}\}/);
    assert.equal(mustGet(concurrency, "cancel-in-progress", `job ${name} concurrency`).value, "false");
    const up = steps(job).find((s) => s.with["command"] === "up" || s.with["command"] === "update")!;
    assert.equal(up.uses, "pulumi/actions@v6");
    assert.equal(up.with["stack-name"], "${{ matrix.stack }}");
    for (const [key, value] of Object.entries(PULUMI_SECRETS_ENV)) assert.equal(up.env[key], value, `up env ${key}`);
    assert.equal(mustGet(job, "needs", `job ${name}`).value, "test", "deploys wait for the build and tests");
    // Nothing else mutates a stack.
    for (const command of ["destroy", "refresh"]) assert.deepEqual(jobsRunning(command), [], `no job runs \`command: ${command}\``);
});

test("every pull request, forks included, gets the diff of every stack's host files from scripts/render-diff, as a comment", () => {
    const [name, job] = [...jobs].find(([, job]) => (get(job, "steps")?.body ?? []).some((l) => l.includes("scripts/render-diff")))!;
    assert.ok(name, "no job runs scripts/render-diff");
    assert.equal(mustGet(job, "if", `job ${name}`).value, "github.event_name == 'pull_request'", "the diff needs no secret: every pull request, forks included");
    const stepsText = mustGet(job, "steps", `job ${name}`).body.join("\n");
    assert.match(stepsText, /scripts\/render-diff "\$BASE_SHA" HEAD --stack staging --stack prod --markdown render-diff\.md/);
    assert.match(stepsText, /BASE_SHA: \$\{\{ github\.event\.pull_request\.base\.sha \}\}/);
    assert.match(stepsText, /fetch-depth: 0/, "the base commit must be fetched");
    assert.match(stepsText, />> "\$GITHUB_STEP_SUMMARY"/, "the diff is on the run's summary page (fork pull requests cannot comment)");
    assert.doesNotMatch(stepsText, /secrets\.PULUMI/, "the diff must not need the stacks' secrets");
    const comment = steps(job).find((s) => s.uses.startsWith("marocchino/sticky-pull-request-comment@"));
    assert.ok(comment, "the diff is posted as a pull-request comment");
    assert.equal(comment.with["path"], "render-diff.md");
    assert.deepEqual(matrixStacks(jobsRunning("preview")[0]![1], "preview"), ["staging", "prod"], "the same stacks as the previews");
});

test("only the preview and host-file diff jobs may write, and only pull-request comments", () => {
    assert.doesNotMatch(WORKFLOW, /^\s*contents:\s*write\b/m, "no job may write repository contents");
    assert.doesNotMatch(WORKFLOW, /write-all/, "no job may have write-all");
    assert.deepEqual(asRecord(get(top, "permissions")), { contents: "read" }, "workflow-wide permissions");
    const commenters = [jobsRunning("preview")[0]?.[0], "files"];
    assert.ok(commenters.every((name) => name !== undefined && jobs.has(name)), `the preview and host-file diff jobs exist: ${commenters.join(", ")}`);
    for (const [name, job] of jobs) {
        const permissions = get(job, "permissions");
        const granted = permissions ? asRecord(permissions) : asRecord(get(top, "permissions"));
        const writes = Object.entries(granted).filter(([, level]) => level === "write").map(([scope]) => scope);
        if (commenters.includes(name)) {
            assert.ok(permissions, `job ${name} declares its own permissions`);
            assert.deepEqual(granted, { contents: "read", "pull-requests": "write" }, `job ${name} permissions`);
        } else {
            assert.deepEqual(writes, [], `job ${name} must not write (${writes.join(", ")})`);
        }
    }
});

test("the workflow installs the Pulumi CLI version that scripts/lib/env.sh pins", () => {
    const pinned = /^AMARKTAI_PULUMI_VERSION="([^"]+)"$/m.exec(readFileSync(path.join(REPO, "scripts/lib/env.sh"), "utf8"))?.[1];
    assert.ok(pinned, "AMARKTAI_PULUMI_VERSION not found in scripts/lib/env.sh");
    assert.equal(mustGet(mustGet(top, "env", "the workflow").body, "PULUMI_VERSION", "workflow env").value, pinned);
    for (const [name, job] of jobsRunning("preview").concat(jobsRunning("up"))) {
        for (const step of steps(job).filter((s) => s.uses.startsWith("pulumi/actions@"))) {
            assert.equal(step.with["pulumi-version"], "${{ env.PULUMI_VERSION }}", `job ${name}: every pulumi/actions step pins the CLI`);
        }
    }
});

test("a fork's host-file diff is posted by a workflow that never checks out or runs the fork's code", () => {
    const wf = parse(readFileSync(path.join(REPO, ".github/workflows/infra-files-comment.yml"), "utf8"));
    assert.deepEqual(wf.on, { workflow_run: { workflows: ["infra"], types: ["completed"] } });
    assert.deepEqual(wf.permissions, { contents: "read" });
    const jobsOf = Object.values(wf.jobs) as { if: string; permissions: Record<string, string>; steps: { uses?: string; run?: string; with?: Record<string, string> }[] }[];
    assert.equal(jobsOf.length, 1);
    const job = jobsOf[0]!;
    assert.match(job.if, /github\.event\.workflow_run\.event == 'pull_request'/);
    assert.match(job.if, /head_repository\.full_name != github\.repository/, "only fork pull requests: the others comment from infra.yml");
    assert.deepEqual(job.permissions, { actions: "read", "pull-requests": "write" });
    assert.ok(!job.steps.some((s) => s.uses?.startsWith("actions/checkout") || s.uses?.startsWith("actions/setup-node")), "the fork's code must never be checked out or run here");
    const download = job.steps.find((s) => s.uses?.startsWith("actions/download-artifact@"))!;
    assert.equal(download.with!["name"], "host-files-diff");
    assert.match(WORKFLOW, /uses: actions\/upload-artifact@v4\n\s+with:\n\s+name: host-files-diff\n\s+path: render-diff\.md/, "infra.yml keeps the diff under the name downloaded here");
    const post = job.steps.find((s) => s.run?.includes("gh pr comment"))!;
    assert.match(post.run!, /select\(\.head\.sha == \\"\$HEAD_SHA\\"\)/, "the pull request is found by its head commit, never by a number from the artifact");
});
