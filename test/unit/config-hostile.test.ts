/**
 * Hostile configuration values, one class at a time: each is refused by the
 * config layer, naming the key and what is allowed, before any host is touched.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { ConfigError, loadConfig, requirementProblem, serviceConfig, unsafePathReason } from "../../components/config";
import { ENV_NAME_SOURCE, ENV_STORE_ROOT, INSTALLER_CACHE_ROOT, STATE_ROOT, parseHostKey } from "../../components/model";
import { PREVIEW_TEXT_LIMIT, entriesOfPreview, planRelease, previewOf } from "../../components/plan";
import { NS, TEST_HOST, configProblems, loadTestConfig, rawConfig, testConfig } from "../support/config";

const load = loadTestConfig;
const problems = configProblems;

/** Asserts `values` is refused with a problem for `key` whose message matches `words`. */
function assertRefused(values: Record<string, unknown>, key: string, words: RegExp): void {
    const found = problems(values);
    const line = found.find((p) => p.startsWith(`${NS}:${key}: `));
    assert.ok(line, `no problem reported for ${key}; got:\n${found.join("\n")}`);
    assert.match(line, words);
}

// Real host keys (public halves of throwaway keys made with ssh-keygen).
const ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDSDmiweKY99WTfylV6Cj7TDMOO8d7CvGy7GfVSnDYQF";
const P256 = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPG7tFqE+9of/bDGW8ebpNbd7KDfhwLwJp1xfNXbljSmxPnUDBvTJUVmAr5dIHhaOChjY7STA6f6f1JIOaiIKB8=";
const P384 =
    "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBK12YUBYGYLU/dZwAa0G+KsPQNyeZurSE/zXF9alHaTfi5IfAjfOCDAVy7A2l2g38rATGY0Gaa0N0o1ZTdZUIOHozT62HvSXR6NzDK9Ae7IDScXWmlucjErhwMkzOvfcLw==";
const P521 =
    "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBABzuUtcvA7h34zUMLFWlHKSR9A1mxWLhR9cAksuw7aExdv1Lt3s/tu9KICZIy4MVVp8EbSwZo0AXp8iWC8CH+en0AHlV4SbBNj3GvMTnROtggHjMCc5nQ0nC7pA3CUJvwkWxgVglb4NylWValDxNqtUlYk0pEOKt6ZMKSLBJCqO3CpHCA==";
const RSA2048 =
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDe+LJeLrA1ifnUMlrAAc7gZy7Vl+7EmxSDtcqI0L8l6zqr3VDMl+sKjcQwmbEj031AJGimopm8fT7xCpyq/cT7U4W6TRkzeR+r/QEHFn8eqlOtO8eAJd4+CMWPY34Seruo2M1GJDt74uruzqadZZsykcCksVC73q3mM3IbpsjTWTJ0+mLqSBoB13aCC49TSc1kcNaNl5tCqXcQ3Gmws3VQWf9RhSrHwNMZWsRuGQpburlUsBhKLInHB/FGH1NninuYOMf7udq73ydjAeRV+0Mkuz+1hfVzSjkZudby0berOBNEq0hKfjhA4fGgYh4XfE6t4aojKiuuVHiHJkL0gK+J";
const RSA1024 =
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDRutxkTACsCaCSDPrdpYxlBbWuWPJbBnlJs9zCpvTqecBmdropBmSfIIKQvQOUO++OHwnaCEPIfi111zSBS2hE4rd6Q2pT6s5S1VD+3re+5EqmYbqx47O5AdV3yKirJKA+cXtmNSV0jbE9jFNnEeLlo3D/bkwCPo9GvDIhSbkRow==";

const blobOf = (key: string) => Buffer.from(key.split(" ")[1]!, "base64");
const withBlob = (type: string, blob: Buffer) => `${type} ${blob.toString("base64")}`;

/** An ECDSA blob with its curve name (the second string, as long as the first's suffix) replaced. */
function renamedCurve(blob: Buffer, curve: string): Buffer {
    const copy = Buffer.from(blob);
    copy.write(curve, copy.lastIndexOf(blob.subarray(23 + 4, 23 + 4 + 8)), "latin1");
    return copy;
}

// ---- 1. Host identity -------------------------------------------------------------------------

test("real host keys of every supported type are accepted, and their sizes are the ones the parser requires", () => {
    // RSA has no fixed size: 279 bytes is a 2048-bit modulus (the smallest accepted) with e = 65537.
    const sizes: [string, number][] = [[ED25519, 51], [P256, 104], [P384, 136], [P521, 172], [RSA2048, 279]];
    for (const [key, size] of sizes) {
        const { config } = load({ hosts: [{ ...TEST_HOST, hostKey: key }] });
        assert.equal(config.hosts[0]!.hostKey, key);
        assert.equal(blobOf(key).length, size, key.split(" ")[0]);
    }
});

const BAD_KEYS: [string, string, RegExp][] = [
    ["a truncated ed25519 key (48 of 51 bytes)", withBlob("ssh-ed25519", blobOf(ED25519).subarray(0, 48)), /is 48 bytes; an ssh-ed25519 key is 51/],
    ["an ed25519 key with bytes appended", withBlob("ssh-ed25519", Buffer.concat([blobOf(ED25519), Buffer.from([0, 0, 0])])), /is 54 bytes; an ssh-ed25519 key is 51/],
    ["an ed25519 key missing its last base64 character", ED25519.slice(0, -1), /base64 that does not decode exactly/],
    ["base64 whose last character carries bits that decode to nothing", P256.replace(/B8=$/, "B9="), /base64 that does not decode exactly/],
    ["an ed25519 blob labelled ssh-rsa", `ssh-rsa ${ED25519.split(" ")[1]}`, /says ssh-rsa but the key inside is "ssh-ed25519"/],
    ["a P-384 blob labelled nistp256", `ecdsa-sha2-nistp256 ${P384.split(" ")[1]}`, /says ecdsa-sha2-nistp256 but the key inside is "ecdsa-sha2-nistp384"/],
    ["a P-256 key naming the P-384 curve", withBlob("ecdsa-sha2-nistp256", renamedCurve(blobOf(P256), "nistp384")), /names the curve "nistp384"/],
    ["a truncated P-384 key", withBlob("ecdsa-sha2-nistp384", blobOf(P384).subarray(0, 126)), /is 126 bytes; an ecdsa-sha2-nistp384 key is 136/],
    ["a truncated P-521 key", withBlob("ecdsa-sha2-nistp521", blobOf(P521).subarray(0, 100)), /an ecdsa-sha2-nistp521 key is 172/],
    ["a 1024-bit RSA key", RSA1024, /1024-bit RSA key; at least 2048 bits/],
    ["a truncated RSA key", withBlob("ssh-rsa", blobOf(RSA2048).subarray(0, 200)), /not a whole ssh-rsa key/],
    ["an RSA key with bytes appended", withBlob("ssh-rsa", Buffer.concat([blobOf(RSA2048), Buffer.from([1, 2, 3])])), /not a whole ssh-rsa key/],
    ["a DSA key (unsupported)", "ssh-dss AAAAB3NzaC1kc3MAAACBAP", /type 'ssh-dss'; supported/],
    ["a bare 'AAAA'", "ssh-ed25519 AAAA", /not an SSH key blob/],
    ["a key line with a comment", `${ED25519} root@host`, /not of the form 'TYPE BASE64'/],
];

for (const [what, hostKey, words] of BAD_KEYS) {
    test(`refuses ${what}, naming hosts[0].hostKey`, () => {
        assertRefused({ hosts: [{ ...TEST_HOST, hostKey }] }, "hosts[0].hostKey", words);
    });
}

test("the key parser and the config agree: every refused key is refused by parseHostKey, every accepted one parsed", () => {
    for (const [, key] of BAD_KEYS) assert.ok("problem" in parseHostKey(key), key);
    for (const key of [ED25519, P256, P384, P521, RSA2048]) assert.equal((parseHostKey(key) as { type: string }).type, key.split(" ")[0]);
});

test("two entries with one address and port are refused whatever keys they pin (one machine has ed25519, ECDSA and RSA keys)", () => {
    assertRefused(
        { hosts: [{ name: "a", address: "203.0.113.5", port: 22, hostKey: ED25519 }, { name: "b", address: "203.0.113.5", port: 22, hostKey: P256 }] },
        "hosts[1].address",
        /hosts\[1\] \('b'\) and hosts\[0\] \('a'\) both connect to 203\.0\.113\.5 port 22.*several host keys/,
    );
    assertRefused(
        { hosts: [{ name: "a", address: "API.example.com", hostKey: ED25519 }, { name: "b", address: "api.example.com.", hostKey: RSA2048 }] },
        "hosts[1].address",
        /both connect to/,
    );
    assertRefused({ hosts: [{ name: "a", address: "127.0.0.1", port: 2222, hostKey: ED25519 }, { name: "b", address: "127.1", port: 2222, hostKey: P384 }] }, "hosts[1].address", /both connect to/);
    assertRefused({ hosts: [{ name: "a", address: "::1", hostKey: ED25519 }, { name: "b", address: "0:0::1", hostKey: P521 }] }, "hosts[1].address", /both connect to/);
});

test("one address on two ports, or two addresses, with their own keys, are two hosts", () => {
    const { config } = load({
        hosts: [
            { name: "a", address: "127.0.0.1", port: 2222, hostKey: ED25519 },
            { name: "b", address: "127.0.0.1", port: 2223, hostKey: P256 },
            { name: "c", address: "127.0.0.2", port: 2222, hostKey: RSA2048 },
        ],
    });
    assert.equal(config.hosts.length, 3);
});

// ---- 2. The library's own directories as service paths ------------------------------------------

const PATH_KEYS = ["app", "workingDirectory", "venv", "logs", "envFile", "releases"] as const;
const LIBRARY_DIRS: [string, RegExp][] = [
    ["/etc/amarktai-infra", /store of every service's \.env/],
    ["/var/lib/amarktai-infra", /root-only state/],
    ["/var/cache/amarktai-infra", /installers. root-only download cache/],
];

for (const key of PATH_KEYS) {
    for (const [dir, why] of LIBRARY_DIRS) {
        for (const value of [dir, `${dir}/x`, `${dir}/amarktai-api/app`]) {
            test(`refuses paths.${key} = ${value} (the library's own directory), saying why`, () => {
                const found = problems({ paths: { [key]: value } });
                const line = found.find((p) => p.startsWith(`${NS}:paths.${key}: `) && p.includes(dir));
                assert.ok(line, `no problem naming ${dir} for paths.${key}; got:\n${found.join("\n")}`);
                assert.match(line, new RegExp(`${value === dir ? "it is" : "it is inside"} ${dir.replace(/\//g, "\\/")}`));
                assert.match(line, why);
            });
        }
    }
}

test("the directories refused are the ones the library uses: its .env store, its state and the installers' cache", () => {
    for (const dir of [ENV_STORE_ROOT, STATE_ROOT, INSTALLER_CACHE_ROOT]) {
        assert.match(unsafePathReason(dir) ?? "", new RegExp(`it is ${dir.replace(/\//g, "\\/")}, `), dir);
        assert.match(unsafePathReason(`${dir}/x/y`) ?? "", new RegExp(`it is inside ${dir.replace(/\//g, "\\/")}, `), dir);
    }
    assert.equal(unsafePathReason("/var/cache/amarktai-infra-app/logs"), undefined, "a sibling with a longer name is not inside");
});

// ---- 3. Limits that destroy host-wide data or are silently ignored ----------------------------

const BAD_LIMITS: [string, Record<string, unknown>, string, RegExp][] = [
    ["SystemMaxUse=0", { journald: { systemMaxUse: "0" } }, "journald.systemMaxUse", /at least 16M: journald deletes archived journal files.*sshd/],
    ["SystemMaxUse=1M", { journald: { systemMaxUse: "1M" } }, "journald.systemMaxUse", /at least 16M/],
    ["SystemMaxUse=16383K", { journald: { systemMaxUse: "16383K" } }, "journald.systemMaxUse", /at least 16M/],
    ["SystemMaxUse=0.01G", { journald: { systemMaxUse: "0.01G" } }, "journald.systemMaxUse", /at least 16M/],
    ["SystemMaxUse=infinity (journald ignores it)", { journald: { systemMaxUse: "infinity" } }, "journald.systemMaxUse", /journald does not read 'infinity'/],
    ["SystemKeepFree=0", { journald: { systemKeepFree: "0" } }, "journald.systemKeepFree", /at least 16M: journald may fill the file system/],
    ["SystemKeepFree=1K", { journald: { systemKeepFree: "1K" } }, "journald.systemKeepFree", /at least 16M/],
    ["SystemKeepFree=infinity", { journald: { systemKeepFree: "infinity" } }, "journald.systemKeepFree", /does not read 'infinity'/],
    ["MaxRetentionSec=1", { journald: { maxRetentionSec: 1 } }, "journald.maxRetentionSec", /at least 1h.*deletes every entry older than this from the whole host journal/],
    ["MaxRetentionSec=3599", { journald: { maxRetentionSec: 3599 } }, "journald.maxRetentionSec", /at least 1h/],
    ["MaxRetentionSec=1s", { journald: { maxRetentionSec: "1s" } }, "journald.maxRetentionSec", /at least 1h/],
    ["MaxRetentionSec=30min", { journald: { maxRetentionSec: "30min" } }, "journald.maxRetentionSec", /at least 1h/],
    ["MaxRetentionSec=59min 59s", { journald: { maxRetentionSec: "59min 59s" } }, "journald.maxRetentionSec", /at least 1h/],
    ["MemoryMax=0 (systemd ignores it)", { overrides: { m: { memoryMax: "0" } } }, "overrides.m.memoryMax", /at least 32M \(or 'infinity'\).*0 is not even a limit/],
    ["MemoryMax=1", { overrides: { m: { memoryMax: "1" } } }, "overrides.m.memoryMax", /at least 32M/],
    ["MemoryMax=31M", { overrides: { m: { memoryMax: "31M" } } }, "overrides.m.memoryMax", /at least 32M/],
    ["MemoryHigh=0", { overrides: { m: { memoryHigh: "0" } } }, "overrides.m.memoryHigh", /at least 32M/],
    ["MemoryHigh=32767K", { overrides: { m: { memoryHigh: "32767K" } } }, "overrides.m.memoryHigh", /at least 32M/],
    ["MemoryHigh above MemoryMax", { overrides: { m: { memoryMax: "1G", memoryHigh: "2G" } } }, "overrides.m.memoryHigh", /2G is above memoryMax \(1G\).*killed at memoryMax before it is ever throttled/],
    ["MemoryHigh=1025M above MemoryMax=1G", { overrides: { m: { memoryMax: "1G", memoryHigh: "1025M" } } }, "overrides.m.memoryHigh", /above memoryMax/],
];

for (const [what, patch, key, words] of BAD_LIMITS) {
    test(`refuses ${what}, naming ${key}`, () => assertRefused(patch, key, words));
}

test("limits at their floors, infinity for memory and 0 for retention (off) are accepted", () => {
    const { config } = load({
        journald: { systemMaxUse: "16M", systemKeepFree: "16384K", maxRetentionSec: 3600 },
        overrides: {
            a: { order: 10, memoryMax: "32M", memoryHigh: "32M" },
            b: { order: 20, memoryMax: "infinity", memoryHigh: "2G" },
            c: { order: 30, memoryMax: "1G", memoryHigh: "infinity" },
        },
    });
    assert.equal(config.journald!.systemMaxUse, "16M");
    for (const retention of [0, "1h", "60min", "1h 30min", "30day"]) {
        assert.equal(load({ journald: { maxRetentionSec: retention } }).config.journald!.maxRetentionSec, retention);
    }
});

// ---- 4. Requirements ------------------------------------------------------------------------------

const BAD_REQUIREMENTS: [string, RegExp][] = [
    ["uvicorn\n==0.38.0", /must be one line/],
    ["uvicorn==0.38.0\n--index-url=https://evil.example/simple", /must be one line/],
    ["uvicorn==0.38.0\r-r /etc/shadow", /must be one line/],
    ["uvicorn --index-url https://evil.example/simple", /--index-url is an option; options are refused.*releases\.indexUrl/],
    ["uvicorn\t-r other.txt", /-r is an option/],
    ["-r other.txt", /-r is an option.*-r\/-c read another file/],
    ["-c constraints.txt", /-c is an option/],
    ["-e git+https://example.com/x/y.git", /-e is an option.*fetch from elsewhere/],
    ["--editable=.", /--editable is an option/],
    ["--index-url=https://evil.example/simple", /--index-url is an option/],
    ["--extra-index-url https://evil.example/simple", /--extra-index-url is an option/],
    ["-f https://evil.example/wheels/", /-f is an option/],
    ["--find-links=/tmp", /--find-links is an option/],
    ["--trusted-host evil.example", /--trusted-host is an option/],
    ["-i https://evil.example/simple", /-i is an option/],
    ["uvicorn==0.38.0 --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000", /--hash is an option/],
    ["https://evil.example/uvicorn-0.38.0-py3-none-any.whl", /pip requirement.*no URL/],
    ["git+https://example.com/x/y.git", /pip requirement/],
    ["./local-package", /pip requirement/],
    ["/tmp/pkg.whl", /pip requirement/],
    ["uvicorn @ https://evil.example/uvicorn.whl", /pip requirement/],
    ["uvicorn==${VERSION}", /pip requirement/],
    ["uvicorn==0.38.0 # pinned", /pip requirement/],
    ["uvicorn; rm", /pip requirement/],
    ["", /pip requirement/],
];

for (const [entry, words] of BAD_REQUIREMENTS) {
    test(`refuses the app.requirements entry ${JSON.stringify(entry)}`, () => {
        assertRefused({ app: { requirements: ["six==1.17.0", entry] } }, "app.requirements[1]", words);
    });
}

test("requirements with extras, version ranges and environment markers are accepted", () => {
    const entries = ["uvicorn==0.38.0", "uvicorn[standard]>=0.30,<1", "tomli==2.0.1 ; python_version < '3.11'", "six", "Django ~= 5.0", "pkg===1.0", "a.b-c_d==1.0.post1+local", 'colorama==0.4.6; sys_platform == "win32" and python_version >= "3.8"'];
    assert.deepEqual(load({ app: { requirements: entries } }).config.app.requirements, entries);
});

/** Plans a release whose app has `requirements.txt` with `text`; returns the problems, or [] when accepted. */
function requirementsFileProblems(text: string): string[] {
    const config = testConfig({ app: { sourceDir: "demo-app", requirementsFile: "requirements.txt" } });
    try {
        planRelease(config, [{ relativePath: "requirements.txt", content: text }, { relativePath: "server.py", content: "app = 1\n" }], undefined);
    } catch (e) {
        assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
        return [...e.problems];
    }
    return [];
}

const HASH_A = `--hash=sha256:${"a".repeat(64)}`;
const HASH_B = `--hash=sha256:${"b".repeat(64)}`;

test("a requirements file with comments, blank lines, --require-hashes and continued --hash pins is accepted", () => {
    const text = [
        "# This file was autogenerated by uv via the following command:",
        "#    uv export --format requirements-txt",
        "",
        "--require-hashes",
        "uvicorn==0.38.0 \\",
        `    ${HASH_A} \\`,
        `    ${HASH_B}`,
        "    # via my-app",
        `colorama==0.4.6 ; sys_platform == 'win32' \\`,
        `    ${HASH_A}`,
        "six==1.17.0  # an inline comment",
        "",
    ].join("\n");
    assert.deepEqual(requirementsFileProblems(text), []);
    assert.deepEqual(requirementsFileProblems(text.replace(/\n/g, "\r\n")), [], "CRLF line ends");
});

const BAD_FILES: [string, string, number, RegExp][] = [
    ["-r", "six==1.17.0\n-r other.txt\n", 2, /-r is an option/],
    ["-c", "-c constraints.txt\nsix\n", 1, /-c is an option/],
    ["-e", "six\n\n-e .\n", 3, /-e is an option/],
    ["--index-url", "--index-url https://evil.example/simple\nsix\n", 1, /--index-url is an option.*releases\.indexUrl/],
    ["--extra-index-url", "# comment\n--extra-index-url=https://evil.example/simple\n", 2, /--extra-index-url is an option/],
    ["-f", "-f https://evil.example/wheels\n", 1, /-f is an option/],
    ["--trusted-host", "--trusted-host evil.example\n", 1, /--trusted-host is an option/],
    ["an option after a requirement", "six==1.17.0 --index-url=https://evil.example/simple\n", 1, /only --hash=sha256:… pins may follow a requirement/],
    ["an option on a continued line", `six==1.17.0 \\\n    ${HASH_A} \\\n    --index-url=https://evil.example/simple\n`, 1, /--index-url is an option/],
    ["a hash pin without '='", `six==1.17.0 \\\n    --hash sha256:${"a".repeat(64)}\n`, 1, /written --hash=sha256:<hex digits> \(with '='\)/],
    ["a URL", "https://evil.example/six.whl\n", 1, /pip requirement/],
    ["a direct reference", "six @ https://evil.example/six.whl\n", 1, /pip requirement/],
    ["a comment ending in a backslash (pip and uv read the next line differently)", "six # note \\\n--index-url https://evil.example/simple\n", 1, /ends a comment with '\\'/],
    ["a Unicode line separator hiding an option in a comment", "six # note\u2028-r other.txt\n", 1, /Unicode line separator/],
    ["a lone carriage return", "six\r-r other.txt\n", 1, /control character/],
    ["a form feed", "six\f-r other.txt\n", 1, /control character/],
];

for (const [what, text, lineNumber, words] of BAD_FILES) {
    test(`refuses a requirements file line with ${what}, naming the file and line ${lineNumber}`, () => {
        const found = requirementsFileProblems(text);
        const line = found.find((p) => p.startsWith(`app.requirementsFile: requirements.txt line ${lineNumber}: `));
        assert.ok(line, `no problem for line ${lineNumber}; got:\n${found.join("\n")}`);
        assert.match(line, words);
    });
}

test("an app.requirements entry and a requirements file line are judged by one rule", () => {
    for (const text of ["six @ https://evil.example/six.whl", "-r other.txt", "uvicorn --index-url https://x.example/simple"]) {
        const entry = problems({ app: { requirements: [text] } }).find((p) => p.startsWith(`${NS}:app.requirements[0]: `));
        const fileLine = requirementsFileProblems(`${text}\n`)[0];
        assert.ok(entry && fileLine, `${text}: ${entry} / ${fileLine}`);
        assert.equal(entry.slice(`${NS}:app.requirements[0]: `.length), requirementProblem(text, false));
        assert.equal(fileLine, `app.requirementsFile: requirements.txt line 1: ${requirementProblem(text, true)}`);
    }
});

// ---- 5. Env keys that change how the service runs ---------------------------------------------

const INTERPRETER_NAMES = [
    "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTHONEXECUTABLE", "PYTHONPYCACHEPREFIX", "PYTHONPLATLIBDIR", "PYTHONBREAKPOINT", "PYTHONINSPECT", "PYTHON_PRESITE",
    "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "LD_BIND_NOW", "PATH", "GCONV_PATH", "GLIBC_TUNABLES", "OPENSSL_CONF", "OPENSSL_MODULES", "BASH_ENV",
    "UVICORN_APP_DIR", "UVICORN_ENV_FILE", "UVICORN_LOG_CONFIG", "WEB_CONCURRENCY",
];

for (const name of INTERPRETER_NAMES) {
    test(`refuses ${name} in env, secretEnv and an override's environment unless allowInterpreterEnv lists it`, () => {
        assertRefused({ env: { [name]: "/var/amarktai/logs" } }, `env.${name}`, new RegExp(`${name} may not be set: .*the service cannot change its own code.*allowInterpreterEnv: \\["${name}"\\]`));
        assertRefused({ secretEnv: { [name]: "/var/amarktai/logs" } }, `secretEnv.${name}`, new RegExp(`${name} may not be set`));
        assertRefused({ overrides: { e: { environment: { [name]: "/var/amarktai/logs" } } } }, `overrides.e.environment.${name}`, new RegExp(`${name} may not be set`));
        const { config, secrets } = load({ allowInterpreterEnv: [name], env: { [name]: "/opt/lib" }, overrides: { e: { environment: { [name]: "/opt/lib" } } } });
        assert.equal(config.env[name], "/opt/lib");
        assert.deepEqual(secrets.secretEnv, {});
    });
}

test("the reasons say what each kind of name changes", () => {
    assertRefused({ env: { PYTHONPATH: "/x" } }, "env.PYTHONPATH", /where code is loaded from/);
    assertRefused({ env: { LD_PRELOAD: "/x.so" } }, "env.LD_PRELOAD", /dynamic loader/);
    assertRefused({ env: { PATH: "/x" } }, "env.PATH", /which programs/);
    assertRefused({ env: { UVICORN_APP_DIR: "/x" } }, "env.UVICORN_APP_DIR", /uvicorn reads UVICORN_\* as its command-line options/);
});

test("Python variables that load no code, and names that only look alike, are allowed", () => {
    const env = {
        PYTHONUNBUFFERED: "1", PYTHONDONTWRITEBYTECODE: "1", PYTHONSAFEPATH: "1", PYTHONIOENCODING: "utf-8", PYTHONHASHSEED: "0", PYTHONWARNINGS: "ignore", PYTHONFAULTHANDLER: "1",
        path: "/x", MY_PATH: "/x", LDAP_URL: "ldap://x", CLASSPATH: "/x", MYPYTHONPATH: "/x",
    };
    assert.deepEqual(load({ env }).config.env, env);
});

test("an allowInterpreterEnv entry that allows nothing is refused (a misspelt name would look like a permission)", () => {
    assertRefused({ allowInterpreterEnv: ["PTYHONPATH"] }, "allowInterpreterEnv[0]", /PTYHONPATH is allowed without it/);
    assertRefused({ allowInterpreterEnv: ["PATH", "PYTHONUNBUFFERED"] }, "allowInterpreterEnv[1]", /allowed without it/);
});

test("allowing one name allows only that one", () => {
    assertRefused({ allowInterpreterEnv: ["PYTHONPATH"], env: { PYTHONPATH: "/opt/x", LD_PRELOAD: "/x.so" } }, "env.LD_PRELOAD", /may not be set/);
});

test("settings given in code (serviceConfig) are held to the same env rule", () => {
    assert.throws(() => serviceConfig({ env: { PYTHONPATH: "/var/amarktai/logs" } }), (e: unknown) => e instanceof ConfigError && e.problems.some((p) => p.startsWith(`${NS}:env.PYTHONPATH: `)));
    assert.equal(serviceConfig({ env: { PYTHONPATH: "/opt/x" }, allowInterpreterEnv: ["PYTHONPATH"] }).env.PYTHONPATH, "/opt/x");
});

test("one environment-name pattern everywhere in components/: model's ENV_NAME_SOURCE", () => {
    const root = path.resolve(__dirname, "..", "..", "..", "components");
    const files = (fs.readdirSync(root, { recursive: true }) as string[]).filter((f) => f.endsWith(".ts"));
    const copies = files.filter((f) => fs.readFileSync(path.join(root, f), "utf8").includes(ENV_NAME_SOURCE) && f !== path.join("model", "text.ts"));
    assert.deepEqual(copies, [], "the pattern is spelled out again outside model/text.ts");
});

// ---- 6. Booleans and numbers as env values ---------------------------------------------------------

test("env values Pulumi stores as booleans or whole numbers (config set --path) are taken as their text", () => {
    const { config } = load({ env: { FLAG: true, OFF: false, ONE: 1, MINUS: -3, ZERO: 0, TEXT: "x" }, overrides: { e: { environment: { DEBUG: true, LEVEL: 2 } } } });
    assert.deepEqual(config.env, { FLAG: "true", OFF: "false", ONE: "1", MINUS: "-3", ZERO: "0", TEXT: "x" });
    assert.deepEqual(config.overrides.e!.environment, { DEBUG: "true", LEVEL: "2" });
    assert.equal(rawConfig({ env: { FLAG: true } }).env, '{"FLAG":true}', "as Pulumi hands a map set with --path: JSON text with a boolean");
});

test("an env number whose text Pulumi may have changed (a fraction, an integer beyond 2^53) is refused with the fix", () => {
    assertRefused({ env: { RATE: 1.5 } }, "env.RATE", /exact text is lost.*--type string/);
    assertRefused({ env: { BIG: 12345678901234567000 } }, "env.BIG", /exact text is lost/);
    assertRefused({ overrides: { e: { environment: { RATE: 0.25 } } } }, "overrides.e.environment.RATE", /exact text is lost/);
});

test("secretEnv values are strings already (Pulumi encrypts text): a boolean there is still refused", () => {
    assertRefused({ secretEnv: { TOKEN: true } }, "secretEnv.TOKEN", /string/);
});

// ---- 7. Large text files in previews ----------------------------------------------------------------

test("a text file over the preview limit is shown as a size/hash line; one at the limit as its text", () => {
    const atLimit = Buffer.from("a".repeat(PREVIEW_TEXT_LIMIT));
    const over = Buffer.from("a".repeat(PREVIEW_TEXT_LIMIT + 1));
    assert.equal(PREVIEW_TEXT_LIMIT, 256 * 1024);
    assert.equal(previewOf(atLimit), atLimit.toString("utf8"));
    assert.match(previewOf(over), new RegExp(`^text, ${PREVIEW_TEXT_LIMIT + 1} bytes, sha256 [0-9a-f]{16}$`));
});

test("a large text file travels as bytes in blobs and the archive rebuilt from the preview is byte for byte the planned one", () => {
    // Multi-byte UTF-8 and CRLF: the round trip must not re-encode anything.
    const large = Buffer.from(`# données\r\n${"x = 'é€😀'\n".repeat(40000)}`, "utf8");
    assert.ok(large.length > PREVIEW_TEXT_LIMIT);
    const planned = planRelease(
        testConfig({}),
        [
            { relativePath: "big/data.py", content: large },
            { relativePath: "server.py", content: "app = 1\n" },
        ],
        undefined,
    );
    assert.match(planned.preview.files["big/data.py"]!, /^text, \d+ bytes, sha256 [0-9a-f]{16}$/);
    assert.equal(planned.preview.files["server.py"], "app = 1\n");
    assert.deepEqual(Object.keys(planned.preview.blobs), ["big/data.py"]);
    const rebuilt = entriesOfPreview(planned.preview);
    assert.deepEqual(
        rebuilt.map((e) => [e.path, e.mode, e.content.toString("hex")]),
        planned.entries.map((e) => [e.path, e.mode, e.content.toString("hex")]),
    );
    assert.ok(rebuilt.find((e) => e.path === "app/big/data.py")!.content.equals(large));
});
