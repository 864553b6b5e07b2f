/**
 * Everything one service puts on a host, as plain data computed from the
 * validated config: the files (what goes where, with which mode and owner,
 * and what a change to it requires), the host preparation (user,
 * directories, venv), what a purge removes, and the health URL.
 */
import { createHmac } from "crypto";
import { ServiceConfig } from "../config";
import { LinkSpec, MANAGED_MARKER, ManagedFile, PrepareSpec, PurgeSpec, envStorePath } from "../model";
import { RenderedSystemdFiles, renderEnvFile, renderSystemdFiles } from "../systemd";
import { AppSourceFile } from "./app-source";

/** A managed file with its content (or, for secret files, a function of the secret values). */
export interface PlannedFile {
    readonly file: ManagedFile;
    /** A short label used in resource names: `unit`, `dropin-workers`, `journald`, `env`, `app-server.py`. */
    readonly label: string;
    /** The text, when it holds no secret. */
    readonly text?: string;
}

/** Everything the service puts on a host. The `.env` text is rendered later from the secret values. */
export interface ServicePlan {
    readonly serviceName: string;
    /** `<serviceName>.service`. */
    readonly unitName: string;
    readonly systemd: RenderedSystemdFiles;
    readonly files: readonly PlannedFile[];
    /** The `.env` entry of {@link files} (its text is rendered from secrets): the root-owned real file. */
    readonly envFile: ManagedFile;
    /** Root-owned links the activation keeps: the notes' `.env` path to the real file. */
    readonly links: readonly LinkSpec[];
    /** The host preparation: user, directories, venv and requirements. */
    readonly prepare: PrepareSpec;
    /** What `pulumi destroy` also removes, when `purgeOnDestroy` is on. */
    readonly purge?: PurgeSpec;
    /** The URL probed inside the host after every (re)start. */
    readonly healthUrl: string;
    /** How long a (re)start may take to become healthy, in seconds. */
    readonly healthTimeoutSec: number;
}

function managed(path: string, mode: string, owner: string, group: string, effect: ManagedFile["effect"]): ManagedFile {
    return { path, mode, owner, group, effect };
}

/** The host preparation for the config: the user, the notes' directories with their owners and modes, the venv. */
export function planPrepare(config: ServiceConfig): PrepareSpec {
    const dir = (key: keyof ServiceConfig["paths"], mode: string) => ({ key: `paths.${key}`, path: config.paths[key], owner: config.user, group: config.group, mode });
    return {
        serviceName: config.serviceName,
        allowExistingUser: config.allowExistingUser,
        user: config.user,
        group: config.group,
        directories: [dir("app", "0755"), dir("workingDirectory", "0755"), dir("venv", "0755"), dir("logs", "0750")],
        venv: config.paths.venv,
        requirements: config.app.requirements,
    };
}

/** The health URL probed inside the host: the app's bind address and port, and `health.path`. */
export function healthUrl(config: ServiceConfig): string {
    const host = config.app.bindHost.includes(":") ? `[${config.app.bindHost}]` : config.app.bindHost;
    return `http://${host}:${config.app.port}${config.health.path}`;
}

/** Plans everything the service puts on a host from the validated config and the app's source files. */
export function planService(config: ServiceConfig, appFiles: readonly AppSourceFile[] = []): ServicePlan {
    const systemd = renderSystemdFiles(config);
    const files: PlannedFile[] = [{ label: "unit", file: managed(systemd.unit.path, "0644", "root", "root", "systemd"), text: systemd.unit.text }];
    for (const d of systemd.dropIns) {
        files.push({ label: `dropin-${d.name}`, file: managed(d.path, "0644", "root", "root", "systemd"), text: d.text });
    }
    if (systemd.journald) {
        files.push({ label: "journald", file: managed(systemd.journald.path, "0644", "root", "root", "journald"), text: systemd.journald.text });
    }
    // Readable by the service's group only, never by others; root owns it, in a root-owned directory outside everything the
    // service can write, so the service can read its secrets but never replace the file (the notes' path links to it).
    const envFile = managed(envStorePath(config.serviceName), "0640", "root", config.group, "restart");
    files.push({ label: "env", file: envFile });
    for (const f of appFiles) {
        if (f.relativePath.split("/").some((part) => part === ".." || part === "") || !/^[A-Za-z0-9._@+\/-]+$/.test(f.relativePath)) {
            throw new Error(`app source file ${JSON.stringify(f.relativePath)} has an unsafe name`);
        }
        files.push({ label: `app-${f.relativePath}`, file: managed(`${config.paths.workingDirectory}/${f.relativePath}`, "0644", config.user, config.group, "restart"), text: f.content });
    }
    const purge: PurgeSpec | undefined = config.purgeOnDestroy
        ? { paths: [envStorePath(config.serviceName), config.paths.app, config.paths.venv, config.paths.logs], envLink: config.paths.envFile, user: config.user, group: config.group }
        : undefined;
    return {
        serviceName: config.serviceName,
        unitName: systemd.unitName,
        systemd,
        files,
        envFile,
        links: [{ path: config.paths.envFile, target: envStorePath(config.serviceName) }],
        prepare: planPrepare(config),
        ...(purge ? { purge } : {}),
        healthUrl: healthUrl(config),
        healthTimeoutSec: config.health.timeoutSec,
    };
}

/** Renders the `.env` from the plain entries and the secret ones (secret entries win). */
export function envFileText(plain: Readonly<Record<string, string>>, secret: Readonly<Record<string, string>>): string {
    return renderEnvFile({ ...plain, ...secret });
}

/**
 * A reviewer's view of the `.env`: plain entries as they are, each secret
 * entry as `[secret <fingerprint>]`. The fingerprint is an HMAC keyed by a
 * per-stack random key, so it changes exactly when the value changes but
 * cannot be used to guess the value. Without a key, secrets show as `[secret]`.
 */
export function envFileView(plain: Readonly<Record<string, string>>, secret: Readonly<Record<string, string>>, fingerprintKey?: string): string {
    const redacted: Record<string, string> = { ...plain };
    for (const [name, value] of Object.entries(secret)) {
        if (fingerprintKey === undefined) {
            redacted[name] = "[secret]";
            continue;
        }
        const fingerprint = createHmac("sha256", fingerprintKey).update(`${name}=${value}`).digest("hex").slice(0, 12);
        redacted[name] = `[secret ${fingerprint}]`;
    }
    const names = Object.keys(redacted).sort();
    return names.map((n) => `${n}=${redacted[n]}`).join("\n") + "\n";
}

/** One file as `render` writes it: where it goes on the host, mode and owner, and its text (secrets redacted). */
export interface RenderedHostFile {
    readonly path: string;
    readonly mode: string;
    readonly owner: string;
    readonly group: string;
    readonly text: string;
}

/**
 * Every file the stack puts on a host, with the `.env`'s secret values
 * redacted (`[secret]`; a generated JWT_SECRET is listed as such). Pure: no
 * SSH, no Pulumi engine.
 */
export function renderHostFiles(config: ServiceConfig, secretEnvKeys: readonly string[], appFiles: readonly AppSourceFile[] = []): RenderedHostFile[] {
    const plan = planService(config, appFiles);
    const secrets: Record<string, string> = Object.fromEntries(secretEnvKeys.map((k) => [k, ""]));
    if (!secretEnvKeys.includes("JWT_SECRET")) secrets.JWT_SECRET = "";
    let envText = envFileView(config.env, secrets);
    if (!secretEnvKeys.includes("JWT_SECRET")) {
        envText = envText.replace(/^JWT_SECRET=\[secret\]$/m, "JWT_SECRET=[secret, generated by the stack]");
    }
    return plan.files.map((pf) => ({
        path: pf.file.path,
        mode: pf.file.mode,
        owner: pf.file.owner,
        group: pf.file.group,
        text: pf.file === plan.envFile ? `# ${MANAGED_MARKER}\n${envText}` : pf.text ?? "",
    }));
}
