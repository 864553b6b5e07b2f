/**
 * Planning the adoption of a hand-made install from what the survey found:
 * whether there is anything to take over, what is refused (and why, naming
 * the config key), the lines a preview shows (the unit's line diff with
 * `Environment=` values hidden, each drop-in's settings, owners, the `.env`'s
 * key names) and what the takeover backs up and records. Pure.
 */
import { ServiceConfig } from "../config";
import { AdoptionDir, AdoptionDropIn, AdoptionPlan, AdoptionSurvey, AdoptionTake, DirectorySpec, ENV_NAME, adoptionBackupDir, dropInDirectiveLines, envStorePath } from "../model";
import { parseIniDirectives } from "../systemd";
import { ServicePlan } from "./plan";

/** What {@link planAdoption} compares the survey with: the config's side. */
export interface AdoptionPlanInput {
    readonly survey: AdoptionSurvey;
    readonly serviceName: string;
    readonly user: string;
    readonly group: string;
    /** The host preparation's directories, with the owner and mode each gets. */
    readonly directories: readonly DirectorySpec[];
    /**
     * Paths that become root-owned links into the current release (`paths.venv`; the working
     * directory when the app's files are part of releases), and the releases directory.
     */
    readonly releases?: { readonly dir: string; readonly links: readonly { readonly key: string; readonly path: string }[] };
    /** The managed unit the stack writes. */
    readonly unitText: string;
    /** The managed drop-ins of the unit, rendered. */
    readonly dropIns: readonly { readonly path: string; readonly text: string }[];
    /** The config's plain `.env` entries. */
    readonly env: Readonly<Record<string, string>>;
    /** The names of the config's secret `.env` entries. */
    readonly secretEnvKeys: readonly string[];
    readonly foreignDropIns: "refuse" | "remove";
    readonly port: number;
    readonly socketActivation: boolean;
}

/** What the survey needs from the config (the shape of the host layer's `AdoptionSurveySpec`): names and the notes' paths. */
export function adoptionSurveyTargets(config: ServiceConfig, plan: Pick<ServicePlan, "prepare" | "release">): {
    serviceName: string;
    user: string;
    group: string;
    directories: { key: string; path: string }[];
    envFile: string;
} {
    return {
        serviceName: config.serviceName,
        user: config.user,
        group: config.group,
        directories: [...plan.prepare.directories.map((d) => ({ key: d.key, path: d.path })), ...releaseLinksOf(config, plan)],
        envFile: config.paths.envFile,
    };
}

function releaseLinksOf(config: ServiceConfig, plan: Pick<ServicePlan, "release">): { key: string; path: string }[] {
    return [{ key: "paths.venv", path: config.paths.venv }, ...(plan.release.spec.appLink !== undefined ? [{ key: "paths.workingDirectory", path: config.paths.workingDirectory }] : [])];
}

/** What the stack installs, against which a survey is planned: {@link AdoptionPlanInput} without the survey. */
export type AdoptionExpectations = Omit<AdoptionPlanInput, "survey">;

/** The expectations of {@link planAdoption} for a config and its service plan (the survey comes from the host). */
export function adoptionExpectations(config: ServiceConfig, plan: Pick<ServicePlan, "prepare" | "release" | "systemd">, secretEnvKeys: readonly string[]): AdoptionExpectations {
    return {
        serviceName: config.serviceName,
        user: config.user,
        group: config.group,
        directories: plan.prepare.directories,
        releases: { dir: plan.release.spec.releasesDir, links: releaseLinksOf(config, plan) },
        unitText: plan.systemd.unit.text,
        dropIns: plan.systemd.dropIns.map((d) => ({ path: d.path, text: d.text })),
        env: config.env,
        secretEnvKeys,
        foreignDropIns: config.foreignDropIns,
        port: config.app.port,
        socketActivation: config.app.socketActivation,
    };
}

/** The input of {@link planAdoption} for a config, its service plan and a host's survey. */
export function adoptionPlanInput(config: ServiceConfig, plan: Pick<ServicePlan, "prepare" | "release" | "systemd">, survey: AdoptionSurvey, secretEnvKeys: readonly string[]): AdoptionPlanInput {
    return { survey, ...adoptionExpectations(config, plan, secretEnvKeys) };
}

/** The systemd word of an `Environment=` line, split off with its quote (none, `"` or `'`). */
function environmentWords(value: string): { word: string; quote: string }[] {
    const words: { word: string; quote: string }[] = [];
    let word = "";
    let quote = "";
    let first = "";
    let started = false;
    for (let i = 0; i < value.length; i++) {
        const c = value[i]!;
        if (quote === "" && /\s/.test(c)) {
            if (started) words.push({ word, quote: first });
            word = "";
            first = "";
            started = false;
            continue;
        }
        if (!started) {
            started = true;
            first = c === '"' || c === "'" ? c : "";
        }
        if (c === "\\" && i + 1 < value.length) {
            word += value[++i];
        } else if (quote === "" && (c === '"' || c === "'")) {
            quote = c;
        } else if (c === quote) {
            quote = "";
        } else {
            word += c;
        }
    }
    if (started) words.push({ word, quote: first });
    return words;
}

/**
 * Hides every `Environment=` assignment's value (`NAME=[hidden]`, the names and quoting kept):
 * what a preview may show of a unit. A continued line (`\` at its end) is hidden whole.
 */
export function maskEnvironmentValues(text: string): string {
    let continued = false;
    return text
        .split("\n")
        .map((line) => {
            if (continued) {
                continued = line.trimEnd().endsWith("\\");
                return "[hidden]";
            }
            const m = /^(\s*Environment\s*=\s*)(.*)$/.exec(line);
            if (!m) return line;
            continued = m[2]!.trimEnd().endsWith("\\");
            const masked = environmentWords(m[2]!.replace(/\\\s*$/, "")).map(({ word, quote }) => {
                const eq = word.indexOf("=");
                const name = eq > 0 ? word.slice(0, eq) : "";
                const shown = ENV_NAME.test(name) ? `${name}=[hidden]` : "[hidden]";
                return `${quote}${shown}${quote}`;
            });
            return `${m[1]}${masked.join(" ")}${continued ? " \\" : ""}`;
        })
        .join("\n");
}

/** A line diff (longest common subsequence): `  ` kept, `- ` only in `before`, `+ ` only in `after`. */
export function lineDiff(before: readonly string[], after: readonly string[]): string[] {
    const n = before.length;
    const m = after.length;
    const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
    for (let i = n - 1; i >= 0; i--) {
        for (let j = m - 1; j >= 0; j--) lcs[i]![j] = before[i] === after[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
    const out: string[] = [];
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
        if (i < n && j < m && before[i] === after[j]) {
            out.push(`  ${before[i++]}`);
            j++;
        } else if (i < n && (j >= m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
            out.push(`- ${before[i++]}`);
        } else {
            out.push(`+ ${after[j++]}`);
        }
    }
    return out.map((l) => l.trimEnd());
}

/** The last value of each `[section] Name=` of a unit text (an empty assignment resets it); tolerant of anything else. */
function unitSettings(text: string): Map<string, string> {
    const settings = new Map<string, string>();
    let section = "";
    for (const raw of text.split("\n")) {
        const line = raw.trim();
        if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
        const header = /^\[([^\]]+)\]$/.exec(line);
        if (header) {
            section = header[1]!;
            continue;
        }
        const eq = line.indexOf("=");
        if (eq <= 0) continue;
        const key = `${section}\n${line.slice(0, eq).trim()}`;
        const value = line.slice(eq + 1).trim();
        if (value === "") settings.delete(key);
        else settings.set(key, value);
    }
    return settings;
}

/** The config keys that hold a directive (for a refusal's hint). */
const OVERRIDE_KEYS: Readonly<Record<string, string>> = {
    MemoryMax: "overrides.<name>.memoryMax",
    MemoryHigh: "overrides.<name>.memoryHigh",
    CPUQuota: "overrides.<name>.cpuQuota",
    After: "overrides.<name>.after",
    Requires: "overrides.<name>.requires",
    Wants: "overrides.<name>.wants",
    Restart: "overrides.<name>.restart",
    RestartSec: "overrides.<name>.restartSec",
    Environment: "overrides.<name>.environment (or env / secretEnv)",
    TimeoutStopSec: "restart.timeoutStopSec",
};

/** `a, b and c`. */
function list(items: readonly string[]): string {
    return items.length <= 1 ? (items[0] ?? "") : `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

/** What of an unmanaged drop-in the config does not have: `Name=value` (or `Name (value not shown)`) per missing directive. */
function missingDirectives(dropIn: Extract<AdoptionDropIn, { kind: "file" }>, managed: ReadonlySet<string>): { missing: string[]; names: string[] } {
    const missing: string[] = [];
    const names: string[] = [];
    for (const [section, directives] of Object.entries(dropIn.sections)) {
        for (const [name, value] of Object.entries(directives)) {
            if (value !== null && managed.has(`${section}\n${name}\n${value}`)) continue;
            missing.push(value === null ? `[${section}] ${name} (value not shown)` : `[${section}] ${name}=${value}`);
            names.push(name);
        }
    }
    if (dropIn.unparsedLines > 0) missing.push(`${dropIn.unparsedLines} line(s) that are not directives`);
    return { missing, names };
}

/** Where to put the missing directives, for a refusal. */
function hintFor(names: readonly string[]): string {
    const keys = [...new Set(names.map((n) => OVERRIDE_KEYS[n]).filter((k): k is string => k !== undefined))];
    return keys.length > 0 ? `put them in the config (${keys.join(", ")}) or set foreignDropIns: remove` : "put them in overrides or set foreignDropIns: remove";
}

/** `owner:group mode`. */
function ownership(d: { readonly owner?: string | undefined; readonly group?: string | undefined; readonly mode?: string | undefined }): string {
    return `${d.owner ?? "?"}:${d.group ?? "?"} ${d.mode ?? "?"}`;
}

/**
 * Plans the adoption of a host from its survey: `fresh` (no unit: nothing to take over), `managed`
 * (the library's unit, or its record, is already there) or `adopt`, with the report a preview shows
 * (no secret value: `Environment=` values are hidden, the `.env` is named by its keys), the refusals
 * (each a sentence naming what, why and the config key), and what the takeover backs up and records.
 */
export function planAdoption(input: AdoptionPlanInput): AdoptionPlan {
    const { survey, serviceName: svc, user, group } = input;
    const unitName = `${svc}.service`;
    const empty: AdoptionTake = { dropIns: [], dirs: [] };
    if (survey.unit.state === "absent") {
        return { state: "fresh", report: [`${unitName}: no unit on this host, nothing hand-made to take over; the host is prepared as a new one`], refusals: [], take: empty };
    }
    if (survey.unit.state === "managed" || survey.recorded) {
        return { state: "managed", report: [`${unitName} is already managed by amarktai-infra on this host; nothing to take over`], refusals: [], take: empty };
    }
    const report: string[] = [];
    const refusals: string[] = [];
    const unit = survey.unit;

    // The unit.
    if (unit.state === "foreign") {
        report.push(`unit ${unit.path}: not taken over (${unit.why})`);
        refusals.push(`${unitName} on this host is ${unit.path}, and ${unit.why}: only a plain root-owned unit at /etc/systemd/system/${unitName} is taken over (hosts[i].adopt); remove it or choose another serviceName.`);
    } else {
        report.push(`unit ${unit.path} (hand-made, ${ownership(unit)}, sha256 ${unit.sha256}${unit.active ? `, active, main pid ${unit.mainPid}` : ", not active"}) is replaced by the managed unit (Environment= values hidden):`);
        report.push(...lineDiff(maskEnvironmentValues(unit.text).replace(/\n$/, "").split("\n"), maskEnvironmentValues(input.unitText).replace(/\n$/, "").split("\n")));
        const settings = unitSettings(unit.text);
        const runsAs = settings.get("Service\nUser");
        const runsAsGroup = settings.get("Service\nGroup");
        if (runsAs === undefined) {
            refusals.push(`The hand-made unit has no User=, so it runs as root; the service never runs as root under amarktai-infra, so its files may not suit user ${user}: add User=${user} to the unit by hand and check the service still runs, or do not adopt this host.`);
        } else if (runsAs !== user) {
            refusals.push(`The hand-made unit runs as User=${runsAs}, but the config's user is ${user}: set user: ${runsAs} (and its group) to adopt it as it runs.`);
        }
        if (runsAsGroup !== undefined && runsAsGroup !== group) {
            refusals.push(`The hand-made unit runs with Group=${runsAsGroup}, but the config's group is ${group}: set group: ${runsAsGroup} to adopt it as it runs.`);
        }
    }
    if (survey.socketUnit.state === "foreign") {
        refusals.push(`${survey.socketUnit.path} (${survey.socketUnit.why}) is a socket unit of the same name that amarktai-infra did not write; it would hand its listener to the service: remove it, or choose another serviceName.`);
    }

    // Drop-ins.
    const managed = new Set<string>();
    for (const text of [input.unitText, ...input.dropIns.map((d) => d.text)]) {
        for (const d of parseIniDirectives(text)) managed.add(`${d.section}\n${d.name}\n${d.value}`);
    }
    const takeDropIns: { path: string; sha256: string }[] = [];
    for (const d of survey.dropIns) {
        if (d.kind === "link") {
            report.push(`drop-in ${d.path}: a link (or not a plain file), never followed`);
            refusals.push(`The drop-in ${d.path} is a link or not a plain file; a link is never followed or taken over: remove it by hand.`);
            continue;
        }
        report.push(`drop-in ${d.path} (sha256 ${d.sha256.slice(0, 12)})`);
        report.push(...dropInDirectiveLines(d).map((l) => `  ${l}`));
        const { missing, names } = missingDirectives(d, managed);
        if (missing.length === 0) {
            report.push("  converted: its settings are in the config; backed up and removed");
            takeDropIns.push({ path: d.path, sha256: d.sha256 });
        } else if (input.foreignDropIns === "remove") {
            report.push(`  not converted: the config does not have ${list(missing)}; backed up and removed (foreignDropIns: remove)`);
            takeDropIns.push({ path: d.path, sha256: d.sha256 });
        } else {
            report.push(`  not converted: the config does not have ${list(missing)}`);
            refusals.push(`The drop-in ${d.path} sets ${list(missing)}, which the config does not: ${hintFor(names)} (it is then backed up and removed).`);
        }
    }
    for (const p of survey.otherDropIns) {
        report.push(`drop-in ${p} also applies to ${unitName} (systemctl set-property, or one in /run): not taken over and left in place; its settings win over the managed ones until it is removed`);
    }

    // The account.
    if (survey.user) {
        report.push(`user ${user} (uid ${survey.user.uid}, gid ${survey.user.gid}): kept (adopted; never removed by destroy)`);
        if (survey.user.uid === 0) refusals.push(`The user ${user} has uid 0 on this host; the service never runs as root: choose another user.`);
        if (survey.user.gid === 0) refusals.push(`The user ${user} has gid 0 (root's group) as its primary group on this host: choose another user.`);
        if (survey.user.primaryGroup !== group) {
            refusals.push(`The user ${user} exists with the primary group ${survey.user.primaryGroup}, not the config's group ${group}: set group: ${survey.user.primaryGroup} (what the hand-made unit runs with), or change the user's group by hand.`);
        }
    } else {
        report.push(`user ${user}: created`);
    }
    if (survey.group) {
        report.push(`group ${group} (gid ${survey.group.gid}): kept (adopted; never removed by destroy)`);
        if (survey.group.gid === 0) refusals.push(`The group ${group} has gid 0 on this host: choose another group.`);
    } else {
        report.push(`group ${group}: created`);
    }

    // Directories.
    const dirAt = new Map<string, AdoptionDir>(survey.dirs.map((d) => [d.path, d]));
    const takeDirs: string[] = [];
    for (const want of input.directories) {
        const found = dirAt.get(want.path);
        if (found === undefined || found.state === "absent") {
            report.push(`${want.key} ${want.path}: created ${ownership(want)}`);
            continue;
        }
        if (found.state !== "present") {
            report.push(`${want.key} ${want.path}: ${found.state === "link" ? "a link" : "not a directory"}`);
            refusals.push(`${want.key}: ${want.path} is ${found.state === "link" ? "a link (or reached through one)" : "not a directory"} on this host; it is never followed or replaced: make it a plain directory, or choose another path.`);
            continue;
        }
        if (found.owner !== "root" && found.owner !== user) {
            report.push(`${want.key} ${want.path} ${ownership(found)}: owned by another user`);
            refusals.push(`${want.key}: ${want.path} is owned by ${found.owner}, neither root nor the service user ${user}; a directory of another owner is never re-owned: chown it to ${user} or root yourself, or choose another path.`);
            continue;
        }
        const same = found.owner === want.owner && found.group === want.group && found.mode === want.mode;
        report.push(`${want.key} ${want.path} ${ownership(found)}${same ? ": kept" : ` → ${ownership(want)}`}`);
        takeDirs.push(want.path);
    }
    for (const link of input.releases?.links ?? []) {
        const found = dirAt.get(link.path);
        const target = `${input.releases!.dir}/current/${link.key === "paths.venv" ? "venv" : "app"}`;
        if (found === undefined || found.state === "absent") {
            report.push(`${link.key} ${link.path}: created as a root-owned link to ${target}`);
        } else if (found.state === "link") {
            report.push(`${link.key} ${link.path}: a link, replaced by a root-owned link to ${target} (what it pointed to is left alone)`);
        } else {
            const name = link.path.slice(link.path.lastIndexOf("/") + 1);
            const was = found.state === "present" ? `a directory, ${ownership(found)}` : "not a directory";
            report.push(
                `${link.key} ${link.path} (${was}): the first activation moves it to ${input.releases!.dir}/before-releases-${name}-<time> (put back if that activation fails; kept by destroy, even with purgeOnDestroy) and replaces it with a root-owned link to ${target}`,
            );
        }
    }

    // The .env.
    const env = survey.envFile;
    let takeEnv: AdoptionTake["envFile"];
    if (env.state === "absent") {
        report.push(`.env ${env.path}: absent; the config's .env is written`);
    } else if (env.state === "present" && env.sha256 !== undefined) {
        report.push(`.env ${env.path} (${ownership(env)}, sha256 ${env.sha256.slice(0, 12)}): backed up; the service then reads ${envStorePath(svc)} (root:${group} 0640), written from the config and the values kept`);
        for (const key of env.keys ?? []) {
            if (input.secretEnvKeys.includes(key)) report.push(`  ${key}: replaced by secretEnv.${key}`);
            else if (Object.prototype.hasOwnProperty.call(input.env, key)) report.push(`  ${key}: set by env (the config's value replaces the host's)`);
            else report.push(`  ${key}: kept as a secret`);
        }
        if (env.owner !== "root" && env.owner !== user) {
            refusals.push(`paths.envFile: ${env.path} is owned by ${env.owner}, neither root nor the service user ${user}; its values are not taken from a file another user controls: chown it yourself, or remove it and set the values in secretEnv.`);
        }
        takeEnv = { path: env.path, sha256: env.sha256 };
    } else {
        const what = env.state === "refused" ? `not read: ${env.why ?? "refused by the file helper"}` : env.state === "link" ? "a link (or reached through one)" : "not a regular file";
        report.push(`.env ${env.path}: ${what}`);
        refusals.push(`paths.envFile: ${env.path} is ${what}; a .env is only taken over from a plain file owned by root or ${user}, reached without links: fix it by hand, or remove it and set the values in secretEnv.`);
    }

    // The port.
    if (!input.socketActivation) report.push(`port ${input.port} stays bound by the service`);
    else if (survey.handover.available) report.push(`port ${input.port} moves to ${svc}.socket without a refused connection`);
    else report.push(`port ${input.port} moves to ${svc}.socket with one short gap (${survey.handover.why ?? "no handover on this host"})`);
    report.push(`a backup of the unit, drop-ins and .env is kept in ${adoptionBackupDir(svc, "<time>")}/ (root only; destroy keeps it)`);

    const take: AdoptionTake = {
        ...(unit.state === "hand-made" ? { unit: { path: unit.path, sha256: unit.sha256 } } : {}),
        dropIns: takeDropIns,
        ...(takeEnv ? { envFile: takeEnv } : {}),
        ...(survey.user ? { user } : {}),
        ...(survey.group ? { group } : {}),
        dirs: takeDirs,
    };
    return { state: "adopt", report, refusals, take };
}
