#!/usr/bin/env node
/**
 * `amarktai-ops`: the service notes' day-to-day operation (status, logs,
 * restarts, troubleshooting) on every host of a stack at once, over the
 * stack's own SSH key and pinned host keys. Read-only but for `restart`.
 * A host that cannot be reached is reported and the others go on.
 */
import * as fs from "fs";
import {
    DoctorCheck,
    HostStatus,
    JournalRecord,
    RestartReport,
    doctorScript,
    doctorVerdict,
    journalScript,
    parseDoctorOutput,
    restartScript,
    statusScript,
} from "../host";
import { closeAllConnections, runAsRoot, setProgressReporter, streamAsRoot } from "../transport";
import { HelpRequested, OperatorArgs, UsageError, parseOperatorArgs } from "./args";
import { HostOutcome, formatDoctor, formatJournalRecord, formatRestart, formatStatus, mergeJournals, statusHealthy } from "./format";
import { OperatedHost, OperatedStack, StackReadError, readOperatedStack } from "./stack";

/** Runs `work` on every host at once; a host's failure is its outcome, never the others'. */
async function onEachHost<T>(hosts: readonly OperatedHost[], work: (h: OperatedHost) => Promise<T>): Promise<HostOutcome<T>[]> {
    return Promise.all(
        hosts.map(async (h): Promise<HostOutcome<T>> => {
            try {
                return { host: h.name, ok: true, value: await work(h) };
            } catch (e) {
                return { host: h.name, ok: false, error: (e as Error).message };
            }
        }),
    );
}

/** The last line of stdout: a script's JSON result (lines before it are its log). */
function lastLine(stdout: string): string {
    return stdout.trimEnd().split("\n").at(-1) ?? "";
}

async function status(stack: OperatedStack, args: OperatorArgs, out: (text: string) => void): Promise<number> {
    const outcomes = await onEachHost(stack.hosts, async (h) => JSON.parse(lastLine((await runAsRoot(h.connection, statusScript(stack.service), { what: "status", timeoutSec: 120 })).stdout)) as HostStatus);
    if (args.json) {
        out(JSON.stringify({ unit: stack.service.unitName, hosts: outcomes.map((o) => (o.ok ? { host: o.host, ok: statusHealthy(o.value), ...o.value } : { host: o.host, error: o.error })) }, null, 2) + "\n");
    } else {
        out(formatStatus(stack.service.unitName, outcomes));
    }
    return outcomes.every((o) => o.ok && statusHealthy(o.value)) ? 0 : 1;
}

function parseRecords(stdout: string): JournalRecord[] {
    return stdout
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => JSON.parse(l) as JournalRecord);
}

async function logs(stack: OperatedStack, args: OperatorArgs, out: (text: string) => void, err: (text: string) => void): Promise<number> {
    const query = { ...(args.lines !== undefined ? { lines: args.lines } : {}), ...(args.since !== undefined ? { since: args.since } : {}), ...(args.until !== undefined ? { until: args.until } : {}), follow: args.follow };
    const script = journalScript(stack.service, query);
    let sink = out;
    let file: number | undefined;
    let written = 0;
    if (args.output !== undefined) {
        // The journal of a service is the operator's business only: the export is not readable by others.
        file = fs.openSync(args.output, "w", 0o600);
        const fd = file;
        sink = (text) => fs.writeSync(fd, text);
    }
    const emit = (host: string, r: JournalRecord) => {
        sink(formatJournalRecord(host, r, args.json) + "\n");
        written++;
    };
    let outcomes: HostOutcome<unknown>[];
    try {
        outcomes = args.follow ? await followJournals(stack, script, emit) : await readJournals(stack, script, emit);
    } finally {
        if (file !== undefined) {
            fs.closeSync(file);
            err(`${written} line${written === 1 ? "" : "s"} from ${stack.hosts.length} host${stack.hosts.length === 1 ? "" : "s"} written to ${args.output}\n`);
        }
    }
    for (const o of outcomes) if (!o.ok) err(`${o.host}: ${o.error}\n`);
    return outcomes.every((o) => o.ok) ? 0 : 1;
}

/** Every host's journal lines, emitted in one timeline once all hosts answered. */
async function readJournals(stack: OperatedStack, script: string, emit: (host: string, r: JournalRecord) => void): Promise<HostOutcome<JournalRecord[]>[]> {
    const outcomes = await onEachHost(stack.hosts, async (h) => parseRecords((await runAsRoot(h.connection, script, { what: "reading the journal", timeoutSec: 600 })).stdout));
    for (const { host, record } of mergeJournals(outcomes.flatMap((o) => (o.ok ? [{ host: o.host, records: o.value }] : [])))) emit(host, record);
    return outcomes;
}

/** Every host's new journal lines, emitted as they arrive, until Ctrl-C (a second one exits at once). */
async function followJournals(stack: OperatedStack, script: string, emit: (host: string, r: JournalRecord) => void): Promise<HostOutcome<void>[]> {
    const stop = new AbortController();
    const onSignal = () => {
        if (stop.signal.aborted) process.exit(130);
        stop.abort();
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    try {
        return await onEachHost(stack.hosts, async (h) => {
            const r = await streamAsRoot(h.connection, script, {
                what: "following the journal",
                signal: stop.signal,
                onLine: (line) => {
                    if (line.trim() !== "") emit(h.name, JSON.parse(line) as JournalRecord);
                },
            });
            if (r.code !== 0) throw new Error(`following the journal ended (exit ${r.code}): ${r.stderr.trim()}`);
        });
    } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
    }
}

async function restart(stack: OperatedStack, args: OperatorArgs, out: (text: string) => void, err: (text: string) => void): Promise<number> {
    const count = args.loop ?? 1;
    const script = restartScript(stack.service, count);
    const results: HostOutcome<RestartReport>[] = [];
    let stopped = false;
    for (let i = 0; i < stack.hosts.length; i += stack.batchSize) {
        const batch = stack.hosts.slice(i, i + stack.batchSize);
        if (stopped) {
            for (const h of batch) results.push({ host: h.name, ok: false, error: "not restarted: an earlier batch failed" });
            continue;
        }
        err(`restarting ${batch.map((h) => h.name).join(", ")} (batch ${i / stack.batchSize + 1} of ${Math.ceil(stack.hosts.length / stack.batchSize)})\n`);
        // Each restart may take the unit's stop timeout plus its health timeout.
        const limit = count * (stack.service.healthTimeoutSec + 120) + 60;
        const outcomes = await onEachHost(batch, async (h) => JSON.parse(lastLine((await runAsRoot(h.connection, script, { what: `restarting ${stack.service.unitName}`, timeoutSec: limit, streamLog: true })).stdout)) as RestartReport);
        for (const o of outcomes) {
            results.push(o);
            if (!args.json) out(o.ok ? formatRestart(o.host, o.value) + "\n" : `${o.host}: FAILED: ${o.error}\n`);
        }
        if (outcomes.some((o) => !o.ok)) stopped = true;
    }
    if (args.json) out(JSON.stringify({ unit: stack.service.unitName, hosts: results.map((o) => (o.ok ? { host: o.host, ...o.value } : { host: o.host, error: o.error })) }, null, 2) + "\n");
    else if (stopped) out(`stopped: hosts after the failed batch were not restarted\n`);
    return results.every((o) => o.ok && o.value.warnings.length === 0) ? 0 : 1;
}

async function doctor(stack: OperatedStack, args: OperatorArgs, out: (text: string) => void): Promise<number> {
    const outcomes = await onEachHost(stack.hosts, async (h) => parseDoctorOutput((await runAsRoot(h.connection, doctorScript(stack.service), { what: "doctor", timeoutSec: 300 })).stdout));
    if (args.json) {
        out(JSON.stringify({ unit: stack.service.unitName, hosts: outcomes.map((o) => (o.ok ? { host: o.host, verdict: doctorVerdict(o.value), checks: o.value } : { host: o.host, error: o.error })) }, null, 2) + "\n");
    } else {
        for (const o of outcomes) out(o.ok ? formatDoctor(o.host, o.value, doctorVerdict(o.value)) : `${o.host}: unreachable: ${o.error}\n`);
    }
    return outcomes.every((o) => o.ok && o.value.every((c: DoctorCheck) => c.ok)) ? 0 : 1;
}

/** Runs the command line `argv`; resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
    const out = (text: string) => void process.stdout.write(text);
    const err = (text: string) => void process.stderr.write(text);
    let args: OperatorArgs;
    try {
        args = parseOperatorArgs(argv);
    } catch (e) {
        if (e instanceof HelpRequested) {
            out(e.message);
            return 0;
        }
        if (e instanceof UsageError) {
            err(`${e.message}\n`);
            return 2;
        }
        throw e;
    }
    // What the transport waits for (a host still booting) and each restart as it happens.
    setProgressReporter((message) => err(`  ${message}\n`));
    try {
        const stack = await readOperatedStack(args);
        switch (args.command) {
            case "status":
                return await status(stack, args, out);
            case "logs":
                return await logs(stack, args, out, err);
            case "restart":
                return await restart(stack, args, out, err);
            case "doctor":
                return await doctor(stack, args, out);
        }
    } catch (e) {
        if (e instanceof StackReadError || e instanceof UsageError) {
            err(`error: ${e.message}\n`);
            return 2;
        }
        throw e;
    } finally {
        closeAllConnections();
    }
}

if (require.main === module) {
    main(process.argv.slice(2)).then(
        (code) => process.exit(code),
        (e: unknown) => {
            process.stderr.write(`error: ${(e as Error).stack ?? String(e)}\n`);
            process.exit(1);
        },
    );
}
