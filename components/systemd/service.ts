/**
 * The Python API's systemd files, built from the validated stack config:
 * the unit (equal to the service notes' unit with default settings), one
 * drop-in per named override, and the journald drop-in.
 */
import { OverrideConfig, ServiceConfig } from "../config";
import { MANAGED_MARKER, envStorePath } from "../model";
import { escapeSpecifiers, renderCommandLine, renderEnvironmentAssignment, renderPath } from "./escape";
import { notesHardening, strictHardeningExtras } from "./hardening";
import { Directive, IniFile, group, installDirective as i, journalDirective as j, section, serviceDirective as s, socketDirective as k, unitDirective as u } from "./model";
import { renderIniFile } from "./render";


/** A file to put on the host: where, and its exact text. */
export interface RenderedFile {
    /** Absolute path on the host. */
    readonly path: string;
    /** The file's text. */
    readonly text: string;
}

/** A rendered drop-in with the override it came from. */
export interface RenderedDropIn extends RenderedFile {
    /** The override's name in config. */
    readonly name: string;
}

/** Everything systemd reads for the service. */
export interface RenderedSystemdFiles {
    readonly unitName: string;
    readonly unit: RenderedFile;
    /** The drop-in directory, `/etc/systemd/system/<unit>.d`. */
    readonly dropInDir: string;
    readonly dropIns: readonly RenderedDropIn[];
    /** The socket unit holding the listener, `<serviceName>.socket` (with `app.socketActivation`). */
    readonly socket?: RenderedFile & { readonly unitName: string };
    /** The journald drop-in, when journald limits are configured. */
    readonly journald?: RenderedFile;
}

/**
 * The path of a service's journald drop-in: one file per service, so two
 * services on one host never overwrite, refresh back or delete each other's
 * limits. journald limits are host-wide: where two services set one key,
 * journald applies the file whose name sorts last.
 */
export function journaldDropInPath(serviceName: string): string {
    return `/etc/systemd/journald.conf.d/60-amarktai-infra-${serviceName}.conf`;
}

/** The name of the socket unit that holds the service's listener: `<serviceName>.socket`. */
export function socketUnitName(config: Pick<ServiceConfig, "serviceName">): string {
    return `${config.serviceName}.socket`;
}

/**
 * The first file descriptor systemd passes a socket-activated service
 * (`SD_LISTEN_FDS_START`): the socket unit's one listener.
 */
export const LISTEN_FD = 3;

/** `ListenStream=`'s address: `HOST:PORT`, an IPv6 host in brackets. */
export function listenAddress(config: Pick<ServiceConfig, "app">): string {
    const host = config.app.bindHost.includes(":") ? `[${config.app.bindHost}]` : config.app.bindHost;
    return `${host}:${config.app.port}`;
}

/** The uvicorn command line for the given effective settings. */
export function uvicornCommand(config: ServiceConfig, workers: number | undefined, logLevel: string): string {
    // With socket activation uvicorn serves the socket systemd holds (and passes on every start) instead of binding the port.
    const listener = config.app.socketActivation ? ["--fd", String(LISTEN_FD)] : ["--host", config.app.bindHost, "--port", String(config.app.port)];
    const argv = [`${config.paths.venv}/bin/python`, "-m", "uvicorn", config.app.module, ...listener];
    if (workers !== undefined) {
        // uvicorn's default (5 s) kills and respawns the children of a loaded or slow host in a loop.
        argv.push("--workers", String(workers), "--timeout-worker-healthcheck", String(config.app.workerHealthcheckTimeoutSec));
    }
    argv.push("--log-level", logLevel);
    return renderCommandLine(argv);
}

/**
 * `ExecReload=` for the effective worker count, with socket activation (the
 * listener stays open throughout, so a reload refuses no connection):
 * - two or more workers: `SIGHUP` to uvicorn's supervisor, which replaces its
 *   workers one at a time while the others keep serving;
 * - one worker: uvicorn has no supervisor and exits on `SIGHUP`, so the
 *   reload is a graceful stop (`SIGTERM`: in-flight requests finish) and the
 *   unit's `Restart=` (or, with `Restart=no`, the next connection through the
 *   socket) starts it again; new connections wait in the socket's queue meanwhile.
 */
export function reloadCommand(workers: number | undefined): string {
    return workers !== undefined && workers >= 2 ? "/bin/kill -HUP $MAINPID" : "/bin/kill -TERM $MAINPID";
}

/** The main unit file, as in the service notes (plus Requires=/Wants=/Group= when configured, and the strict profile's extras). */
export function buildUnit(config: ServiceConfig): IniFile {
    const unitDirectives: Directive<"Unit">[] = [
        u("Description", escapeSpecifiers(config.description)),
        u("Documentation", config.documentation),
        // With socket activation the listener must be open before uvicorn starts (it is handed over as fd 3), and stopping
        // the socket stops the service.
        u("After", [...config.dependencies.after, ...(config.app.socketActivation ? [socketUnitName(config)] : [])].join(" ")),
    ];
    const requires = [...config.dependencies.requires, ...(config.app.socketActivation ? [socketUnitName(config)] : [])];
    if (requires.length > 0) {
        unitDirectives.push(u("Requires", requires.join(" ")));
    }
    if (config.dependencies.wants.length > 0) {
        unitDirectives.push(u("Wants", config.dependencies.wants.join(" ")));
    }
    const identity: Directive<"Service">[] = [s("Type", "simple"), s("User", config.user)];
    if (config.group !== config.user) {
        identity.push(s("Group", config.group));
    }
    identity.push(
        s("WorkingDirectory", renderPath(config.paths.workingDirectory)),
        s("Environment", renderEnvironmentAssignment("PATH", `${config.paths.venv}/bin`)),
        s("EnvironmentFile", renderPath(envStorePath(config.serviceName))),
    );
    const serviceGroups = [
        group(identity),
        group(
            [s("ExecStart", uvicornCommand(config, undefined, config.app.logLevel)), ...(config.app.socketActivation ? [s("ExecReload", reloadCommand(undefined))] : [])],
            "Start command",
        ),
        group(
            [s("Restart", config.restart.policy), s("RestartSec", String(config.restart.sec)), s("TimeoutStopSec", String(config.restart.timeoutStopSec))],
            "Restart policy",
        ),
        group(notesHardening([config.paths.app, config.paths.logs]), "Security hardening"),
    ];
    if (config.hardening === "strict") {
        serviceGroups.push(group(strictHardeningExtras(), "Strict hardening (amarktai-infra 'strict' profile)"));
    }
    serviceGroups.push(
        group([s("StandardOutput", "journal"), s("StandardError", "journal"), s("SyslogIdentifier", config.serviceName)], "Logging"),
    );
    return {
        header: [MANAGED_MARKER],
        sections: [section("Unit", group(unitDirectives)), section("Service", ...serviceGroups), section("Install", group([i("WantedBy", "multi-user.target")]))],
    };
}

/** An override with its resolved order and name, in application order. */
export interface OrderedOverride {
    readonly name: string;
    readonly order: number;
    readonly override: OverrideConfig;
}

/** The order of an override that does not set one (only allowed when it is the only override). */
export const DEFAULT_OVERRIDE_ORDER = 10;

/**
 * Orders overrides as systemd applies their files: by `order` (the `NN`
 * prefix), never by where they appear in the config object, whose key order
 * Pulumi does not keep. The schema refuses several overrides without `order`
 * and duplicate orders; the name only breaks ties the schema already refused.
 */
export function orderOverrides(overrides: Readonly<Record<string, OverrideConfig>>): OrderedOverride[] {
    return Object.entries(overrides)
        .map(([name, override]) => ({ name, override, order: override.order ?? DEFAULT_OVERRIDE_ORDER }))
        .sort((a, b) => a.order - b.order || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The file name of an override's drop-in: `NN-name.conf`. */
export function dropInFileName(o: OrderedOverride): string {
    return `${String(o.order).padStart(2, "0")}-${o.name}.conf`;
}

/**
 * Builds one drop-in. `effective` carries the workers/log level in force
 * after the earlier drop-ins, so a later `ExecStart=` reset keeps them.
 */
export function buildDropIn(config: ServiceConfig, o: OrderedOverride, effective: { workers: number | undefined; logLevel: string }): IniFile {
    const ov = o.override;
    const unitDirectives: Directive<"Unit">[] = [];
    if (ov.after && ov.after.length > 0) unitDirectives.push(u("After", ov.after.join(" ")));
    if (ov.requires && ov.requires.length > 0) unitDirectives.push(u("Requires", ov.requires.join(" ")));
    if (ov.wants && ov.wants.length > 0) unitDirectives.push(u("Wants", ov.wants.join(" ")));
    const serviceDirectives: Directive<"Service">[] = [];
    if (ov.workers !== undefined || ov.logLevel !== undefined) {
        // A drop-in cannot append to ExecStart= of a simple service: reset it, then set the new command.
        serviceDirectives.push(s("ExecStart", ""), s("ExecStart", uvicornCommand(config, effective.workers, effective.logLevel)));
        if (config.app.socketActivation) serviceDirectives.push(s("ExecReload", ""), s("ExecReload", reloadCommand(effective.workers)));
    }
    if (ov.memoryHigh !== undefined) serviceDirectives.push(s("MemoryHigh", ov.memoryHigh));
    if (ov.memoryMax !== undefined) serviceDirectives.push(s("MemoryMax", ov.memoryMax));
    if (ov.cpuQuota !== undefined) serviceDirectives.push(s("CPUQuota", ov.cpuQuota));
    if (ov.restart !== undefined) serviceDirectives.push(s("Restart", ov.restart));
    if (ov.restartSec !== undefined) serviceDirectives.push(s("RestartSec", String(ov.restartSec)));
    for (const [name, value] of Object.entries(ov.environment ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        serviceDirectives.push(s("Environment", renderEnvironmentAssignment(name, value)));
    }
    return {
        header: [MANAGED_MARKER, `Override '${o.name}' from the stack config.`],
        sections: [section("Unit", group(unitDirectives)), section("Service", group(serviceDirectives))],
    };
}

/**
 * The socket unit that holds the service's listener (`app.socketActivation`):
 * systemd opens `bindHost:port` once and passes it to every start of the
 * service, so a restart queues connections instead of refusing them.
 */
export function buildSocketUnit(config: ServiceConfig): IniFile {
    return {
        header: [MANAGED_MARKER],
        sections: [
            section("Unit", group([u("Description", escapeSpecifiers(`${config.description} (listening socket)`)), u("Documentation", config.documentation)])),
            section(
                "Socket",
                group([k("ListenStream", listenAddress(config)), k("NoDelay", "true")], `Held by systemd and passed to ${config.serviceName}.service as fd ${LISTEN_FD}: during a restart, connections wait instead of being refused`),
            ),
            section("Install", group([i("WantedBy", "sockets.target")])),
        ],
    };
}

/** The journald drop-in for the configured limits, or undefined when none are set. */
export function buildJournald(config: ServiceConfig): IniFile | undefined {
    const jc = config.journald;
    if (!jc) return undefined;
    const directives: Directive<"Journal">[] = [];
    if (jc.systemMaxUse !== undefined) directives.push(j("SystemMaxUse", jc.systemMaxUse));
    if (jc.systemKeepFree !== undefined) directives.push(j("SystemKeepFree", jc.systemKeepFree));
    if (jc.maxRetentionSec !== undefined) directives.push(j("MaxRetentionSec", String(jc.maxRetentionSec)));
    if (directives.length === 0) return undefined;
    return { header: [MANAGED_MARKER], sections: [section("Journal", group(directives))] };
}

/** Renders every systemd file of the service. */
export function renderSystemdFiles(config: ServiceConfig): RenderedSystemdFiles {
    const unitName = `${config.serviceName}.service`;
    const dropInDir = `/etc/systemd/system/${unitName}.d`;
    const effective = { workers: undefined as number | undefined, logLevel: config.app.logLevel as string };
    const dropIns = orderOverrides(config.overrides).map((o) => {
        if (o.override.workers !== undefined) effective.workers = o.override.workers;
        if (o.override.logLevel !== undefined) effective.logLevel = o.override.logLevel;
        return { name: o.name, path: `${dropInDir}/${dropInFileName(o)}`, text: renderIniFile(buildDropIn(config, o, effective)) };
    });
    const journald = buildJournald(config);
    return {
        unitName,
        unit: { path: `/etc/systemd/system/${unitName}`, text: renderIniFile(buildUnit(config)) },
        dropInDir,
        dropIns,
        ...(config.app.socketActivation
            ? { socket: { unitName: socketUnitName(config), path: `/etc/systemd/system/${socketUnitName(config)}`, text: renderIniFile(buildSocketUnit(config)) } }
            : {}),
        ...(journald ? { journald: { path: journaldDropInPath(config.serviceName), text: renderIniFile(journald) } } : {}),
    };
}
