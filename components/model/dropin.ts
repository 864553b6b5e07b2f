/**
 * What the library may say about a systemd drop-in it did not write (such as
 * the `override.conf` of `systemctl edit`). Operators put secrets in such
 * files (`Environment=TOKEN=…`), so their text never leaves the host: a
 * drop-in is described by its SHA-256 (which changes whenever its bytes do)
 * and the names of its directives per section, with a value only for the
 * directives of {@link DROPIN_SHOWN_DIRECTIVES}.
 */

/**
 * Directives whose values are plainly not secret (resource limits, restart
 * policy, ordering, journald sizes): the only ones shown with their value.
 * Every other directive (`Environment=`, `EnvironmentFile=`, credentials,
 * command lines, anything unknown) is shown by name only.
 */
export const DROPIN_SHOWN_DIRECTIVES: readonly string[] = [
    "MemoryMax",
    "MemoryHigh",
    "MemoryLow",
    "MemoryMin",
    "MemorySwapMax",
    "CPUQuota",
    "CPUWeight",
    "TasksMax",
    "IOWeight",
    "LimitNOFILE",
    "Nice",
    "Restart",
    "RestartSec",
    "StartLimitBurst",
    "StartLimitIntervalSec",
    "TimeoutSec",
    "TimeoutStartSec",
    "TimeoutStopSec",
    "WatchdogSec",
    "Type",
    "After",
    "Before",
    "Requires",
    "Wants",
    "BindsTo",
    "PartOf",
    "SystemMaxUse",
    "SystemKeepFree",
    "SystemMaxFileSize",
    "RuntimeMaxUse",
    "MaxRetentionSec",
    "RateLimitIntervalSec",
    "RateLimitBurst",
    "Storage",
    "Compress",
];

/** The longest value shown; a longer one is shown as `null` (name only). */
export const DROPIN_SHOWN_VALUE_MAX = 200;

/** A shown value holds only these characters (unit names, sizes, durations, percentages); any other is hidden. */
export const DROPIN_SHOWN_VALUE_SOURCE = "^[A-Za-z0-9 ._:@%+/-]*$";

/**
 * A drop-in's summary: its SHA-256 and, per section, each directive's value
 * (`null`: not shown). Section and directive names are only those that look
 * like systemd's; lines that do not are counted in `unparsedLines`.
 */
export interface DropInSummary {
    readonly sha256: string;
    readonly sections: Readonly<Record<string, Readonly<Record<string, string | null>>>>;
    readonly unparsedLines: number;
}

/** An unmanaged drop-in as a host read finds it: a link (never followed) or a plain file, summarised. */
export type ForeignDropIn = { readonly kind: "link" } | ({ readonly kind: "file" } & DropInSummary);

/**
 * One line per section, for people: `[Service] Environment, MemoryMax=50M`
 * (a directive whose value is not shown is named alone). Display only.
 */
export function dropInDirectiveLines(summary: DropInSummary): string[] {
    const lines = Object.entries(summary.sections).map(
        ([section, directives]) => `[${section}] ${Object.entries(directives).map(([name, value]) => (value === null ? name : `${name}=${value}`)).join(", ")}`,
    );
    if (summary.unparsedLines > 0) lines.push(`(${summary.unparsedLines} line(s) not shown: not a directive)`);
    return lines;
}
