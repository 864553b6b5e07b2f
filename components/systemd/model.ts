/**
 * A typed model of systemd unit files and drop-ins. A directive placed in the
 * wrong section is a type error; the renderer turns the model into the exact
 * text systemd reads.
 */

/** Directives this project writes in a `[Unit]` section. */
export type UnitSectionDirective =
    | "Description"
    | "Documentation"
    | "After"
    | "Before"
    | "Requires"
    | "Wants"
    | "BindsTo"
    | "PartOf"
    | "Conflicts"
    | "StartLimitIntervalSec"
    | "StartLimitBurst";

/** Directives this project writes in a `[Service]` section. */
export type ServiceSectionDirective =
    | "Type"
    | "User"
    | "Group"
    | "WorkingDirectory"
    | "Environment"
    | "EnvironmentFile"
    | "ExecStart"
    | "ExecStartPre"
    | "ExecStartPost"
    | "ExecReload"
    | "ExecStop"
    | "Restart"
    | "RestartSec"
    | "TimeoutStartSec"
    | "TimeoutStopSec"
    | "KillMode"
    | "KillSignal"
    | "UMask"
    | "MemoryMax"
    | "MemoryHigh"
    | "CPUQuota"
    | "TasksMax"
    | "LimitNOFILE"
    | "StandardOutput"
    | "StandardError"
    | "SyslogIdentifier"
    // Sandboxing.
    | "NoNewPrivileges"
    | "PrivateTmp"
    | "PrivateDevices"
    | "ProtectSystem"
    | "ProtectHome"
    | "ReadWritePaths"
    | "ProtectKernelTunables"
    | "ProtectKernelModules"
    | "ProtectKernelLogs"
    | "ProtectControlGroups"
    | "ProtectClock"
    | "ProtectHostname"
    | "ProtectProc"
    | "ProcSubset"
    | "RestrictRealtime"
    | "RestrictSUIDSGID"
    | "RestrictNamespaces"
    | "RestrictAddressFamilies"
    | "LockPersonality"
    | "MemoryDenyWriteExecute"
    | "RemoveIPC"
    | "CapabilityBoundingSet"
    | "AmbientCapabilities"
    | "SystemCallFilter"
    | "SystemCallArchitectures"
    | "SystemCallErrorNumber"
    | "PrivateUsers"
    | "PrivateIPC"
    | "DevicePolicy"
    | "KeyringMode";

/** Directives this project writes in an `[Install]` section. */
export type InstallSectionDirective = "WantedBy" | "RequiredBy" | "Alias";

/** Directives this project writes in a `[Socket]` section. */
export type SocketSectionDirective = "ListenStream" | "Backlog" | "NoDelay" | "FreeBind" | "Service";

/** Directives this project writes in journald's `[Journal]` section. */
export type JournalSectionDirective = "SystemMaxUse" | "SystemKeepFree" | "MaxRetentionSec" | "SystemMaxFileSize";

/** Maps each section name to the directives allowed in it. */
export interface SectionDirectives {
    Unit: UnitSectionDirective;
    Service: ServiceSectionDirective;
    Install: InstallSectionDirective;
    Socket: SocketSectionDirective;
    Journal: JournalSectionDirective;
}

/** A section name of a unit file or of journald.conf. */
export type SectionName = keyof SectionDirectives;

/**
 * One `Name=value` line. An empty `value` renders as `Name=`, which resets a
 * list directive such as `ExecStart=` in a drop-in.
 */
export interface Directive<S extends SectionName> {
    readonly name: SectionDirectives[S];
    /** The value exactly as systemd should read it; already escaped by the helpers in `escape.ts`. */
    readonly value: string;
}

/** A run of directives, optionally preceded by a `# comment` line, separated from the next group by a blank line. */
export interface DirectiveGroup<S extends SectionName> {
    readonly comment?: string;
    readonly directives: readonly Directive<S>[];
}

/** A section: its name and its groups of directives, in order. */
export interface Section<S extends SectionName = SectionName> {
    readonly name: S;
    readonly groups: readonly DirectiveGroup<S>[];
}

/** A whole file: optional header comment lines, then sections in order. */
export interface IniFile {
    /** Comment lines written before the first section, without the leading `# `. */
    readonly header?: readonly string[];
    readonly sections: readonly Section[];
}

/** A `[Unit]` directive. */
export function unitDirective(name: UnitSectionDirective, value: string): Directive<"Unit"> {
    return { name, value };
}

/** A `[Service]` directive. */
export function serviceDirective(name: ServiceSectionDirective, value: string): Directive<"Service"> {
    return { name, value };
}

/** A `[Socket]` directive. */
export function socketDirective(name: SocketSectionDirective, value: string): Directive<"Socket"> {
    return { name, value };
}

/** An `[Install]` directive. */
export function installDirective(name: InstallSectionDirective, value: string): Directive<"Install"> {
    return { name, value };
}

/** A journald `[Journal]` directive. */
export function journalDirective(name: JournalSectionDirective, value: string): Directive<"Journal"> {
    return { name, value };
}

/** Builds a section from groups. */
export function section<S extends SectionName>(name: S, ...groups: DirectiveGroup<S>[]): Section<S> {
    return { name, groups };
}

/** Builds a group of directives with an optional comment. */
export function group<S extends SectionName>(directives: Directive<S>[], comment?: string): DirectiveGroup<S> {
    return comment === undefined ? { directives } : { comment, directives };
}
