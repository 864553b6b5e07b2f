/**
 * The one zod schema for the whole stack configuration. Defaults come from
 * the service notes; every refusal names the key path and what is allowed.
 * Docs and the `config:` block of `Pulumi.yaml` are checked against it.
 */
import { z } from "zod";

const CONTROL = /[\u0000-\u001f\u007f]/;

/** A single-line string: no newline, no control character. */
const line = (what: string) =>
    z.string().refine((v) => !CONTROL.test(v), { message: `${what} must not contain newlines or control characters` });

/** An absolute path made of safe characters (no whitespace, quotes, `$`, `%` or `..` segments). */
const absolutePath = z
    .string()
    .regex(/^\/[A-Za-z0-9._@+\/-]*$/, {
        message: "must be an absolute path of letters, digits and . _ @ + / - (no spaces, quotes, $ or %)",
    })
    .refine((p) => !p.split("/").includes(".."), { message: "must not contain '..' segments" });

/** A systemd unit name such as `mongodb.service` or `network.target`. */
const unitName = z.string().regex(/^[A-Za-z0-9:_.\\@-]+\.(service|target|socket|mount|timer|path|slice|scope|device|swap|automount)$/, {
    message: "must be a unit name like 'mongodb.service' or 'network.target'",
});

/** A POSIX user or group name as `useradd` accepts it. */
const accountName = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, {
    message: "must be a user/group name: lowercase letters, digits, _ and -, starting with a letter or _ (at most 32)",
});

/** An environment variable name. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** systemd byte sizes: a number with an optional K, M, G, T suffix (base 1024), e.g. `2G`, `1.5G`, `512M`; or `infinity`. */
const byteSize = z.string().regex(/^(?:\d+(?:\.\d+)?[KMGT]?|infinity)$/, {
    message: "must be a systemd size like '2G', '1.5G', '512M' or 'infinity' (suffixes K, M, G, T; no 'B')",
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

/** An SSH public key line as in `known_hosts`/`ssh-keyscan`, without the host name. */
const publicKey = z.string().regex(/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+=*$/, {
    message: "must be a host public key like 'ssh-ed25519 AAAA…' (see `ssh-keyscan -t ed25519 HOST`)",
});

/** One target host. */
export const hostSchema = z
    .object({
        /** A short name for the host, used in resource names; defaults to the address. */
        name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { message: "must be letters, digits, . _ - (a resource name)" }).optional(),
        /** The address SSH connects to (IP or DNS name). */
        address: z.string().regex(/^[A-Za-z0-9.:_-]+$/, { message: "must be an IP address or DNS name" }),
        /** The SSH port. */
        port: z.number().int().min(1).max(65535).default(22),
        /** The SSH user: an ordinary sudo user (`ubuntu` on cloud images) or `root`. */
        user: accountName.default("ubuntu"),
        /** The host's SSH public key, pinned: a host that presents another key is refused before any command runs. */
        hostKey: publicKey,
    })
    .strict();

/** The app's command line and listener. */
export const appSchema = z
    .object({
        /** The ASGI application uvicorn serves, `module:attribute`. */
        module: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$/, { message: "must be 'module:attribute', e.g. 'server:app'" }).default("server:app"),
        /** The address uvicorn binds. */
        bindHost: z.string().regex(/^[0-9a-fA-F.:]+$/, { message: "must be an IP address such as 127.0.0.1" }).default("127.0.0.1"),
        /** The port uvicorn listens on. */
        port: z.number().int().min(1).max(65535).default(8000),
        /** uvicorn's `--log-level`. */
        logLevel: z.enum(LOG_LEVELS).default("info"),
        /** A local directory whose files are copied into the working directory (e.g. `./demo-app`); omit when the app is deployed another way. */
        sourceDir: line("app.sourceDir").optional(),
        /** pip requirement specifiers installed into the venv, e.g. `uvicorn==0.38.0`. */
        requirements: z
            .array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._\-\[\],]*(?:\s*(?:==|>=|<=|~=|!=|>|<)\s*[A-Za-z0-9.*+!-]+)*$/, { message: "must be a pip requirement like 'uvicorn==0.38.0'" }))
            .default(["uvicorn==0.38.0"]),
    })
    .strict();

/** Paths on the host; defaults from the notes. */
export const pathsSchema = z
    .object({
        /** The app's directory (writable by the service). */
        app: absolutePath.default("/var/amarktai/app"),
        /** The working directory, where the app module and `.env` live. */
        workingDirectory: absolutePath.default("/var/amarktai/app/backend"),
        /** The virtualenv. */
        venv: absolutePath.default("/var/amarktai/venv"),
        /** The log directory (writable by the service). */
        logs: absolutePath.default("/var/amarktai/logs"),
        /** The environment file read by `EnvironmentFile=`. */
        envFile: absolutePath.default("/var/amarktai/app/backend/.env"),
    })
    .strict();

/** The `[Unit]` dependencies. */
export const dependenciesSchema = z
    .object({
        /** `After=`: start after these units. MongoDB's own Ubuntu packages call it `mongod.service`. */
        after: z.array(unitName).default(["network.target", "mongodb.service"]),
        /** `Requires=`: hard dependencies. */
        requires: z.array(unitName).default([]),
        /** `Wants=`: soft dependencies. */
        wants: z.array(unitName).default([]),
    })
    .strict();

/** Restart behaviour. */
export const restartSchema = z
    .object({
        /** `Restart=`. */
        policy: z.enum(RESTART_POLICIES).default("always"),
        /** `RestartSec=` in seconds. */
        sec: z.number().int().min(0).max(3600).default(5),
        /** `TimeoutStopSec=` in seconds. */
        timeoutStopSec: z.number().int().min(1).max(3600).default(60),
    })
    .strict();

/** One named drop-in (`systemctl edit`): every key is optional and only what is set is written. */
export const overrideSchema = z
    .object({
        /** The two-digit order prefix of the file name (`NN-name.conf`); defaults by position: 10, 20, … */
        order: z.number().int().min(0).max(99).optional(),
        /** uvicorn `--workers`; rewrites `ExecStart=` (reset, then the new command). */
        workers: z.number().int().min(1).max(64).optional(),
        /** uvicorn `--log-level`; rewrites `ExecStart=`. */
        logLevel: z.enum(LOG_LEVELS).optional(),
        /** `MemoryMax=`, e.g. `2G`. */
        memoryMax: byteSize.optional(),
        /** `MemoryHigh=`, e.g. `1.5G`. */
        memoryHigh: byteSize.optional(),
        /** `CPUQuota=`, e.g. `200%`. */
        cpuQuota: cpuQuota.optional(),
        /** Extra `After=` units. */
        after: z.array(unitName).optional(),
        /** Extra `Requires=` units. */
        requires: z.array(unitName).optional(),
        /** Extra `Wants=` units. */
        wants: z.array(unitName).optional(),
        /** `Restart=`, e.g. `no` while debugging a crash loop. */
        restart: z.enum(RESTART_POLICIES).optional(),
        /** `RestartSec=` in seconds. */
        restartSec: z.number().int().min(0).max(3600).optional(),
        /** Extra `Environment=` assignments. */
        environment: z.record(z.string().regex(ENV_NAME, { message: "must be an environment variable name" }), line("an environment value")).optional(),
    })
    .strict()
    .refine((o) => Object.keys(o).some((k) => k !== "order"), { message: "an override must set at least one directive" });

/** journald limits written to `/etc/systemd/journald.conf.d/`. */
export const journaldSchema = z
    .object({
        /** `SystemMaxUse=`, e.g. `1G`. */
        systemMaxUse: byteSize.optional(),
        /** `SystemKeepFree=`, e.g. `2G`. */
        systemKeepFree: byteSize.optional(),
        /** `MaxRetentionSec=`, e.g. `30day`. */
        maxRetentionSec: timeSpan.optional(),
    })
    .strict();

/** The health check run after every restart. */
export const healthSchema = z
    .object({
        /** The HTTP path requested on the app's bind address and port. */
        path: z.string().regex(/^\/[A-Za-z0-9._~\/-]*$/, { message: "must be a URL path like '/health'" }).default("/health"),
        /** How long to wait for a 200 after a (re)start, in seconds. */
        timeoutSec: z.number().int().min(1).max(900).default(90),
    })
    .strict();

/** A drop-in name: becomes the file name `NN-name.conf`. */
const overrideName = /^[a-z0-9][a-z0-9-]{0,40}$/;

/** The whole stack configuration, after defaults. Keys are the project's config keys. */
export const stackConfigSchema = z
    .object({
        /** The target hosts. */
        hosts: z.array(hostSchema).min(1, { message: "must list at least one host" }),
        /** The systemd service name (without `.service`). */
        serviceName: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, { message: "must be lowercase letters, digits and -" }).default("amarktai-api"),
        /** `Description=`. */
        description: line("description").default("Amarktai Network API"),
        /** `Documentation=`. */
        documentation: z.string().regex(/^(https?|file|man|info):[^\s%]+$/, { message: "must be a URL (http, https, file, man, info) without spaces or %" }).default("https://github.com/amarktainetwork-blip/Amarktai-Network---Deployment"),
        /** The service user. */
        user: accountName.default("amarktai"),
        /** The service group. */
        group: accountName.default("amarktai"),
        paths: pathsSchema.default(pathsSchema.parse({})),
        app: appSchema.default(appSchema.parse({})),
        dependencies: dependenciesSchema.default(dependenciesSchema.parse({})),
        restart: restartSchema.default(restartSchema.parse({})),
        /** The hardening profile. */
        hardening: z.enum(HARDENING_PROFILES).default("notes"),
        /** Named drop-ins, in order. */
        overrides: z
            .record(z.string().regex(overrideName, { message: "must be lowercase letters, digits and - (a file name, no '/' or '..')" }), overrideSchema)
            .default({}),
        journald: journaldSchema.optional(),
        /** Plain (non-secret) `.env` entries, e.g. feature flags. */
        env: z.record(z.string().regex(ENV_NAME, { message: "must be an environment variable name" }), line("an env value")).default({}),
        health: healthSchema.default(healthSchema.parse({})),
        /** On `pulumi destroy`, also remove the user, /var/amarktai and `.env` (default: keep data). */
        purgeOnDestroy: z.boolean().default(false),
    })
    .strict();

/** The validated stack configuration. */
export type StackConfig = z.infer<typeof stackConfigSchema>;
/** One validated host. */
export type HostConfig = z.infer<typeof hostSchema>;
/** One validated override. */
export type OverrideConfig = z.infer<typeof overrideSchema>;

/** The secret part of the configuration: validated separately, never logged. */
export const secretConfigSchema = z
    .object({
        /** The SSH private key (OpenSSH or PEM), set with `pulumi config set --secret sshPrivateKey < key`. */
        sshPrivateKey: z.string().includes("PRIVATE KEY", { message: "must be a private key in OpenSSH or PEM format" }),
        /** Secret `.env` entries (JWT_SECRET, MONGO_URL, OPENAI_API_KEY, …). JWT_SECRET is generated when absent. */
        secretEnv: z.record(z.string().regex(ENV_NAME, { message: "must be an environment variable name" }), line("a secret env value")).default({}),
    })
    .strict();

/** The validated secret configuration. */
export type SecretConfig = z.infer<typeof secretConfigSchema>;
