import { test } from "node:test";
import * as assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../../components/config";
import { NS, TEST_HOST, TEST_PRIVATE_KEY, configProblems, loadTestConfig, rawConfig } from "../support/config";

const load = loadTestConfig;
const problems = configProblems;

test("the defaults are the service notes' values", () => {
    const { config, secrets } = load({});
    assert.equal(config.serviceName, "amarktai-api");
    assert.equal(config.user, "amarktai");
    assert.deepEqual(config.paths, {
        app: "/var/amarktai/app",
        workingDirectory: "/var/amarktai/app/backend",
        venv: "/var/amarktai/venv",
        logs: "/var/amarktai/logs",
        envFile: "/var/amarktai/app/backend/.env",
        releases: "/var/amarktai/releases",
    });
    assert.deepEqual(config.app, { module: "server:app", bindHost: "127.0.0.1", port: 8000, socketActivation: true, logLevel: "info", requirements: ["uvicorn==0.38.0"], workerHealthcheckTimeoutSec: 30 });
    assert.deepEqual(config.releases, { keep: 3, installer: "uv", extraIndexUrls: [], trustedHosts: [], uvSource: "host", reproducible: true });
    assert.deepEqual(config.timeouts, { connectSec: 600, bootSec: 900, aptLockSec: 600, stepSec: 1800 });
    assert.deepEqual(config.dependencies, { after: ["network.target", "mongodb.service"], requires: [], wants: [] });
    assert.deepEqual(config.restart, { policy: "always", sec: 5, timeoutStopSec: 60 });
    assert.equal(config.hardening, "notes");
    assert.equal(config.hosts[0]!.user, "ubuntu");
    assert.deepEqual(secrets.secretEnv, {});
});

test("a valid full config is accepted", () => {
    const { config } = load({
        overrides: { workers: { order: 10, workers: 4 }, memory: { order: 20, memoryMax: "2G", memoryHigh: "1.5G" }, cpu: { order: 30, cpuQuota: "200%" }, debug: { order: 40, restart: "no" } },
        journald: { systemMaxUse: "1G", systemKeepFree: "2G", maxRetentionSec: "30day" },
        env: { ENABLE_TRADING: "true" },
        secretEnv: { OPENAI_API_KEY: "sk-$(not a command)'\"`" },
    });
    assert.equal(config.overrides.workers!.workers, 4);
});

/** [what, config patch, expected key, expected words in the message] */
const BAD: [string, Record<string, unknown>, string, RegExp][] = [
    ["no hosts", { hosts: [] }, `${NS}:hosts`, /at least one host/],
    ["host address with a shell metacharacter", { hosts: [{ ...TEST_HOST, address: "1.2.3.4;rm" }] }, `${NS}:hosts[0].address`, /IP address or DNS name/],
    ["SSH port out of range", { hosts: [{ ...TEST_HOST, port: 70000 }] }, `${NS}:hosts[0].port`, /65535/],
    ["host key not a key", { hosts: [{ ...TEST_HOST, hostKey: "AAAA" }] }, `${NS}:hosts[0].hostKey`, /ssh-keyscan/],
    ["SSH user with a space", { hosts: [{ ...TEST_HOST, user: "bad user" }] }, `${NS}:hosts[0].user`, /user\/group name/],
    ["duplicate host names", { hosts: [TEST_HOST, TEST_HOST] }, `${NS}:hosts[1].name`, /unique/],
    ["two entries reaching one machine (same host key)", { hosts: [TEST_HOST, { ...TEST_HOST, name: "vm-again", address: "vm.example" }] }, `${NS}:hosts[1].hostKey`, /hosts\[1\] \('vm-again'\) and hosts\[0\] \('vm'\).*same host key/],
    ["unknown host key", { hosts: [{ ...TEST_HOST, colour: "blue" }] }, `${NS}:hosts[0]`, /unknown key\(s\) 'colour'/],
    ["adopt not a boolean", { hosts: [{ ...TEST_HOST, adopt: "yes" }] }, `${NS}:hosts[0].adopt`, /boolean/],
    ["service name with a slash", { serviceName: "a/b" }, `${NS}:serviceName`, /lowercase/],
    ["description with a newline", { description: "a\nb" }, `${NS}:description`, /newlines/],
    ["relative working directory", { paths: { workingDirectory: "app" } }, `${NS}:paths.workingDirectory`, /absolute path/],
    ["path with $()", { paths: { venv: "/var/$(id)" } }, `${NS}:paths.venv`, /absolute path/],
    ["path with ..", { paths: { logs: "/var/amarktai/../../etc" } }, `${NS}:paths.logs`, /'\.\.'/],
    ["path with %", { paths: { app: "/var/%h" } }, `${NS}:paths.app`, /no spaces, quotes, \$ or %/],
    ["port out of range", { app: { port: 0 } }, `${NS}:app.port`, />=1/],
    ["port not a number", { app: { port: "80a" } }, `${NS}:app.port`, /number/],
    ["unsupported log level", { app: { logLevel: "verbose" } }, `${NS}:app.logLevel`, /critical.*debug/],
    ["bad module", { app: { module: "server" } }, `${NS}:app.module`, /module:attribute/],
    ["bad requirement", { app: { requirements: ["uvicorn; rm -rf /"] } }, `${NS}:app.requirements[0]`, /-rf is an option/],
    ["requirement that is not a package", { app: { requirements: ["uvicorn; rm"] } }, `${NS}:app.requirements[0]`, /pip requirement/],
    ["dependency that is not a unit", { dependencies: { after: ["mongodb"] } }, `${NS}:dependencies.after[0]`, /unit name/],
    ["restart policy unknown", { restart: { policy: "sometimes" } }, `${NS}:restart.policy`, /always/],
    ["negative RestartSec", { restart: { sec: -1 } }, `${NS}:restart.sec`, />=0/],
    ["unknown hardening profile", { hardening: "paranoid" }, `${NS}:hardening`, /notes.*strict/],
    ["drop-in name with a slash", { overrides: { "a/b": { restart: "no" } } }, `${NS}:overrides.a/b`, /no '\/' or '\.\.'/],
    ["drop-in name with ..", { overrides: { "..": { restart: "no" } } }, `${NS}:overrides...`, /file name/],
    ["empty override", { overrides: { nothing: {} } }, `${NS}:overrides.nothing`, /at least one directive/],
    ["unknown directive in an override", { overrides: { x: { LimitCORE: "0" } } }, `${NS}:overrides.x`, /unknown key\(s\) 'LimitCORE'/],
    ["memory size with a B suffix", { overrides: { m: { memoryMax: "2GB" } } }, `${NS}:overrides.m.memoryMax`, /no 'B'/],
    ["negative memory size", { overrides: { m: { memoryHigh: "-1" } } }, `${NS}:overrides.m.memoryHigh`, /systemd size/],
    ["CPU quota without %", { overrides: { c: { cpuQuota: "200" } } }, `${NS}:overrides.c.cpuQuota`, /percentage/],
    ["workers zero", { overrides: { w: { workers: 0 } } }, `${NS}:overrides.w.workers`, />=1/],
    ["override env name invalid", { overrides: { e: { environment: { "A-B": "x" } } } }, `${NS}:overrides.e.environment.A-B`, /environment variable name/],
    ["a second override without an order", { overrides: { workers: { order: 10, workers: 4 }, cpu: { cpuQuota: "200%" } } }, `${NS}:overrides.cpu.order`, /required when there is more than one override.*sorted by key/],
    ["two overrides with the same order", { overrides: { workers: { order: 20, workers: 4 }, cpu: { order: 20, cpuQuota: "200%" } } }, `${NS}:overrides.workers.order`, /20 is also the order of 'cpu'/],
    ["override order above 99", { overrides: { w: { order: 100, workers: 2 } } }, `${NS}:overrides.w.order`, /<=99/],
    ["journald size invalid", { journald: { systemMaxUse: "lots" } }, `${NS}:journald.systemMaxUse`, /systemd size/],
    ["journald retention invalid", { journald: { maxRetentionSec: "forever" } }, `${NS}:journald.maxRetentionSec`, /time span/],
    ["env key invalid", { env: { "1FLAG": "x" } }, `${NS}:env.1FLAG`, /environment variable name/],
    ["env value with a newline", { env: { FLAG: "a\nb" } }, `${NS}:env.FLAG`, /newlines/],
    ["env value with a control character", { env: { FLAG: "a\u0007b" } }, `${NS}:env.FLAG`, /control characters/],
    ["secret env key invalid", { secretEnv: { "BAD KEY": "x" } }, `${NS}:secretEnv.BAD KEY`, /environment variable name/],
    ["secret env value with a newline", { secretEnv: { TOKEN: "a\nb" } }, `${NS}:secretEnv.TOKEN`, /newlines/],
    ["the same key in env and secretEnv", { env: { A: "1" }, secretEnv: { A: "2" } }, `${NS}:env.A`, /one place only/],
    ["private key that is not a key", { sshPrivateKey: "hunter2" }, `${NS}:sshPrivateKey`, /private key/],
    ["health path not a path", { health: { path: "health" } }, `${NS}:health.path`, /URL path/],
    ["health timeout zero", { health: { timeoutSec: 0 } }, `${NS}:health.timeoutSec`, />=1/],
    ["unknown top-level key", { worker: 4 }, `${NS}:worker`, /unknown config key/],
    // The privilege boundary: config that would take over the host.
    ["serviceName ssh (would replace sshd)", { serviceName: "ssh" }, `${NS}:serviceName`, /system unit name.*would replace it/],
    ["serviceName sshd", { serviceName: "sshd" }, `${NS}:serviceName`, /system unit name/],
    ["serviceName systemd-journald", { serviceName: "systemd-journald" }, `${NS}:serviceName`, /systemd-\*/],
    ["serviceName dbus", { serviceName: "dbus" }, `${NS}:serviceName`, /system unit name/],
    ["serviceName cron", { serviceName: "cron" }, `${NS}:serviceName`, /system unit name/],
    ["serviceName networking", { serviceName: "networking" }, `${NS}:serviceName`, /system unit name/],
    ["serviceName getty", { serviceName: "getty" }, `${NS}:serviceName`, /system unit name/],
    ["serviceName user", { serviceName: "user" }, `${NS}:serviceName`, /system unit name/],
    ["serviceName init", { serviceName: "init" }, `${NS}:serviceName`, /system unit name/],
    ["paths.logs /etc", { paths: { logs: "/etc" } }, `${NS}:paths.logs`, /\/etc is a system directory/],
    ["paths.app /", { paths: { app: "/" } }, `${NS}:paths.app`, /never a system directory/],
    ["paths.venv /var", { paths: { venv: "/var" } }, `${NS}:paths.venv`, /\/var is a system directory/],
    ["paths.logs /var/lib", { paths: { logs: "/var/lib" } }, `${NS}:paths.logs`, /\/var\/lib is a system directory/],
    ["paths.logs /var/log", { paths: { logs: "/var/log" } }, `${NS}:paths.logs`, /system directory/],
    ["paths.app /home/x", { paths: { app: "/home/x" } }, `${NS}:paths.app`, /inside \/home/],
    ["paths.app /root/app", { paths: { app: "/root/app" } }, `${NS}:paths.app`, /inside \/root/],
    ["paths.logs under /tmp", { paths: { logs: "/tmp/logs" } }, `${NS}:paths.logs`, /inside \/tmp/],
    ["paths.logs under /var/tmp", { paths: { logs: "/var/tmp/logs" } }, `${NS}:paths.logs`, /inside \/var\/tmp/],
    ["paths.logs /usr/local/x", { paths: { logs: "/usr/local/x" } }, `${NS}:paths.logs`, /inside \/usr/],
    ["paths.logs /srv (one level)", { paths: { logs: "/srv" } }, `${NS}:paths.logs`, /system directory/],
    ["paths.logs outside a safe base", { paths: { logs: "/data/logs" } }, `${NS}:paths.logs`, /not under \/var\/<name>/],
    ["paths.logs in the library's state", { paths: { logs: "/var/lib/amarktai-infra/x" } }, `${NS}:paths.logs`, /inside \/var\/lib\/amarktai-infra/],
    ["logs inside the venv", { paths: { logs: "/var/amarktai/venv/logs" } }, `${NS}:paths.logs`, /inside paths.venv/],
    ["venv inside the app", { paths: { venv: "/var/amarktai/app/venv" } }, `${NS}:paths.venv`, /inside paths.app/],
    ["logs the same as the app", { paths: { logs: "/var/amarktai/app" } }, `${NS}:paths.app`, /same directory as paths.logs/],
    ["working directory outside the app", { paths: { workingDirectory: "/srv/other" } }, `${NS}:paths.workingDirectory`, /inside it/],
    ["env file outside the working directory", { paths: { envFile: "/var/amarktai/logs/.env" } }, `${NS}:paths.envFile`, /directly in paths.workingDirectory/],
    ["user root", { user: "root" }, `${NS}:user`, /must not be root/],
    ["group root", { group: "root" }, `${NS}:group`, /must not be root/],
    ["user root even with allowExistingUser", { user: "root", allowExistingUser: true }, `${NS}:user`, /must not be root/],
    ["user www-data (a system account)", { user: "www-data" }, `${NS}:user`, /system account.*allowExistingUser: true/],
    ["user ubuntu (the login user)", { user: "ubuntu" }, `${NS}:user`, /system account/],
    ["group sudo", { group: "sudo" }, `${NS}:group`, /system account/],
    ["group systemd-journal", { group: "systemd-journal" }, `${NS}:group`, /system account/],
    // Sizes that cannot run.
    ["an env value over the entry limit", { env: { BIG: "x".repeat(40 * 1024) } }, `${NS}:env.BIG`, /at most 32768 bytes.*131072/],
    ["a secret env value over the entry limit", { secretEnv: { BIG: "x".repeat(200 * 1024) } }, `${NS}:secretEnv.BIG`, /at most 32768 bytes/],
    ["an override environment value over the entry limit", { overrides: { e: { environment: { BIG: "x".repeat(33 * 1024) } } } }, `${NS}:overrides.e.environment.BIG`, /at most 32768/],
    ["a command line over its limit", { paths: { venv: `/opt/${"v".repeat(9000)}` } }, `${NS}:paths.venv`, /command line is \d+ bytes; it may be at most 8192/],
    ["an environment over the total limit", { env: { A: "x".repeat(30000), B: "x".repeat(30000), C: "x".repeat(30000) } }, `${NS}:env`, /at most 65536 bytes in all/],
];

for (const [what, patch, key, words] of BAD) {
    test(`refuses ${what}, naming ${key}`, () => {
        const found = problems(patch);
        const line = found.find((p) => p.startsWith(`${key}: `));
        assert.ok(line, `no problem reported for ${key}; got:\n${found.join("\n")}`);
        assert.match(line, words);
    });
}

test("a host may be marked for adoption of a hand-made install", () => {
    const { config } = load({ hosts: [{ ...TEST_HOST, adopt: true }] });
    assert.equal(config.hosts[0]!.adopt, true);
    assert.equal(load({}).config.hosts[0]!.adopt, undefined);
});

test("a system account is accepted with allowExistingUser", () => {
    const { config } = load({ user: "www-data", group: "www-data", allowExistingUser: true });
    assert.equal(config.user, "www-data");
    assert.equal(config.allowExistingUser, true);
});

test("paths of their own under /srv, /opt and /var are accepted", () => {
    const { config } = load({ paths: { app: "/srv/api/app", workingDirectory: "/srv/api/app", venv: "/opt/api-venv", logs: "/var/log/api", envFile: "/srv/api/app/.env" } });
    assert.equal(config.paths.logs, "/var/log/api");
});

/** Secrecy as Pulumi reports it: the keys set with --secret. */
function loadWithSecrecy(values: Record<string, unknown>, secretKeys: string[]): string[] {
    try {
        loadConfig(rawConfig({ hosts: [TEST_HOST], sshPrivateKey: TEST_PRIVATE_KEY, ...values }), NS, { isSecret: (k) => secretKeys.includes(k) });
    } catch (e) {
        assert.ok(e instanceof ConfigError);
        return [...e.problems];
    }
    return [];
}

test("secret keys stored as secrets are accepted", () => {
    assert.deepEqual(loadWithSecrecy({ secretEnv: { A: "1" } }, ["sshPrivateKey", "secretEnv"]), []);
});

test("the empty secretEnv of Pulumi.yaml's defaults is accepted as it is: it holds nothing secret", () => {
    assert.deepEqual(loadWithSecrecy({ secretEnv: {} }, ["sshPrivateKey"]), []);
});

test("a plaintext sshPrivateKey is refused with the command that fixes it", () => {
    const found = loadWithSecrecy({}, []);
    const line = found.find((p) => p.startsWith(`${NS}:sshPrivateKey: `));
    assert.ok(line, found.join("\n"));
    assert.match(line, /plain text/);
    assert.ok(line.includes("pulumi config set --secret sshPrivateKey < "), line);
    assert.ok(!line.includes("OPENSSH PRIVATE KEY"), "the key itself is never echoed");
});

test("a plaintext secretEnv is refused with one set --secret line per entry, values never echoed", () => {
    const found = loadWithSecrecy({ secretEnv: { OPENAI_API_KEY: "sk-visible", MONGO_URL: "mongodb://u:p@h" } }, ["sshPrivateKey"]);
    const line = found.find((p) => p.startsWith(`${NS}:secretEnv: `));
    assert.ok(line, found.join("\n"));
    assert.ok(line.includes("pulumi config set --secret --path 'secretEnv.OPENAI_API_KEY'"), line);
    assert.ok(line.includes("pulumi config set --secret --path 'secretEnv.MONGO_URL'"), line);
    assert.ok(!line.includes("sk-visible") && !line.includes("u:p@h"), line);
});

test("a secret-flagged env value is refused and pointed at secretEnv", () => {
    const found = loadWithSecrecy({ env: { TOKEN: "hidden-value" } }, ["sshPrivateKey", "env"]);
    const line = found.find((p) => p.startsWith(`${NS}:env: `));
    assert.ok(line, found.join("\n"));
    assert.match(line, /set with --secret.*secretEnv/);
    assert.ok(!line.includes("hidden-value"));
});

test("a secret-flagged override environment is refused and pointed at secretEnv", () => {
    const found = loadWithSecrecy({ overrides: { e: { environment: { TOKEN: "hidden" } } } }, ["sshPrivateKey", "overrides"]);
    const line = found.find((p) => p.startsWith(`${NS}:overrides: `));
    assert.ok(line, found.join("\n"));
    assert.match(line, /secretEnv.*systemctl show/);
});

test("every problem is reported at once", () => {
    const found = problems({ app: { port: 0, logLevel: "loud" }, overrides: { w: { workers: 0 } } });
    assert.equal(found.length, 3);
});

test("a refused secret is never echoed", () => {
    const secret = "super-secret-value\nwith-newline";
    const found = problems({ secretEnv: { TOKEN: secret }, sshPrivateKey: "not-a-key-but-secret" });
    for (const p of found) {
        assert.ok(!p.includes("super-secret-value") && !p.includes("not-a-key-but-secret"), p);
    }
});

test("missing hosts and key are reported as missing", () => {
    try {
        loadConfig({}, NS);
        assert.fail("accepted");
    } catch (e) {
        const ps = (e as ConfigError).problems.join("\n");
        assert.match(ps, new RegExp(`${NS}:hosts: `));
        assert.match(ps, new RegExp(`${NS}:sshPrivateKey: `));
    }
});
