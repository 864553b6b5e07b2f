/** How the operator command prints what hosts report: pure functions of the data. */
import { DoctorCheck, HostStatus, JournalRecord, RestartReport } from "../host";

/** A host's answer, or why there is none (unreachable, refused, failed). */
export type HostOutcome<T> = { readonly host: string; readonly ok: true; readonly value: T } | { readonly host: string; readonly ok: false; readonly error: string };

/** `2h 03m`, `4m 10s`, `12s`. */
export function duration(seconds: number): string {
    const s = Math.floor(seconds);
    if (s >= 86400) return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
    if (s >= 3600) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
    if (s >= 60) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
    return `${s}s`;
}

/** `48.2 MiB`. */
export function bytes(n: number): string {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = n;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
        v /= 1024;
        i++;
    }
    return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** Whether a host's service is as it should be: active, not failed, healthy, its own listener. */
export function statusHealthy(s: HostStatus): boolean {
    return s.active === "active" && !s.failed && s.healthy && s.listener.state === "unit";
}

function table(rows: readonly (readonly string[])[]): string[] {
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
    return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join("  ").trimEnd());
}

/** The fleet's summary line: `2 hosts: 1 healthy, 1 unhealthy, 0 unreachable`. */
export function statusSummary(outcomes: readonly HostOutcome<HostStatus>[]): string {
    const healthy = outcomes.filter((o) => o.ok && statusHealthy(o.value)).length;
    const unreachable = outcomes.filter((o) => !o.ok).length;
    const unhealthy = outcomes.length - healthy - unreachable;
    return `${outcomes.length} host${outcomes.length === 1 ? "" : "s"}: ${healthy} healthy, ${unhealthy} unhealthy, ${unreachable} unreachable`;
}

/** The status table, one row per host, then the summary line. */
export function formatStatus(unitName: string, outcomes: readonly HostOutcome<HostStatus>[]): string {
    const rows: string[][] = [["HOST", "STATE", "ENABLED", "PID", "UPTIME", "RESTARTS", "MEMORY", "CPU", "RELEASE", "LAST DEPLOY", "HEALTH"]];
    const notes: string[] = [];
    for (const o of outcomes) {
        if (!o.ok) {
            rows.push([o.host, "unreachable", "-", "-", "-", "-", "-", "-", "-", "-", "-"]);
            notes.push(`${o.host}: ${o.error.split("\n")[0]}`);
            continue;
        }
        const s = o.value;
        const health = s.healthy ? (s.listener.state === "other" ? "answers, NOT the unit's" : "healthy") : "no answer";
        if (s.listener.state === "other") notes.push(`${o.host}: ${s.listener.detail}`);
        const last = s.lastActivation ? `${s.lastActivation.time} (${s.lastActivation.outcome})` : "-";
        rows.push([
            o.host,
            s.failed ? "failed" : `${s.active}/${s.sub}`,
            s.enabled,
            s.mainPid > 0 ? String(s.mainPid) : "-",
            s.uptimeSec !== null ? duration(s.uptimeSec) : "-",
            String(s.restarts),
            s.memoryBytes !== null ? bytes(s.memoryBytes) : "-",
            s.cpuSec !== null ? `${s.cpuSec.toFixed(1)}s` : "-",
            s.release ?? "-",
            last,
            health,
        ]);
    }
    return [unitName, ...table(rows), ...notes, statusSummary(outcomes)].join("\n") + "\n";
}

/** `2026-12-06T21:54:12.123456Z` from microseconds since the epoch. */
export function journalTime(realtimeUsec: number): string {
    const iso = new Date(Math.floor(realtimeUsec / 1000)).toISOString();
    return `${iso.slice(0, 19)}.${String(realtimeUsec % 1_000_000).padStart(6, "0")}Z`;
}

/** One journal line: `HOST TIME IDENTIFIER[PID]: MESSAGE` (journalctl's short-precise, host first, UTC), or its JSON object. */
export function formatJournalRecord(host: string, r: JournalRecord, json: boolean): string {
    if (json) return JSON.stringify({ host, time: journalTime(r.realtimeUsec), ...r });
    return `${host} ${journalTime(r.realtimeUsec)} ${r.identifier}${r.pid !== null ? `[${r.pid}]` : ""}: ${r.message}`;
}

/** Every host's records in one timeline (oldest first; a host's own order kept for equal times). */
export function mergeJournals(perHost: readonly { readonly host: string; readonly records: readonly JournalRecord[] }[]): { host: string; record: JournalRecord }[] {
    const all = perHost.flatMap((h) => h.records.map((record, i) => ({ host: h.host, record, i })));
    all.sort((a, b) => a.record.realtimeUsec - b.record.realtimeUsec || a.host.localeCompare(b.host) || a.i - b.i);
    return all.map(({ host, record }) => ({ host, record }));
}

/** A host's restart result in one line. */
export function formatRestart(host: string, r: RestartReport): string {
    const times = r.seconds.map((s) => `${s.toFixed(1)} s`);
    const head = r.seconds.length === 1 ? `${host}: restarted, healthy after ${times[0]}` : `${host}: ${r.seconds.length} restarts, healthy after each (${times.join(", ")})`;
    const warnings = r.warnings.length === 0 ? "no warnings from the notes' list in the journal" : `journal warnings: ${r.warnings.map((w) => `"${w.pattern}" ×${w.count} (e.g. ${w.example})`).join("; ")}`;
    return `${head}; ${warnings}`;
}

/** A host's doctor report: the verdict, then one line per check. */
export function formatDoctor(host: string, checks: readonly DoctorCheck[], verdict: string): string {
    const width = Math.max(...checks.map((c) => c.check.length));
    return [`${host}: ${verdict}`, ...checks.map((c) => `  ${c.ok ? "ok  " : "FAIL"}  ${c.check.padEnd(width)}  ${c.detail}`)].join("\n") + "\n";
}
