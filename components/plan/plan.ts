/**
 * Everything one service puts on a host, as plain data computed from the
 * validated config: the files (what goes where, with which mode and owner,
 * and what a change to it requires), the host preparation (user,
 * directories, venv), what a purge removes, and the health URL.
 */
import { createHmac } from "crypto";
import { ServiceConfig } from "../config";
import { LinkSpec, ManagedFile, PrepareSpec, PurgeSpec, envStorePath, releaseDir } from "../model";
import { RenderedSystemdFiles, renderEnvFile, renderEnvLines, renderRedactedEnvFile, renderSystemdFiles } from "../systemd";
import { AppSourceFile } from "./app-source";
import { PlannedRelease, planRelease, previewOf } from "./release";

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
    /** Root-owned links the activation keeps: the notes' `.env` path to the real file (inside a release, the release carries it). */
    readonly links: readonly LinkSpec[];
    /** The host preparation: user and directories. */
    readonly prepare: PrepareSpec;
    /** The release: the app's files and the venv's requirements, built on the host and switched in by the activation. */
    readonly release: PlannedRelease;
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

/**
 * The host preparation for the config: the user and the notes' directories
 * with their owners and modes, and the root-owned releases directory. The
 * venv is a release's (see `release.ts`): `paths.venv` is a link. When the
 * app's files are part of releases (`app.sourceDir` or `appFiles`: the
 * release has an `appLink`) the working directory is a link into the current
 * release too, so its parent (`paths.app`) belongs to root: the service can
 * neither change its code nor redirect the link.
 */
export function planPrepare(config: ServiceConfig, release: Pick<PlannedRelease, "spec">): PrepareSpec {
    const dir = (key: keyof ServiceConfig["paths"], mode: string, owner = config.user, group = config.group) => ({ key: `paths.${key}`, path: config.paths[key], owner, group, mode });
    const app = release.spec.appLink !== undefined ? [dir("app", "0755", "root", "root")] : [dir("app", "0755"), dir("workingDirectory", "0755")];
    return {
        serviceName: config.serviceName,
        allowExistingUser: config.allowExistingUser,
        user: config.user,
        group: config.group,
        directories: [...app, dir("logs", "0750"), dir("releases", "0755", "root", "root")],
    };
}

/** The health URL probed inside the host: the app's bind address and port, and `health.path`. */
export function healthUrl(config: ServiceConfig): string {
    const host = config.app.bindHost.includes(":") ? `[${config.app.bindHost}]` : config.app.bindHost;
    return `http://${host}:${config.app.port}${config.health.path}`;
}

/** Plans everything the service puts on a host from the validated config and the app's source files. */
export function planService(config: ServiceConfig, appFiles: readonly AppSourceFile[] = [], lock?: string): ServicePlan {
    const systemd = renderSystemdFiles(config);
    const files: PlannedFile[] = [{ label: "unit", file: managed(systemd.unit.path, "0644", "root", "root", "systemd"), text: systemd.unit.text }];
    if (systemd.socket) {
        files.push({ label: "socket", file: managed(systemd.socket.path, "0644", "root", "root", "systemd"), text: systemd.socket.text });
    }
    for (const d of systemd.dropIns) {
        files.push({ label: `dropin-${d.name}`, file: managed(d.path, "0644", "root", "root", "systemd"), text: d.text });
    }
    if (systemd.journald) {
        files.push({ label: "journald", file: managed(systemd.journald.path, "0644", "root", "root", "journald"), text: systemd.journald.text });
    }
    // Readable by the service's group only, never by others; root owns it, in a root-owned directory outside everything the
    // service can write, so the service can read its secrets but never replace the file (the notes' path links to it:
    // with the app's files in releases, through a link each release carries).
    const envFile = managed(envStorePath(config.serviceName), "0640", "root", config.group, "restart");
    files.push({ label: "env", file: envFile });
    const release = planRelease(config, appFiles, envStorePath(config.serviceName), lock);
    const purge: PurgeSpec | undefined = config.purgeOnDestroy
        ? { paths: [envStorePath(config.serviceName), config.paths.app, config.paths.venv, config.paths.logs, config.paths.releases], envLink: config.paths.envFile, releaseLinks: [config.paths.venv, ...(release.spec.appLink !== undefined ? [config.paths.workingDirectory] : [])], user: config.user, group: config.group }
        : undefined;
    return {
        serviceName: config.serviceName,
        unitName: systemd.unitName,
        systemd,
        files,
        envFile,
        // The notes' .env path: a root-owned link to the real file, kept (and repaired after drift) by the activation.
        // With the app in releases it lives inside the current release (root-owned), where the release build made it.
        links: [
            {
                path: release.spec.envLinkName !== undefined ? `${releaseDir(release.spec, release.spec.id)}/app/${release.spec.envLinkName}` : config.paths.envFile,
                target: envStorePath(config.serviceName),
            },
        ],
        prepare: planPrepare(config, release),
        release,
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
 * A reviewer's view of the `.env` (the Pulumi diff shows it): each plain
 * entry's line exactly as written to the host, each secret entry as
 * `NAME=[secret <fingerprint>]`. The fingerprint is an HMAC keyed by a
 * per-stack random key, so it changes exactly when the value changes but
 * cannot be used to guess the value. Without a key, secrets show as `[secret]`.
 */
export function envFileView(plain: Readonly<Record<string, string>>, secret: Readonly<Record<string, string>>, fingerprintKey?: string): string {
    const placeholders: Record<string, string> = {};
    for (const [name, value] of Object.entries(secret)) {
        placeholders[name] = fingerprintKey === undefined ? "[secret]" : `[secret ${createHmac("sha256", fingerprintKey).update(`${name}=${value}`).digest("hex").slice(0, 12)}]`;
    }
    return renderEnvLines(plain, placeholders).join("\n") + "\n";
}

/** One file as `render` writes it: where it goes on the host, mode and owner, and its text (secrets redacted). */
export interface RenderedHostFile {
    readonly path: string;
    readonly mode: string;
    readonly owner: string;
    readonly group: string;
    /** The text (for a binary file, its size/hash line; see {@link bytes}). */
    readonly text: string;
    /** The exact bytes, for a release's files. */
    readonly bytes?: Buffer;
}

/**
 * Every file the stack puts on a host, with the `.env`'s secret values
 * redacted (`[secret]`; a generated JWT_SECRET is listed as such). Pure: no
 * SSH, no Pulumi engine.
 */
export function renderHostFiles(config: ServiceConfig, secretEnvKeys: readonly string[], appFiles: readonly AppSourceFile[] = []): RenderedHostFile[] {
    const plan = planService(config, appFiles);
    const placeholders: Record<string, string> = Object.fromEntries(secretEnvKeys.map((k) => [k, "[secret]"]));
    if (!secretEnvKeys.includes("JWT_SECRET")) placeholders.JWT_SECRET = "[secret, generated by the stack]";
    // The plain lines and the header are the bytes the host gets (renderEnvFile); only the secrets' lines differ.
    const envText = renderRedactedEnvFile(config.env, placeholders);
    const managedFiles: RenderedHostFile[] = plan.files.map((pf) => ({
        path: pf.file.path,
        mode: pf.file.mode,
        owner: pf.file.owner,
        group: pf.file.group,
        text: pf.file === plan.envFile ? envText : pf.text ?? "",
    }));
    // The release's app files where the service sees them (the working directory links into the current release);
    // its requirements are in the plan (`render`'s plan.txt), not a file of their own.
    const releaseFiles: RenderedHostFile[] = plan.release.entries.filter((e) => e.path.startsWith("app/")).map((e) => ({
        path: `${config.paths.workingDirectory}/${e.path.slice("app/".length)}`,
        mode: e.mode,
        owner: "root",
        group: "root",
        text: previewOf(e.content),
        bytes: e.content,
    }));
    return [...managedFiles, ...releaseFiles];
}
