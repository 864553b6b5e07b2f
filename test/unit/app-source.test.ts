import { test } from "node:test";
import * as assert from "node:assert/strict";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { tarArchive } from "../../components/host";
import { ConfigError } from "../../components/config";
import { APP_IGNORED, entriesOfPreview, planRelease, previewOf, readAppSource } from "../../components/plan";
import { testConfig } from "../support/config";

/** A project directory with an app folder inside, removed after the test. */
function project(t: { after: (fn: () => void) => void }): { base: string; app: string } {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-app-"));
    t.after(() => fs.rmSync(base, { recursive: true, force: true }));
    const app = path.join(base, "app");
    fs.mkdirSync(app);
    return { base, app };
}

function problems(fn: () => unknown): string[] {
    try {
        fn();
    } catch (e) {
        if (e instanceof ConfigError) return [...e.problems];
        throw e;
    }
    assert.fail("accepted");
}

test("app files keep their exact bytes and executable bit; dotfiles are read, the ignore list is not", (t) => {
    const { base, app } = project(t);
    const binary = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 10, 13]);
    fs.mkdirSync(path.join(app, "assets"));
    fs.writeFileSync(path.join(app, "assets", "logo.bin"), binary);
    fs.writeFileSync(path.join(app, "run.sh"), "#!/bin/sh\n", { mode: 0o755 });
    fs.writeFileSync(path.join(app, ".flake8"), "[flake8]\n");
    fs.writeFileSync(path.join(app, ".env"), "SECRET=1\n");
    fs.writeFileSync(path.join(app, ".env.local"), "SECRET=2\n");
    fs.mkdirSync(path.join(app, ".git"));
    fs.writeFileSync(path.join(app, ".git", "HEAD"), "ref\n");
    fs.mkdirSync(path.join(app, "__pycache__"));
    fs.writeFileSync(path.join(app, "__pycache__", "x.cpython-313.pyc"), "x");
    fs.writeFileSync(path.join(app, "old.pyc"), "x");
    const files = readAppSource("app", base);
    assert.deepEqual(files.map((f) => `${f.mode} ${f.relativePath}`), ["0644 .flake8", "0644 assets/logo.bin", "0755 run.sh"]);
    assert.deepEqual(files[1]!.content, binary);
    for (const name of [".git", "__pycache__", "*.pyc", ".env", ".env.*", ".venv"]) assert.ok(APP_IGNORED.includes(name), name);
});

test("a symlink leaving sourceDir, a folder link and a sourceDir outside the project are refused naming app.sourceDir", (t) => {
    const { base, app } = project(t);
    fs.writeFileSync(path.join(app, "server.py"), "app = 1\n");
    fs.symlinkSync("/etc/hostname", path.join(app, "leak"));
    assert.match(problems(() => readAppSource("app", base))[0]!, /^app\.sourceDir: leak is a symbolic link to \/etc\/hostname, outside app; links must stay inside/);
    fs.unlinkSync(path.join(app, "leak"));
    fs.symlinkSync("../..", path.join(app, "up"));
    assert.match(problems(() => readAppSource("app", base))[0]!, /^app\.sourceDir: up is a symbolic link to .*, outside app/);
    fs.unlinkSync(path.join(app, "up"));
    fs.symlinkSync("server.py", path.join(app, "alias.py"));
    assert.deepEqual(readAppSource("app", base).map((f) => f.relativePath), ["alias.py", "server.py"], "a link to a file inside is copied as that file");
    assert.match(problems(() => readAppSource("/etc", base))[0]!, /^app\.sourceDir: "\/etc" resolves to \/etc, outside the project directory/);
});

test("previews show text files as text and binaries as a size/hash line", () => {
    assert.equal(previewOf(Buffer.from("print('hi')\n")), "print('hi')\n");
    assert.match(previewOf(Buffer.from([0xff, 0x00, 0x01])), /^binary, 3 bytes, sha256 [0-9a-f]{16}$/);
});

test("the release archive unpacks with Python's tarfile byte-exact, with modes and long paths", (t) => {
    const long = `${"d".repeat(80)}/${"f".repeat(80)}.py`;
    const entries = [
        { path: "requirements.txt", content: Buffer.from("six==1.17.0\n"), mode: "0644" },
        { path: "app/run.sh", content: Buffer.from("#!/bin/sh\n"), mode: "0755" },
        { path: `app/${long}`, content: Buffer.from([0, 255, 1]), mode: "0644" },
    ];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "amarktai-tar-"));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, "a.tar"), tarArchive(entries));
    const listing = execFileSync("python3", ["-c", "import sys, tarfile\nfor m in tarfile.open(sys.argv[1]).getmembers(): print(m.name, oct(m.mode), m.size, m.uid, m.type == tarfile.REGTYPE)", path.join(dir, "a.tar")], { encoding: "utf8" });
    assert.equal(listing, `requirements.txt 0o644 12 0 True\napp/run.sh 0o755 10 0 True\napp/${long} 0o644 3 0 True\n`);
    execFileSync("python3", ["-c", "import sys, tarfile\ntarfile.open(sys.argv[1]).extractall(sys.argv[2])", path.join(dir, "a.tar"), path.join(dir, "x")]);
    assert.deepEqual(fs.readFileSync(path.join(dir, "x", "app", long)), Buffer.from([0, 255, 1]));
});

test("a release id changes with the files, their modes and the requirements, and only with them", () => {
    const config = testConfig({ app: { sourceDir: "demo-app" } });
    const files = [{ relativePath: "server.py", content: "app = 1\n" }];
    const id = (c = config, f: typeof files | { relativePath: string; content: string; mode: string }[] = files) => planRelease(c, f, "/var/amarktai/releases/shared/.env").spec.id;
    assert.equal(id(), id());
    assert.notEqual(id(config, [{ relativePath: "server.py", content: "app = 2\n" }]), id());
    assert.notEqual(id(config, [{ relativePath: "server.py", content: "app = 1\n", mode: "0755" }]), id());
    assert.notEqual(id(testConfig({ app: { sourceDir: "demo-app", requirements: ["uvicorn==0.38.0", "six==1.17.0"] } })), id());
    assert.equal(id(testConfig({ app: { sourceDir: "demo-app" }, overrides: { w: { workers: 2 } } })), id(), "a unit change is not a new release");
});

test("requirements come from app.requirementsFile when set; hash pins turn on --require-hashes", () => {
    const config = testConfig({ app: { sourceDir: "demo-app", requirementsFile: "requirements.txt" } });
    const reqs = "uvicorn==0.38.0 \\\n    --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000\n";
    const planned = planRelease(config, [{ relativePath: "requirements.txt", content: reqs }], undefined);
    assert.equal(planned.preview.requirements, reqs);
    assert.equal(planned.spec.requireHashes, true);
    assert.equal(planRelease(testConfig({ app: { sourceDir: "demo-app" } }), [], undefined).spec.requireHashes, false);
    assert.match(problems(() => planRelease(config, [], undefined))[0]!, /^app\.requirementsFile: requirements\.txt is not one of the app.s files \(demo-app\)/);
});

test("app files given in code (appFiles, no app.sourceDir) make a release with the app and a working directory linked into it", () => {
    const planned = planRelease(testConfig({}), [{ relativePath: "orders/main.py", content: "app = 1\n" }], "/etc/amarktai-infra/amarktai-api/env");
    assert.equal(planned.spec.appLink, "/var/amarktai/app/backend");
    assert.deepEqual(planned.preview.files, { "orders/main.py": "app = 1\n" });
    assert.deepEqual(planned.entries.map((e) => e.path), ["requirements.txt", "app/orders/main.py"]);
    const venvOnly = planRelease(testConfig({}), [], undefined);
    assert.equal(venvOnly.spec.appLink, undefined, "no files: a venv-only release, as before");
});

test("the archive rebuilt from what the provider is given (text, binary bytes, modes) is byte for byte the planned one, whatever order the files came in", () => {
    const binary = Buffer.from([0, 1, 2, 255, 254]);
    const files = [
        { relativePath: "z/tool.sh", content: "#!/bin/sh\necho hi\n", mode: "0755" },
        { relativePath: "assets/blob.bin", content: binary },
        { relativePath: "a.py", content: "binary, 5 bytes, sha256 0000000000000000\n" },
    ];
    const planned = planRelease(testConfig({}), files, undefined);
    const reversed = planRelease(testConfig({}), [...files].reverse(), undefined);
    assert.deepEqual(tarArchive(reversed.entries), tarArchive(planned.entries), "the files in another order make the same archive");
    assert.equal(reversed.spec.id, planned.spec.id, "and the same release id");
    assert.deepEqual(Object.keys(planned.preview.blobs), ["assets/blob.bin"], "only the binary travels as bytes; text is in the preview already");
    assert.deepEqual(planned.entries.map((e) => e.path), ["requirements.txt", "app/a.py", "app/assets/blob.bin", "app/z/tool.sh"], "sorted by path");
    const rebuilt = entriesOfPreview(planned.preview);
    assert.deepEqual(tarArchive(rebuilt), tarArchive(planned.entries));
});

test("bad appFiles are refused naming the entry: unsafe path, '..', a path listed twice, a mode other than 0644/0755", () => {
    const p = problems(() =>
        planRelease(
            testConfig({}),
            [
                { relativePath: "../etc/passwd", content: "x" },
                { relativePath: "a b.py", content: "x" },
                { relativePath: "ok.py", content: "x" },
                { relativePath: "ok.py", content: "y" },
                { relativePath: "run.sh", content: "x", mode: "4755" },
            ],
            undefined,
        ),
    );
    assert.match(p.join("\n"), /^appFiles\[0\]\.relativePath: "\.\.\/etc\/passwd"/m);
    assert.match(p.join("\n"), /^appFiles\[1\]\.relativePath: "a b\.py"/m);
    assert.match(p.join("\n"), /^appFiles\[3\]\.relativePath: ok\.py is listed twice/m);
    assert.match(p.join("\n"), /^appFiles\[4\]\.mode: "4755" must be "0644" or "0755"/m);
});
