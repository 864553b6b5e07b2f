import { test, before } from "node:test";
import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { envStorePath, hostKeyFingerprint } from "../../components/model";
import { TEST_HOST } from "../support/config";

interface Registered {
    type: string;
    name: string;
    inputs: Record<string, unknown>;
}
const registered: Registered[] = [];

/** What the mocked adoption carries from a hand-made .env (ENABLE_TRADING is the config's own, OPENAI_API_KEY secretEnv's). */
const MOCK_CARRIED = { JWT_SECRET: "carried-jwt", MONGO_URL: "mongodb://u:carried@db/x", ENABLE_TRADING: "true", OPENAI_API_KEY: "carried-key" };

/** What the mocked resolution returns as the lock. */
const MOCK_LOCK = "uvicorn==0.38.0 \\\n    --hash=sha256:48c0afd214ceb59340075b4a052ea1ee91c16fbc2a9b1469cca0e54566977b02\n";

before(() => {
    pulumi.runtime.setMocks(
        {
            newResource(args: pulumi.runtime.MockResourceArgs) {
                registered.push({ type: args.type, name: args.name, inputs: args.inputs });
                const state = args.type.endsWith(":RandomSecret")
                    ? { ...args.inputs, value: "generated-by-mock" }
                    : args.type.endsWith(":ResolvedRequirements")
                      ? { ...args.inputs, resolved: MOCK_LOCK, packages: ["uvicorn==0.38.0"] }
                      : args.type.endsWith(":HostAdoption")
                        ? { ...args.inputs, report: [], backupDir: "/b", carriedEnv: MOCK_CARRIED }
                        : args.inputs;
                return { id: `${args.name}-id`, state };
            },
            call(args: pulumi.runtime.MockCallArgs) {
                return args.inputs;
            },
        },
        "amarktai-infra",
        "test",
        false,
    );
});

/** A second machine's host key (each host entry must reach its own machine). */
const SECOND_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHn5ZQ0x1mB5dJ3uVxKq0bQ9v2cHh8fYk3mW7tLpR2sA";

/** The name of a host's resource: `<component>-<host key fingerprint>-<part>` (the first test host unless `hostKey` says otherwise). */
function hostResource(component: string, part: string, hostKey: string = TEST_HOST.hostKey): string {
    return `${component}-${hostKeyFingerprint(hostKey)}-${part}`;
}

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

/** The app files `build()` deploys. */
const BUILD_FILES = [{ relativePath: "server.py", content: "app = None\n" }];

function buildConfig() {
    const { testConfig, TEST_HOST } = require("../support/config") as typeof import("../support/config");
    return testConfig({
        hosts: [TEST_HOST, { ...TEST_HOST, name: "vm2", port: 2223, hostKey: SECOND_HOST_KEY }],
        overrides: { workers: { order: 10, workers: 4 }, memory: { order: 20, memoryMax: "2G" } },
        journald: { systemMaxUse: "1G" },
        env: { ENABLE_TRADING: "false" },
        app: { sourceDir: "demo-app" },
    });
}

async function build() {
    const { SystemdService } = await import("../../components/pulumi/service");
    const config = buildConfig();
    const service = new SystemdService("amarktai-api", {
        config,
        sshPrivateKey: pulumi.secret(KEY),
        secretEnv: pulumi.secret({ OPENAI_API_KEY: "sk-test-123" }),
        appFiles: BUILD_FILES,
    });
    return service;
}

/** The id of the release planned from {@link MOCK_LOCK} for `build()`'s config and files. */
function lockedReleaseId(): string {
    const { planRelease } = require("../../components/plan") as typeof import("../../components/plan");
    return planRelease(buildConfig(), BUILD_FILES, envStorePath("amarktai-api"), MOCK_LOCK).spec.id;
}

let builtOnce: Promise<Registered[]> | undefined;

/** The resources `build()` registers, built once and shared by the tests that only read them (each test may run alone). */
function builtResources(): Promise<Registered[]> {
    builtOnce ??= (async () => {
        registered.length = 0;
        await value(pulumi.all((await build()).hosts.map((h) => h.activatedAt)));
        return [...registered];
    })();
    return builtOnce;
}

/** The engine's marker for a secret value in serialized inputs. */
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

function isSecretInput(v: unknown): boolean {
    return typeof v === "object" && v !== null && Object.values(v).includes(SECRET_SIG);
}

/** The value of an input, secret or not. */
function plain(v: unknown): any {
    return isSecretInput(v) ? (v as { value: unknown }).value : v;
}

function value<T>(o: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => o.apply(resolve));
}

test("each host gets a prepare step, one staged file per managed file, and one activation", async () => {
    const registered = await builtResources();
    const names = registered.map((r) => `${r.type.split(":").pop()} ${r.name}`).sort();
    for (const hostKey of [TEST_HOST.hostKey, SECOND_HOST_KEY]) {
        for (const label of ["prepare", "unit", "dropin-workers", "dropin-memory", "journald", "env", "release", "activation"]) {
            const wanted = hostResource("amarktai-api", label, hostKey);
            assert.ok(names.some((n) => n.endsWith(` ${wanted}`)), `missing ${wanted} in\n${names.join("\n")}`);
        }
    }
    assert.deepEqual(
        registered.filter((r) => r.type.endsWith(":RandomSecret")).map((r) => r.name).sort(),
        ["amarktai-api-env-fingerprint-key", "amarktai-api-jwt-secret"],
        "one JWT secret and one fingerprint key, shared by all hosts",
    );
});

test("the unit's staged content is the rendered unit text and the drop-in's is the drop-in text", async () => {
    const registered = await builtResources();
    const unit = registered.find((r) => r.name === hostResource("amarktai-api", "unit"))!;
    assert.match(String(plain(unit.inputs.content)), /^ExecStart=\/var\/amarktai\/venv\/bin\/python -m uvicorn server:app/m);
    const workers = registered.find((r) => r.name === hostResource("amarktai-api", "dropin-workers"))!;
    assert.match(String(plain(workers.inputs.content)), /--workers 4/);
});

test("the activation lists every managed file by path with its mode, owner and kind, with the hashes that trigger it", async () => {
    const registered = await builtResources();
    const activation = registered.find((r) => r.name === hostResource("amarktai-api", "activation"))!;
    assert.deepEqual(plain(activation.inputs.files), {
        "/etc/systemd/system/amarktai-api.service": { mode: "0644", owner: "root", group: "root", effect: "systemd" },
        "/etc/systemd/system/amarktai-api.socket": { mode: "0644", owner: "root", group: "root", effect: "systemd" },
        "/etc/systemd/system/amarktai-api.service.d/10-workers.conf": { mode: "0644", owner: "root", group: "root", effect: "systemd" },
        "/etc/systemd/system/amarktai-api.service.d/20-memory.conf": { mode: "0644", owner: "root", group: "root", effect: "systemd" },
        "/etc/systemd/journald.conf.d/60-amarktai-infra-amarktai-api.conf": { mode: "0644", owner: "root", group: "root", effect: "journald" },
        "/etc/amarktai-infra/amarktai-api/env": { mode: "0640", owner: "root", group: "amarktai", effect: "restart" },
    });
    assert.deepEqual(plain(activation.inputs.health), { url: "http://127.0.0.1:8000/health", timeoutSec: 90 });
    const hashes = plain(activation.inputs.contentHashes) as Record<string, string>;
    assert.equal(Object.keys(hashes).length, 6);
    assert.match(hashes["/etc/systemd/system/amarktai-api.service"]!, /^[0-9a-f]{16}$/);
    assert.equal(activation.inputs.purge, undefined, "no purge unless purgeOnDestroy");
});

test("each host builds the release before its activation, which switches to that release id", async () => {
    const registered = await builtResources();
    const release = registered.find((r) => r.name === hostResource("amarktai-api", "release"))!;
    const spec = plain(release.inputs.release) as { id: string; releasesDir: string; venvLink: string; appLink: string; keep: number };
    assert.match(spec.id, /^[0-9a-f]{16}$/);
    assert.deepEqual({ ...spec, id: "" }, { ...spec, id: "", releasesDir: "/var/amarktai/releases", venvLink: "/var/amarktai/venv", appLink: "/var/amarktai/app/backend", keep: 3 });
    assert.deepEqual(plain(release.inputs.files), { "server.py": "app = None\n" }, "previews show each app file's text");
    assert.equal(plain(release.inputs.requirements), MOCK_LOCK, "every host installs the resolved lock");
    assert.equal(spec.id, lockedReleaseId(), "the release id covers the lock");
    for (const hostKey of [TEST_HOST.hostKey, SECOND_HOST_KEY]) {
        const activation = registered.find((r) => r.name === hostResource("amarktai-api", "activation", hostKey))!;
        assert.equal((plain(activation.inputs.release) as { id: string }).id, spec.id);
    }
});

test("the requirements are resolved once, on the first host after it is prepared, from the requirements as written", async () => {
    const registered = await builtResources();
    const resolutions = registered.filter((r) => r.type.endsWith(":ResolvedRequirements"));
    assert.deepEqual(resolutions.map((r) => r.name), ["amarktai-api-requirements"]);
    const inputs = resolutions[0]!.inputs;
    assert.equal((plain(inputs.resolution) as { requirements: string }).requirements, "uvicorn==0.38.0\n");
    assert.equal((plain(inputs.connection) as { port: number }).port, TEST_HOST.port);
});

test("the .env content, the hashes that include it and the SSH connection are secrets; the unit text is not", async () => {
    const registered = await builtResources();
    const env = registered.find((r) => r.name === hostResource("amarktai-api", "env"))!;
    assert.ok(isSecretInput(env.inputs.content), ".env content must be secret");
    const envText = String(plain(env.inputs.content));
    assert.match(envText, /^ENABLE_TRADING=false$/m);
    assert.match(envText, /^OPENAI_API_KEY=sk-test-123$/m);
    assert.match(envText, /^JWT_SECRET=generated-by-mock$/m, "JWT_SECRET generated when not set");
    const unit = registered.find((r) => r.name === hostResource("amarktai-api", "unit"))!;
    assert.ok(!isSecretInput(unit.inputs.content), "unit text must stay readable in previews");
    const connected = registered.filter((r) => r.type.includes("dynamic/amarktai:Host") || r.type.endsWith(":ServiceActivation"));
    assert.ok(connected.length >= 2 * 3, `resources with a connection: ${connected.map((r) => r.name).join(", ")}`);
    for (const r of connected) {
        assert.ok(isSecretInput(r.inputs.connection), `${r.name}: the connection (with the private key) must be secret`);
    }
    const activation = registered.find((r) => r.name === hostResource("amarktai-api", "activation"))!;
    assert.ok(isSecretInput(activation.inputs.contentHashes), "hashes derived from the .env are secret");
});

test("the .env's reviewer view is plain text: flags as they are, secrets as fingerprints only", async () => {
    const registered = await builtResources();
    const env = registered.find((r) => r.name === hostResource("amarktai-api", "env"))!;
    assert.ok(!isSecretInput(env.inputs.view), "the view must be readable in previews");
    const view = String(env.inputs.view);
    assert.match(view, /^ENABLE_TRADING=false$/m);
    assert.match(view, /^OPENAI_API_KEY=\[secret [0-9a-f]{12}\]$/m);
    assert.match(view, /^JWT_SECRET=\[secret [0-9a-f]{12}\]$/m);
    assert.ok(!view.includes("sk-test-123") && !view.includes("generated-by-mock"), view);
});

test("a configured JWT_SECRET is used instead of the generated one", async () => {
    registered.length = 0;
    const { SystemdService } = await import("../../components/pulumi/service");
    const { testConfig } = await import("../support/config");
    const s = new SystemdService("jwt-given", { config: testConfig(), sshPrivateKey: pulumi.secret(KEY), secretEnv: pulumi.secret({ JWT_SECRET: "from-config" }) });
    await value(s.hosts[0]!.activatedAt);
    const env = registered.find((r) => r.name === hostResource("jwt-given", "env"))!;
    assert.match(String(plain(env.inputs.content)), /^JWT_SECRET=from-config$/m);
});

/** A well-formed ed25519 host key of its own for each `seed` (a fixed 32-byte public key). */
function ed25519HostKey(seed: number): string {
    const type = Buffer.from("ssh-ed25519");
    const u32 = (n: number) => Buffer.from([0, 0, 0, n]);
    return `ssh-ed25519 ${Buffer.concat([u32(type.length), type, u32(32), Buffer.alloc(32, seed)]).toString("base64")}`;
}

test("rollout batches: each host's activation depends on every activation of the batch before it, and on none of its own or later batches", async () => {
    const { SystemdService } = await import("../../components/pulumi/service");
    const { testConfig } = await import("../support/config");
    const keys = [1, 2, 3, 4, 5].map(ed25519HostKey);
    const hosts = keys.map((hostKey, i) => ({ ...TEST_HOST, name: `h${i + 1}`, port: 2201 + i, hostKey }));
    /** For each host in order, the hosts whose activations its activation depends on. */
    const waitsFor = async (component: string, maxUnavailable: number): Promise<string[][]> => {
        const nameOf = new Map<pulumi.Resource, string>();
        const dependsOn = new Map<string, string[]>();
        const record: pulumi.ResourceTransformation = ({ resource, name, opts }) => {
            nameOf.set(resource, name);
            const deps = Array.isArray(opts.dependsOn) ? (opts.dependsOn as pulumi.Resource[]) : [];
            dependsOn.set(name, deps.map((d) => nameOf.get(d) ?? "?"));
            return undefined;
        };
        const s = new SystemdService(component, { config: testConfig({ hosts, rollout: { maxUnavailable } }), sshPrivateKey: pulumi.secret(KEY), secretEnv: pulumi.secret({}) }, { transformations: [record] });
        await value(pulumi.all(s.hosts.map((h) => h.activatedAt)));
        const activationOf = keys.map((k) => hostResource(component, "activation", k));
        return activationOf.map((a) => {
            const deps = dependsOn.get(a);
            assert.ok(deps, `${a} was not registered`);
            assert.ok(deps.includes(hostResource(component, "prepare", keys[activationOf.indexOf(a)])), `${a} waits for its host's preparation`);
            return deps.filter((d) => activationOf.includes(d)).map((d) => `h${activationOf.indexOf(d) + 1}`);
        });
    };
    assert.deepEqual(await waitsFor("one-at-a-time", 1), [[], ["h1"], ["h2"], ["h3"], ["h4"]]);
    assert.deepEqual(await waitsFor("two-at-a-time", 2), [[], [], ["h1", "h2"], ["h1", "h2"], ["h3", "h4"]]);
    assert.deepEqual(await waitsFor("all-at-once", 10), [[], [], [], [], []]);
});

test("resource names come from the host key alone: renaming a host or changing its address, port or login keeps them, and aliases adopt the old names", async () => {
    const { hostResourceNaming } = await import("../../components/pulumi/service");
    const before = hostResourceNaming("amarktai-api", TEST_HOST);
    const after = hostResourceNaming("amarktai-api", { ...TEST_HOST, name: "renamed", address: "10.0.0.9" });
    assert.equal(after.name("unit"), before.name("unit"));
    assert.equal(before.name("unit"), `amarktai-api-${hostKeyFingerprint(TEST_HOST.hostKey)}-unit`);
    assert.deepEqual(before.opts("unit"), { aliases: [{ name: "amarktai-api-vm-unit" }] }, "state written under the host's name migrates");
    assert.deepEqual(hostResourceNaming("amarktai-api", { address: "10.0.0.9", hostKey: TEST_HOST.hostKey }).opts("env"), { aliases: [{ name: "amarktai-api-10.0.0.9-env" }] });
    assert.notEqual(hostResourceNaming("amarktai-api", { ...TEST_HOST, hostKey: SECOND_HOST_KEY }).name("unit"), before.name("unit"), "another machine, another name");
});

test("every file and the activation name the same owner: project, stack and the host's resource stem", async () => {
    registered.length = 0;
    await value(pulumi.all((await build()).hosts.map((h) => h.activatedAt)));
    const stem = hostResource("amarktai-api", "").replace(/-$/, "");
    // The preparation and the release remove nothing from the host when deleted: they need no owner.
    const owned = registered.filter((r) => r.name.startsWith(`${stem}-`) && !r.name.endsWith("-prepare") && !r.name.endsWith("-release"));
    assert.ok(owned.length >= 3);
    for (const r of owned) assert.equal(r.inputs.owner, `amarktai-infra/test/${stem}`, r.name);
});

test("a host with adopt gets a HostAdoption its preparation waits for, and its .env keeps the hand-made values the config does not set", async () => {
    const { SystemdService } = await import("../../components/pulumi/service");
    const { testConfig } = await import("../support/config");
    const dependsOn = new Map<string, string[]>();
    const nameOf = new Map<pulumi.Resource, string>();
    const record: pulumi.ResourceTransformation = ({ resource, name, opts }) => {
        nameOf.set(resource, name);
        const deps = Array.isArray(opts.dependsOn) ? (opts.dependsOn as pulumi.Resource[]) : [];
        dependsOn.set(name, deps.map((d) => nameOf.get(d) ?? "?"));
        return undefined;
    };
    registered.length = 0;
    const s = new SystemdService(
        "adopting",
        {
            config: testConfig({ hosts: [{ ...TEST_HOST, adopt: true }, { ...TEST_HOST, name: "vm2", port: 2223, hostKey: SECOND_HOST_KEY }], env: { ENABLE_TRADING: "false" } }),
            sshPrivateKey: pulumi.secret(KEY),
            secretEnv: pulumi.secret({ OPENAI_API_KEY: "sk-config" }),
        },
        { transformations: [record] },
    );
    await value(pulumi.all(s.hosts.map((h) => h.activatedAt)));
    const adoptions = registered.filter((r) => r.type.endsWith(":HostAdoption"));
    assert.deepEqual(adoptions.map((r) => r.name), [hostResource("adopting", "adoption")], "only the host with adopt");
    assert.ok(dependsOn.get(hostResource("adopting", "prepare"))!.includes(hostResource("adopting", "adoption")), "the preparation waits for the takeover");
    assert.ok(isSecretInput(adoptions[0]!.inputs.connection) && isSecretInput(adoptions[0]!.inputs.expected), "connection and expectations are secret inputs");
    const envOf = (hostKey: string) => String(plain(registered.find((r) => r.name === hostResource("adopting", "env", hostKey))!.inputs.content));
    const adopted = envOf(TEST_HOST.hostKey);
    assert.match(adopted, /^JWT_SECRET=carried-jwt$/m, "the hand-made JWT_SECRET is kept");
    assert.match(adopted, /^MONGO_URL=mongodb:\/\/u:carried@db\/x$/m, "a value the config does not set is carried");
    assert.match(adopted, /^ENABLE_TRADING=false$/m, "the config's env wins");
    assert.match(adopted, /^OPENAI_API_KEY=sk-config$/m, "the config's secretEnv wins");
    const other = envOf(SECOND_HOST_KEY);
    assert.match(other, /^JWT_SECRET=generated-by-mock$/m);
    assert.doesNotMatch(other, /MONGO_URL/, "another host carries nothing");
    const activation = registered.find((r) => r.name === hostResource("adopting", "activation"))!;
    assert.ok((plain(activation.inputs.secretEnvKeys) as string[]).includes("MONGO_URL"), "carried names redact the journal too");
});
