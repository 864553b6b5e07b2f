/**
 * Adoption of a hand-made install (the service notes followed by hand) as
 * plain data: what a read-only survey of the host found, what the takeover
 * backs up and records, and the plan shown in a preview. Secret values never
 * appear here: the `.env` is described by its key names and hash, unmanaged
 * drop-ins by their summary (see `DropInSummary`).
 */
import { DropInSummary } from "./dropin";
import { serviceStateDir } from "./files";

/** The name prefix of an adoption's backup directory in the service's state directory: `adopted-<UTC time>`. */
export const ADOPTION_BACKUP_PREFIX = "adopted-";

/** The backup directory an adoption at `time` (`YYYYMMDDTHHMMSSZ`, UTC) keeps: root-only, kept by destroy. */
export function adoptionBackupDir(serviceName: string, time: string): string {
    return `${serviceStateDir(serviceName)}/${ADOPTION_BACKUP_PREFIX}${time}`;
}

/** The service's unit file as the survey found it. */
export type AdoptionUnit =
    /** No unit of that name anywhere. */
    | { readonly state: "absent" }
    /** Written by the library (its first line is the managed marker). */
    | { readonly state: "managed" }
    /** Not something to take over: a package's, runtime or generated unit, a link, another owner's file; `why` says which. */
    | { readonly state: "foreign"; readonly path: string; readonly why: string }
    /** A plain root-owned file at `/etc/systemd/system/<service>.service`, the only definition of the unit. */
    | {
          readonly state: "hand-made";
          readonly path: string;
          readonly sha256: string;
          readonly owner: string;
          readonly group: string;
          /** Octal, e.g. `0644`. */
          readonly mode: string;
          /** The whole unit text (world-readable on the host; a plan masks `Environment=` values before showing it). */
          readonly text: string;
          /** systemd reports it active (false where systemd is not running). */
          readonly active: boolean;
          /** Its main process (0: none, or unknown). */
          readonly mainPid: number;
      };

/** The `<service>.socket` unit beside it. */
export type AdoptionSocketUnit = { readonly state: "absent" | "managed" } | { readonly state: "foreign"; readonly path: string; readonly why: string };

/** An unmanaged `*.conf` in the unit's drop-in directory: a link (never followed) or a plain file, summarised on the host. */
export type AdoptionDropIn = { readonly path: string } & ({ readonly kind: "link" } | ({ readonly kind: "file" } & DropInSummary));

/** A directory the service uses (a `paths.*` key), looked at without following any link on the way. */
export interface AdoptionDir {
    /** The config key the path comes from, e.g. `paths.logs`. */
    readonly key: string;
    readonly path: string;
    /** `link`: a link, or reached through one; `other`: not a directory. */
    readonly state: "absent" | "link" | "other" | "present";
    /** Set when `present`. */
    readonly owner?: string;
    /** Set when `present`. */
    readonly group?: string;
    /** Octal, e.g. `0755`; set when `present`. */
    readonly mode?: string;
}

/** The hand-made `.env` at the notes' path: its key names and hash, never its values. */
export interface AdoptionEnvFile {
    readonly path: string;
    /** `link`: a link, or reached through one; `other`: not a regular file; `refused`: the file helper would not read it (see `why`). */
    readonly state: "absent" | "link" | "other" | "refused" | "present";
    /** The file helper's reason, when `refused` (it names paths and owners, never a value). */
    readonly why?: string;
    /** Set when `present`. */
    readonly owner?: string;
    /** Set when `present`. */
    readonly group?: string;
    /** Octal, e.g. `0600`; set when `present`. */
    readonly mode?: string;
    /** Set when `present`. */
    readonly sha256?: string;
    /** The names of the variables it sets, in file order; set when `present`. */
    readonly keys?: readonly string[];
}

/** What the read-only survey found on a host. */
export interface AdoptionSurvey {
    readonly unit: AdoptionUnit;
    readonly socketUnit: AdoptionSocketUnit;
    /** Unmanaged drop-ins in `/etc/systemd/system/<service>.service.d/` (files whose first line is not the marker). */
    readonly dropIns: readonly AdoptionDropIn[];
    /**
     * Other drop-ins systemd applies to the unit from outside that directory and outside the vendor
     * directories (`systemctl set-property`'s `/etc/systemd/system.control`, runtime ones in `/run`); paths only.
     */
    readonly otherDropIns: readonly string[];
    /** The service user; absent when it does not exist. */
    readonly user?: { readonly uid: number; readonly gid: number; readonly primaryGroup: string };
    /** The service group; absent when it does not exist. */
    readonly group?: { readonly gid: number };
    readonly dirs: readonly AdoptionDir[];
    readonly envFile: AdoptionEnvFile;
    /** The library's record file (`createdRecordPath`) exists: the host is already managed. */
    readonly recorded: boolean;
    /** Whether a listening socket can move from the running service to the socket unit without a refused connection. */
    readonly handover: {
        readonly available: boolean;
        /** Why not, when not available. */
        readonly why?: string;
    };
}

/**
 * What the takeover backs up and records, each file with the SHA-256 the
 * preview saw (the takeover changes nothing when one differs). It appends
 * to the record file (`createdRecordPath`) one line each, never twice:
 * `adopted unit PATH SHA256`, `adopted dropin PATH SHA256`, `adopted user NAME`,
 * `adopted group NAME`, `adopted dir PATH`, and last `adopted backup DIR`.
 */
export interface AdoptionTake {
    readonly unit?: { readonly path: string; readonly sha256: string };
    /** The unmanaged drop-ins to back up (the activation then removes them). */
    readonly dropIns: readonly { readonly path: string; readonly sha256: string }[];
    readonly envFile?: { readonly path: string; readonly sha256: string };
    /** The existing service user and group, kept (never removed by destroy). */
    readonly user?: string;
    readonly group?: string;
    /** Existing directories of the host preparation, given the configured owner and mode by it. */
    readonly dirs: readonly string[];
}

/** What adopting a host means, for a preview, and what the takeover does. */
export interface AdoptionPlan {
    /** `fresh`: nothing hand-made to take over; `managed`: already the library's; `adopt`: a hand-made install. */
    readonly state: "fresh" | "managed" | "adopt";
    /** Plain-text lines for people (no secret values). */
    readonly report: readonly string[];
    /** Full sentences, each naming what is refused and why (and the config key when one applies); empty when adoptable. */
    readonly refusals: readonly string[];
    /** What the takeover backs up and records (meaningful only in state `adopt` without refusals). */
    readonly take: AdoptionTake;
}
