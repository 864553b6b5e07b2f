/**
 * The one zod schema for the whole stack configuration. Defaults come from
 * the service notes; every refusal names the key path and what is allowed.
 * Docs and the `config:` block of `Pulumi.yaml` are checked against it.
 */
import { z } from "zod";
import { BUILD_ACCOUNT, CONTROL_CHARS, ENV_NAME, parseHostKey } from "../model";
import { LIMIT_FLOORS, ROOT_ACCOUNTS, reservedUnitName, unsafePathReason } from "./boundary";
import { requirementProblem } from "./requirements";
import { bytesOfSize, secondsOfSpan, showSize } from "./units";

/** A single-line string: no newline, no control character. */
const line = (what: string) =>
    z.string().refine((v) => !CONTROL_CHARS.test(v), { message: `${what} must not contain newlines or control characters` });

/** An absolute path made of safe characters (no whitespace, quotes, `$`, `%` or `..` segments). */
const absolutePath = z
    .string()
    .regex(/^\/[A-Za-z0-9._@+\/-]*$/, {
        message: "must be an absolute path of letters, digits and . _ @ + / - (no spaces, quotes, $ or %)",
    })
    .refine((p) => !p.split("/").includes(".."), { message: "must not contain '..' segments" });

/** A path for the service's files: absolute, and under a safe base, never a system directory nor the library's own (see `boundary.ts`). */
const servicePath = absolutePath.superRefine((p, ctx) => {
    const reason = unsafePathReason(p);
    if (reason !== undefined) {
        ctx.addIssue({ code: "custom", message: `must be a directory of its own under /var/<name>/…, /srv/<name> or /opt/<name>, never a system directory or the library's own: ${reason}` });
    }
});

/** A systemd unit name such as `mongodb.service` or `network.target`. */
const unitName = z.string().regex(/^[A-Za-z0-9:_.\\@-]+\.(service|target|socket|mount|timer|path|slice|scope|device|swap|automount)$/, {
    message: "must be a unit name like 'mongodb.service' or 'network.target'",
});

/** A POSIX user or group name as `useradd` accepts it. */
const accountName = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, {
    message: "must be a user/group name: lowercase letters, digits, _ and -, starting with a letter or _ (at most 32)",
});

/** The service's user or group: never root (the switch `allowExistingUser` does not change that). */
const serviceAccount = accountName
    .refine((n) => !ROOT_ACCOUNTS.includes(n), { message: "must not be root: the service never runs with uid or gid 0" })
    .refine((n) => n !== BUILD_ACCOUNT && !n.startsWith(`${BUILD_ACCOUNT}-`), { message: `must not be ${BUILD_ACCOUNT} or start with ${BUILD_ACCOUNT}-: release builds run as such throwaway accounts, which must never own what the service runs` });

/** An environment variable name (the one pattern of `model`). */
const envName = z.string().regex(ENV_NAME, { message: "must be an environment variable name" });

/** systemd byte sizes: a number with an optional K, M, G, T suffix (base 1024), e.g. `2G`, `1.5G`, `512M`; or `infinity`. */
const byteSize = z.string().regex(/^(?:\d+(?:\.\d+)?[KMGT]?|infinity)$/, {
    message: "must be a systemd size like '2G', '1.5G', '512M' or 'infinity' (suffixes K, M, G, T; no 'B')",
});

/** A size at least `floor` (see `LIMIT_FLOORS`): smaller ones are refused with why; `infinity` only where systemd reads it. */
const sizeAtLeast = (floor: { readonly bytes: number; readonly why: string }, infinity: boolean) =>
    byteSize.superRefine((v, ctx) => {
        const bytes = bytesOfSize(v);
        if (bytes === Infinity && !infinity) {
            ctx.addIssue({ code: "custom", message: "journald does not read 'infinity' (it logs a parse error and ignores the line); omit the key for journald's default" });
        } else if (bytes !== undefined && bytes < floor.bytes) {
            ctx.addIssue({ code: "custom", message: `must be at least ${showSize(floor.bytes)}${infinity ? " (or 'infinity')" : ""}: ${floor.why}` });
        }
    });

/** systemd CPU quota: a positive percentage, e.g. `200%` for two cores. */
const cpuQuota = z.string().regex(/^[1-9]\d*%$/, { message: "must be a percentage like '200%' (two cores' worth)" });

/** systemd time span: seconds as a number, or a value with units such as `30day`, `5s`, `1min`. */
const timeSpan = z.union([
    z.number().int().nonnegative(),
    z.string().regex(/^(?:\d+\s*(?:us|ms|s|sec|second|seconds|m|min|minute|minutes|h|hr|hour|hours|d|day|days|w|week|weeks|month|months|y|year|years)\s*)+$/, {
        message: "must be a time span like 60, '5s', '1min' or '30day'",
    }),
]);

/** uvicorn's log levels. */
export const LOG_LEVELS = ["critical", "error", "warning", "info", "debug", "trace"] as const;

/** systemd's Restart= values. */
export const RESTART_POLICIES = ["no", "always", "on-success", "on-failure", "on-abnormal", "on-abort", "on-watchdog"] as const;

/** Hardening profiles: `notes` is exactly the service notes' directives, `strict` adds the rest of the sandbox. */
export const HARDENING_PROFILES = ["notes", "strict"] as const;

/** An SSH public key line as in `known_hosts`/`ssh-keyscan`, without the host name: parsed, so a truncated or altered key is refused (see `model/ssh-key.ts`). */
const publicKey = z.string().superRefine((key, ctx) => {
    const parsed = parseHostKey(key);
    if ("problem" in parsed) {
        ctx.addIssue({ code: "custom", message: `must be a host public key like 'ssh-ed25519 AAAA…' (see \`ssh-keyscan -t ed25519 HOST\`); this one ${parsed.problem}` });
    }
});

/** One target host. */
export const hostSchema = z
    .object({
        name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { message: "must be letters, digits, . _ - (a resource name)" }).optional().describe("A short name for the host, shown in outputs; defaults to the address. Resource names come from the host key, so renaming a host (or changing its address, port or user) updates in place and reinstalls nothing."),
        address: z.string().regex(/^[A-Za-z0-9.:_-]+$/, { message: "must be an IP address or DNS name" }).describe("The address SSH connects to (IP or DNS name)."),
        port: z.number().int().min(1).max(65535).default(22).describe("The SSH port."),
        user: accountName.default("ubuntu").describe("The SSH user: an ordinary sudo user (`ubuntu` on cloud images) or `root`."),
        hostKey: publicKey.describe("The host's SSH public key, pinned: a host that presents another key is refused before any command runs. It is parsed: a truncated or altered key, or an RSA key under 2048 bits, is refused. It identifies the machine: two entries with one key, or with one address and port, are refused."),
        adopt: z
            .boolean()
            .optional()
            .describe(
                "Take over a hand-made install of the service notes on this host: their unit at `/etc/systemd/system/<serviceName>.service`, the existing `user` and `group`, the directories in `paths`, the venv, the `.env` at `paths.envFile` and `systemctl edit` drop-ins. `pulumi preview --diff` then reads the host (one SSH session) and shows what is there and what changes: the unit's lines, each drop-in's settings, owners, the `.env`'s key names. `up` keeps a backup in `/var/lib/amarktai-infra/<serviceName>/adopted-<time>/` (destroy keeps it), keeps every `.env` value the config does not set (JWT_SECRET included) as a secret, and removes a drop-in whose settings are all in `overrides` (others are refused unless `foreignDropIns: remove`). Only that layout is taken over: a unit elsewhere, of a package or of another user, or a directory of another owner, is refused. Keep it set once adopted: the carried `.env` values live in this host's adoption.",
            ),
    })
    .strict();

/** The app's command line and listener. */
export const appSchema = z
    .object({
        module: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$/, { message: "must be 'module:attribute', e.g. 'server:app'" }).default("server:app").describe("The ASGI application uvicorn serves, `module:attribute`."),
        bindHost: z.string().regex(/^[0-9a-fA-F.:]+$/, { message: "must be an IP address such as 127.0.0.1" }).default("127.0.0.1").describe("The address uvicorn binds."),
        port: z.number().int().min(1).max(65535).default(8000).describe("The port uvicorn listens on."),
        socketActivation: z
            .boolean()
            .default(true)
            .describe(
                "systemd holds the listening socket (a `<serviceName>.socket` unit on `bindHost`:`port`) and hands it to uvicorn (`--fd 3`): during a restart, connections wait in the kernel's queue instead of being refused, and no other process can take the port. `systemctl stop <serviceName>.socket <serviceName>` stops both; with only the service stopped, the next connection starts it again. `false` renders the notes' unit, where uvicorn binds the port itself.",
            ),
        logLevel: z.enum(LOG_LEVELS).default("info").describe("uvicorn's `--log-level`."),
        sourceDir: line("app.sourceDir").optional().describe("A local directory whose files are copied into the working directory (e.g. `./demo-app`); omit when the app is deployed another way."),
        requirements: z
            .array(
                z.string().superRefine((r, ctx) => {
                    const problem = requirementProblem(r, false);
                    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
                }),
            )
            .default(["uvicorn==0.38.0"])
            .describe("pip requirement specifiers installed into each release's venv, e.g. `uvicorn==0.38.0`; extras, version ranges and environment markers are allowed. Options (`-r`, `-c`, `-e`, `-f`, `--index-url`, …) and URLs are refused: set the index with `releases.indexUrl`."),
        requirementsFile: z
            .string()
            .regex(/^[A-Za-z0-9._@+-]+(?:\/[A-Za-z0-9._@+-]+)*$/, { message: "must be a path inside app.sourceDir like 'requirements.txt'" })
            .optional()
            .describe("A requirements file inside `app.sourceDir` (e.g. `requirements.txt`, or a lock file with `--hash=` pins, which are then required) installed instead of `app.requirements`. Checked line by line like `app.requirements`: blank lines, `#` comments, `--hash=` pins (with `\\` continuations) and `--require-hashes` are the only other lines allowed."),
        workerHealthcheckTimeoutSec: z
            .number()
            .int()
            .min(1)
            .max(3600)
            .default(30)
            .describe("uvicorn's `--timeout-worker-healthcheck` (uvicorn 0.37+), added wherever an override sets `workers`: how long a worker may take to answer the supervisor before it is killed and respawned."),
    })
    .strict();

/** Paths on the host; defaults from the notes. */
export const pathsSchema = z
    .object({
        app: servicePath.default("/var/amarktai/app").describe("The app's directory (writable by the service; root-owned with `app.sourceDir`, where it holds the link to the current release's files)."),
        workingDirectory: servicePath.default("/var/amarktai/app/backend").describe("The working directory, where the app module and `.env` live; with `app.sourceDir`, a root-owned link to the current release's files."),
        venv: servicePath.default("/var/amarktai/venv").describe("The virtualenv: a root-owned link to the current release's venv."),
        logs: servicePath.default("/var/amarktai/logs").describe("The log directory (writable by the service)."),
        envFile: servicePath.default("/var/amarktai/app/backend/.env").describe("The notes' path of the `.env`: a root-owned link to the real file `/etc/amarktai-infra/<serviceName>/env` (root:group 0640), which `EnvironmentFile=` reads, so the service can read its secrets but never replace them. Directly in `paths.workingDirectory` or `paths.app`."),
        releases: servicePath.default("/var/amarktai/releases").describe("Where releases (the app's files and a venv) are built and kept, root-owned; `paths.venv` (and `paths.workingDirectory` with `app.sourceDir`) link into the current one."),
    })
    .strict();

/** The `[Unit]` dependencies. */
export const dependenciesSchema = z
    .object({
        after: z.array(unitName).default(["network.target", "mongodb.service"]).describe("`After=`: start after these units. MongoDB's own Ubuntu packages call it `mongod.service`."),
        requires: z.array(unitName).default([]).describe("`Requires=`: hard dependencies."),
        wants: z.array(unitName).default([]).describe("`Wants=`: soft dependencies."),
    })
    .strict();

/** Restart behaviour. */
export const restartSchema = z
    .object({
        policy: z.enum(RESTART_POLICIES).default("always").describe("`Restart=`."),
        sec: z.number().int().min(0).max(3600).default(5).describe("`RestartSec=` in seconds."),
        timeoutStopSec: z.number().int().min(1).max(3600).default(60).describe("`TimeoutStopSec=` in seconds."),
    })
    .strict();

/** One named drop-in (`systemctl edit`): every key is optional and only what is set is written. */
export const overrideSchema = z
    .object({
        order: z.number().int().min(0).max(99).optional().describe(
                "The drop-in's place: the two-digit prefix of its file name (`NN-name.conf`); systemd applies drop-ins in this order and a later one wins. Required once there is more than one override (Pulumi hands the program config objects with their keys sorted, so the order they are written in is lost); each override needs its own. A single override defaults to 10.",
            ),
        workers: z.number().int().min(1).max(64).optional().describe("uvicorn `--workers`; rewrites `ExecStart=` (reset, then the new command)."),
        logLevel: z.enum(LOG_LEVELS).optional().describe("uvicorn `--log-level`; rewrites `ExecStart=`."),
        memoryMax: sizeAtLeast(LIMIT_FLOORS.serviceMemory, true).optional().describe("`MemoryMax=`, e.g. `2G`: at least `32M`, or `infinity`."),
        memoryHigh: sizeAtLeast(LIMIT_FLOORS.serviceMemory, true).optional().describe("`MemoryHigh=`, e.g. `1.5G`: at least `32M`, or `infinity`; not above `memoryMax` of the same override."),
        cpuQuota: cpuQuota.optional().describe("`CPUQuota=`, e.g. `200%`."),
        after: z.array(unitName).optional().describe("Extra `After=` units."),
        requires: z.array(unitName).optional().describe("Extra `Requires=` units."),
        wants: z.array(unitName).optional().describe("Extra `Wants=` units."),
        restart: z.enum(RESTART_POLICIES).optional().describe("`Restart=`, e.g. `no` while debugging a crash loop."),
        restartSec: z.number().int().min(0).max(3600).optional().describe("`RestartSec=` in seconds."),
        environment: z.record(envName, line("an environment value")).optional().describe("Extra `Environment=` assignments (the names `env` refuses are refused here too)."),
    })
    .strict()
    .refine((o) => Object.keys(o).some((k) => k !== "order"), { message: "an override must set at least one directive" })
    .superRefine((o, ctx) => {
        const high = o.memoryHigh === undefined ? undefined : bytesOfSize(o.memoryHigh);
        const max = o.memoryMax === undefined ? undefined : bytesOfSize(o.memoryMax);
        // `infinity` as MemoryHigh= is systemd's default (no throttling), never a mistake.
        if (high !== undefined && max !== undefined && high !== Infinity && high > max) {
            ctx.addIssue({ code: "custom", path: ["memoryHigh"], message: `${o.memoryHigh} is above memoryMax (${o.memoryMax}): the service would be killed at memoryMax before it is ever throttled; set memoryHigh at or below memoryMax` });
        }
    });

/** journald limits written to `/etc/systemd/journald.conf.d/`. */
export const journaldSchema = z
    .object({
        systemMaxUse: sizeAtLeast(LIMIT_FLOORS.journalMaxUse, false).optional().describe("`SystemMaxUse=`, e.g. `1G`: at least `16M` (it bounds the whole host journal)."),
        systemKeepFree: sizeAtLeast(LIMIT_FLOORS.journalKeepFree, false).optional().describe("`SystemKeepFree=`, e.g. `2G`: at least `16M`."),
        maxRetentionSec: timeSpan
            .superRefine((v, ctx) => {
                const seconds = secondsOfSpan(v);
                if (seconds !== undefined && seconds !== 0 && seconds < LIMIT_FLOORS.journalRetention.seconds) {
                    ctx.addIssue({ code: "custom", message: `must be at least 1h (or 0, which turns time-based deletion off): ${LIMIT_FLOORS.journalRetention.why}` });
                }
            })
            .optional()
            .describe("`MaxRetentionSec=`, e.g. `30day`: at least `1h` (it applies to the whole host journal); `0` turns time-based deletion off."),
    })
    .strict();

/** The health check run after every restart. */
export const healthSchema = z
    .object({
        path: z.string().regex(/^\/[A-Za-z0-9._~\/-]*$/, { message: "must be a URL path like '/health'" }).default("/health").describe("The HTTP path requested on the app's bind address and port."),
        timeoutSec: z.number().int().min(1).max(900).default(90).describe("How long to wait for a 200 after a (re)start, in seconds."),
    })
    .strict();

/** Rolling updates across hosts. */
export const rolloutSchema = z
    .object({
        maxUnavailable: z.number().int().min(1).max(100).default(1).describe("Hosts activated (switched to a new release or files, and restarted) at once, in host order; a batch starts only when the previous one is healthy, and a failed build or batch stops the rollout. Preparing hosts, building releases and staging files always run in parallel."),
    })
    .strict();

/** How long to wait for a host and its steps (a fresh cloud VM in its first minute). */
export const timeoutsSchema = z
    .object({
        connectSec: z.number().int().min(0).max(7200).default(600).describe("How long to keep dialling a host's SSH, with backoff: connection refused, reset or timed out (the VM is still booting, sshd is not up) and authentication refused (cloud-init has not written `authorized_keys` yet). A wrong host key is never retried. `0` dials once."),
        bootSec: z.number().int().min(0).max(7200).default(900).describe("Before the first change on a host: how long to wait for boot to finish (`systemctl is-system-running --wait`) and, where cloud-init is installed, for `cloud-init status --wait`. Costs nothing on a booted host."),
        aptLockSec: z.number().int().min(0).max(7200).default(600).describe("How long every apt call waits for dpkg's and apt's locks (unattended-upgrades holds them on a fresh Ubuntu VM): `-o DPkg::Lock::Timeout`."),
        stepSec: z.number().int().min(60).max(21600).default(1800).describe("How long any one remote step (prepare, build a release, stage a file, activate, read, remove) may take before `up` fails naming the step and the host. A detached step (prepare, build, activation) goes on on the host and the next `up` picks it up."),
    })
    .strict();

/** A package index URL: http(s), no credentials (they would show in the host's process list). */
const indexUrl = z
    .string()
    .regex(/^https?:\/\/[A-Za-z0-9.-]+(?::\d{1,5})?(?:\/[A-Za-z0-9._~%\/+-]*)?$/, { message: "must be an http(s) URL like 'https://pypi.example.com/simple' without credentials, spaces or quotes (put credentials in /root/.netrc on the host)" });

/** Releases: how venvs are built and how many releases a host keeps. */
export const releasesSchema = z
    .object({
        keep: z.number().int().min(2).max(50).default(3).describe("Releases kept on each host, the current one included: switching back to one of them needs no build."),
        installer: z
            .enum(["uv", "pip"])
            .default("uv")
            .describe("How a release's venv is built: `uv` (a pinned, hash-checked uv fetched once per host; falls back to pip when it cannot be fetched) or `pip` (`python3 -m venv` + pip)."),
        indexUrl: indexUrl.optional().describe("The package index the host installs requirements from (`--index-url`), e.g. a PyPI mirror or a private index; default PyPI. The build checks it answers before installing and fails in seconds naming it when it does not."),
        extraIndexUrls: z.array(indexUrl).default([]).describe("More package indexes (`--extra-index-url`)."),
        trustedHosts: z.array(z.string().regex(/^[A-Za-z0-9.-]+(?::\d{1,5})?$/, { message: "must be a host name or host:port" })).default([]).describe("Index hosts trusted without valid HTTPS (`--trusted-host` for pip, `--allow-insecure-host` for uv); only for a mirror on a network you control."),
        uvSource: z
            .enum(["host", "deployer"])
            .default("host")
            .describe("Where the pinned uv comes from: `host` downloads its wheel on the host (from PyPI's file server or `uvMirror`); `deployer` downloads it once on the machine running Pulumi (cached) and sends it over the SSH session, for hosts without access to PyPI. Its SHA-256 is checked either way."),
        uvMirror: indexUrl.optional().describe("A base URL serving PyPI's files under the same paths as `https://files.pythonhosted.org` (a Nexus, Artifactory or devpi proxy), used instead of it to fetch the pinned uv wheel."),
        reproducible: z
            .boolean()
            .default(true)
            .describe(
                "Resolve the requirements once per change, on the first host and in the build sandbox, into a lock (every package pinned to one version, with its SHA-256 hashes) kept in the stack's state; every host then installs exactly that set with `--require-hashes`, and the release id covers it. The lock changes only when the requirements or the index settings do (adding a host or changing an app file keeps it). Off: each build resolves on its own host, so unpinned requirements may install different versions on two hosts or a month apart. Requirements that already pin `--hash=` are installed as given either way.",
            ),
    })
    .strict();

/**
 * Refuses overrides whose order would be ambiguous: several overrides without
 * `order` (Pulumi sorts object keys, so the stack file's order cannot be
 * used), or two with the same `order` (the winner would depend on the name).
 */
function checkOverrideOrders(overrides: Record<string, { order?: number | undefined }>, ctx: z.core.$RefinementCtx): void {
    const names = Object.keys(overrides).sort();
    if (names.length < 2) return;
    const byOrder = new Map<number, string>();
    for (const name of names) {
        const order = overrides[name]!.order;
        if (order === undefined) {
            ctx.addIssue({
                code: "custom",
                path: [name, "order"],
                message: `required when there is more than one override: Pulumi hands the program config objects sorted by key, so the order they are written in is lost; give each override its own order (e.g. 10, 20, 30; a later one wins)`,
            });
            continue;
        }
        const other = byOrder.get(order);
        if (other !== undefined) {
            ctx.addIssue({
                code: "custom",
                path: [name, "order"],
                message: `${order} is also the order of '${other}'; give each override its own order, so which one wins does not depend on its name`,
            });
        }
        byOrder.set(order, name);
    }
}

/** A drop-in name: becomes the file name `NN-name.conf`. */
const overrideName = /^[a-z0-9][a-z0-9-]{0,40}$/;

/** The whole stack configuration, after defaults. Keys are the project's config keys. */
export const stackConfigSchema = z
    .object({
        hosts: z.array(hostSchema).min(1, { message: "must list at least one host" }).describe("The target hosts."),
        serviceName: z
            .string()
            .regex(/^[a-z0-9][a-z0-9-]*$/, { message: "must be lowercase letters, digits and -" })
            .superRefine((n, ctx) => {
                const hit = reservedUnitName(n);
                if (hit !== undefined) {
                    ctx.addIssue({ code: "custom", message: `'${n}' is a system unit name (${hit.endsWith("-") ? `${hit}*` : hit}); writing ${n}.service would replace it. Choose a name of your own such as 'amarktai-api'` });
                }
            })
            .default("amarktai-api")
            .describe("The systemd service name (without `.service`). System unit names (ssh, systemd-*, dbus, cron, …) are refused, and on the host any existing unit the library did not write."),
        description: line("description").default("Amarktai Network API").describe("`Description=`."),
        documentation: z.string().regex(/^(https?|file|man|info):[^\s%]+$/, { message: "must be a URL (http, https, file, man, info) without spaces or %" }).default("https://github.com/amarktainetwork-blip/Amarktai-Network---Deployment").describe("`Documentation=`."),
        user: serviceAccount.default("amarktai").describe("The service user. Never `root`; a system account or a user that already exists on the host is refused unless `allowExistingUser` is set."),
        group: serviceAccount.default("amarktai").describe("The service group. Never `root`; a system group or a group that already exists on the host is refused unless `allowExistingUser` is set."),
        allowExistingUser: z.boolean().default(false).describe("Run as a `user`/`group` that already exists (a system account or one the library did not create). The library then never removes them."),
        paths: pathsSchema.default(pathsSchema.parse({})).describe("Paths on the host."),
        app: appSchema.default(appSchema.parse({})).describe("The app: what uvicorn serves, where, and what the venv needs."),
        dependencies: dependenciesSchema.default(dependenciesSchema.parse({})).describe("The unit's `[Unit]` dependencies."),
        restart: restartSchema.default(restartSchema.parse({})).describe("Restart behaviour."),
        hardening: z.enum(HARDENING_PROFILES).default("notes").describe("The hardening profile."),
        overrides: z
            .record(z.string().regex(overrideName, { message: "must be lowercase letters, digits and - (a file name, no '/' or '..')" }), overrideSchema)
            .default({})
            .superRefine(checkOverrideOrders)
            .describe("Named drop-ins (what `systemctl edit` writes), one file `NN-name.conf` each, applied in their `order`."),
        journald: journaldSchema.optional().describe("journald limits, written to `/etc/systemd/journald.conf.d/60-amarktai-infra-<serviceName>.conf` (one file per service); journald is restarted when they change. The limits are host-wide: where two services on one host set the same key, journald applies the file whose name sorts last."),
        env: z
            .record(envName, line("an env value"))
            .default({})
            .describe(
                "Plain (non-secret) `.env` entries, e.g. feature flags; `true` and whole numbers set with `pulumi config set --path` are taken as their text. Names that change where the service's code comes from (`PATH`, `LD_*`, `PYTHONPATH` and every `PYTHON*` but the harmless ones, `UVICORN_*`, …) are refused unless listed in `allowInterpreterEnv`.",
            ),
        allowInterpreterEnv: z
            .array(envName)
            .default([])
            .describe(
                "Environment names otherwise refused in `env`, `secretEnv` and `overrides.<name>.environment`, allowed here one by one, e.g. `[\"PYTHONPATH\"]`. They change where the service's code comes from (the interpreter, the dynamic loader, uvicorn's options), so they can undo \"the service cannot change its own code\": list one only when it points at root-owned files.",
            ),
        health: healthSchema.default(healthSchema.parse({})).describe("The health check run inside the host after every (re)start."),
        rollout: rolloutSchema.default(rolloutSchema.parse({})).describe("How changes roll out across several hosts."),
        foreignDropIns: z
            .enum(["refuse", "remove"])
            .default("refuse")
            .describe(
                "Unmanaged drop-ins of the unit (e.g. the `override.conf` of `systemctl edit`) would silently override the managed settings. `refuse`: `up` fails before changing anything, naming each file with its SHA-256 and its directives' names (values only for plainly non-secret settings such as `MemoryMax`; never `Environment=`), never its text (remove it, or adopt its settings as an override); `remove`: `up` backs them up and removes them. `preview --refresh` shows them either way.",
            ),
        releases: releasesSchema.default(releasesSchema.parse({})).describe("Releases of the app's files and venv."),
        timeouts: timeoutsSchema.default(timeoutsSchema.parse({})).describe("How long to wait for a host (booting, cloud-init, apt's locks) and for each remote step."),
        purgeOnDestroy: z.boolean().default(false).describe("On `pulumi destroy`, also remove the user, group, directories and `.env` that the library created on the host and recorded there (never what existed before; default: keep data)."),
    })
    .strict();

/** The validated stack configuration. */
export type StackConfig = z.infer<typeof stackConfigSchema>;

/**
 * The service's settings without its hosts: what a program that brings its
 * own hosts (as Inputs, e.g. from a VM it creates) passes to `SystemdService`.
 */
export const serviceConfigSchema = stackConfigSchema.omit({ hosts: true });
/** The validated service settings (every stack key but `hosts`). */
export type ServiceConfig = z.infer<typeof serviceConfigSchema>;
/** One validated host. */
export type HostConfig = z.infer<typeof hostSchema>;
/** One validated override. */
export type OverrideConfig = z.infer<typeof overrideSchema>;

/** The secret part of the configuration: validated separately, never logged. */
export const secretConfigSchema = z
    .object({
        sshPrivateKey: z.string().includes("PRIVATE KEY", { message: "must be a private key in OpenSSH or PEM format" }).describe("The SSH private key (OpenSSH or PEM), set with `pulumi config set --secret sshPrivateKey < key`."),
        secretEnv: z.record(envName, line("a secret env value")).default({}).describe("Secret `.env` entries (JWT_SECRET, MONGO_URL, OPENAI_API_KEY, …). JWT_SECRET is generated when absent. The names `env` refuses are refused here too."),
    })
    .strict();

/** The validated secret configuration. */
export type SecretConfig = z.infer<typeof secretConfigSchema>;
