/**
 * The N-host part of the benchmark (`scripts/bench.sh --hosts 1,10,50,100`):
 * how the program's cost grows with the number of hosts in one stack.
 *
 * For each N, and for each checkout compared (this one, and with `--before DIR`
 * an older built checkout, run in the same session so both see the same
 * machine):
 *   - a first `preview` of a new stack of N fake hosts (TEST-NET-3 addresses
 *     that are never reached: a preview of a fresh stack opens no connection);
 *   - where N is small enough for real hosts (`--real-max`, default 10): N
 *     container hosts (tools/vm/ct.sh) brought up fresh, then a no-op `preview`,
 *     a no-op `up --expect-no-changes` and a rolling change (one override,
 *     `rollout.maxUnavailable: 2`), with the SSH sessions each host saw.
 * Every CLI run reports wall time, CPU time (user + system of the CLI, the
 * program and every plugin) and the largest process's peak memory
 * (tools/rusage.py).
 */
import * as crypto from "crypto";
import { CliResult, TestStack } from "./stack";
import { VmInfo, hostCounters, startContainer, stopContainer, vmPrivateKey } from "./vm";

/** Container hosts running now (for the benchmark's signal handler: stop them by name). */
export const liveContainers = new Set<string>();

/** What to measure. */
export interface HostsBenchOptions {
    /** Host counts, e.g. [1, 10, 50, 100]. */
    readonly counts: readonly number[];
    /** Real (container) hosts are used for counts up to this. */
    readonly realMax: number;
    /** Checkouts to compare: label → directory (built). */
    readonly trees: readonly { readonly label: string; readonly repo: string }[];
    /** Progress lines. */
    readonly log: (message: string) => void;
}

/** One CLI run's figures. */
export interface Measured {
    readonly seconds: number;
    readonly cpuSeconds?: number;
    readonly peakMiB?: number;
    readonly exitCode: number;
}

/** The figures of one checkout for one host count. */
export interface HostsBenchRow {
    readonly tree: string;
    readonly hosts: number;
    /** Resources the first preview plans to create. */
    readonly resources?: number;
    readonly firstPreview: Measured;
    readonly real?: {
        readonly freshUp: Measured;
        readonly noopPreview: Measured;
        readonly noopUp: Measured;
        /** SSH sessions the no-op `up` opened, summed over the hosts. */
        readonly noopUpSessions: number;
        readonly rollingChange: Measured;
        /** SSH sessions each host saw during the rolling change (host order). */
        readonly rollingSessions: readonly number[];
    };
    readonly error?: string;
}

/** A fake host: never reached, each with its own (made-up) host key. */
function fakeHost(i: number) {
    // An ed25519 public key blob: string "ssh-ed25519", then 32 key bytes.
    const blob = Buffer.concat([Buffer.from("0000000b7373682d6564323535313900000020", "hex"), crypto.createHash("sha256").update(`fake-host-${i}`).digest()]);
    return { name: `h${i + 1}`, address: `203.0.113.${(i % 250) + 1}`, port: 22 + Math.floor(i / 250), user: "ubuntu", hostKey: `ssh-ed25519 ${blob.toString("base64")}` };
}

const FAKE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

function measured(r: CliResult): Measured {
    return { seconds: r.seconds, exitCode: r.code, ...(r.usage ? { cpuSeconds: r.usage.cpuSeconds, peakMiB: r.usage.peakMiB } : {}) };
}

function mustPass(what: string, r: CliResult): void {
    if (r.code !== 0) throw new Error(`${what} exited ${r.code}:\n${(r.stdout + r.stderr).split("\n").slice(-25).join("\n")}`);
}

async function firstPreview(repo: string, n: number): Promise<{ m: Measured; resources?: number }> {
    const stack = await TestStack.create("benchn", repo);
    try {
        await stack.setConfig({ hosts: Array.from({ length: n }, (_, i) => fakeHost(i)), app: { sourceDir: "demo-app" } });
        await stack.setSecret("sshPrivateKey", FAKE_KEY);
        const r = await stack.run(["preview"], { measure: true });
        mustPass(`preview of ${n} fake hosts`, r);
        const created = /\+ (\d+) to create/.exec(r.stdout);
        return { m: measured(r), ...(created ? { resources: Number(created[1]) } : {}) };
    } finally {
        stack.cleanup();
    }
}

async function realHosts(repo: string, label: string, n: number, log: (m: string) => void): Promise<NonNullable<HostsBenchRow["real"]>> {
    const tag = label.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 24);
    const names = Array.from({ length: n }, (_, i) => `bench-${process.pid}-${tag}-${n}-${i + 1}`);
    let hosts: VmInfo[] = [];
    const stack = await TestStack.create("benchr", repo);
    try {
        for (const name of names) liveContainers.add(name);
        hosts = await Promise.all(names.map((name) => startContainer(name)));
        await stack.setConfig({
            hosts: hosts.map((h, i) => ({ name: `c${i + 1}`, address: h.host, port: h.port, user: h.user, hostKey: h.hostKey })),
            app: { sourceDir: "demo-app" },
            rollout: { maxUnavailable: 2 },
        });
        await stack.setSecret("sshPrivateKey", vmPrivateKey(hosts[0]!));
        log(`${label}, ${n} real hosts: fresh up`);
        const fresh = await stack.run(["up", "--yes", "--skip-preview"], { measure: true });
        mustPass(`fresh up of ${n} hosts`, fresh);
        const noopPreview = await stack.run(["preview", "--expect-no-changes"], { measure: true });
        mustPass("no-op preview", noopPreview);
        const before = hosts.map((h) => hostCounters(h).sessions);
        const noopUp = await stack.run(["up", "--yes", "--skip-preview", "--expect-no-changes"], { measure: true });
        mustPass("no-op up", noopUp);
        const afterNoop = hosts.map((h) => hostCounters(h).sessions);
        await stack.setConfig({ overrides: { workers: { workers: 2 } } });
        log(`${label}, ${n} real hosts: rolling change`);
        const rolling = await stack.run(["up", "--yes", "--skip-preview"], { measure: true });
        mustPass("rolling change", rolling);
        const afterRolling = hosts.map((h) => hostCounters(h).sessions);
        return {
            freshUp: measured(fresh),
            noopPreview: measured(noopPreview),
            noopUp: measured(noopUp),
            // Each reading is one session of its own: subtract it.
            noopUpSessions: afterNoop.reduce((sum, s, i) => sum + s - before[i]! - 1, 0),
            rollingChange: measured(rolling),
            rollingSessions: afterRolling.map((s, i) => s - afterNoop[i]! - 1),
        };
    } finally {
        await Promise.all(names.map((h) => stopContainer(h)));
        for (const name of names) liveContainers.delete(name);
        stack.cleanup();
    }
}

/** Runs the N-host benchmark; a failure is recorded in its row and the rest goes on. */
export async function hostsBenchmark(opts: HostsBenchOptions): Promise<HostsBenchRow[]> {
    const rows: HostsBenchRow[] = [];
    for (const n of opts.counts) {
        for (const { label, repo } of opts.trees) {
            opts.log(`${label}, ${n} fake hosts: first preview`);
            try {
                const p = await firstPreview(repo, n);
                const real = n <= opts.realMax ? await realHosts(repo, label, n, opts.log) : undefined;
                rows.push({ tree: label, hosts: n, ...(p.resources !== undefined ? { resources: p.resources } : {}), firstPreview: p.m, ...(real ? { real } : {}) });
            } catch (e) {
                const error = e instanceof Error ? e.message : String(e);
                opts.log(`${label}, ${n} hosts FAILED: ${error.split("\n")[0]}`);
                rows.push({ tree: label, hosts: n, firstPreview: { seconds: NaN, exitCode: 1 }, error });
            }
        }
    }
    return rows;
}

function cell(m: Measured | undefined): string {
    if (!m || !Number.isFinite(m.seconds)) return "—";
    const usage = m.cpuSeconds !== undefined ? ` (${m.cpuSeconds.toFixed(1)} CPU, ${Math.round(m.peakMiB!)} MiB)` : "";
    return `${m.seconds.toFixed(1)}${usage}${m.exitCode ? ` exit ${m.exitCode}` : ""}`;
}

/** The report: one markdown table, one row per checkout and host count. */
export function hostsReport(rows: readonly HostsBenchRow[], realMax: number): string {
    const out: string[] = [];
    out.push("Hosts: one stack with N hosts; seconds wall (CPU seconds of the CLI, program and plugins; peak MiB of the largest process)");
    out.push(`  first preview: N fake hosts, nothing reached. Real hosts (containers, tools/vm/ct.sh) for N ≤ ${realMax}: fresh up, no-op preview,`);
    out.push("  no-op up (--expect-no-changes), and a rolling change of one override with rollout.maxUnavailable 2; SSH sessions counted on each host.");
    out.push("");
    out.push("| revision | hosts | resources | first preview | no-op preview | no-op up | rolling change | SSH sessions per host (no-op up / rolling change) |");
    out.push("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (const r of rows) {
        const real = r.real;
        const sessions = real ? `${real.noopUpSessions} / ${[...new Set(real.rollingSessions)].join(", ")}` : "—";
        out.push(`| ${r.tree} | ${r.hosts} | ${r.resources ?? "—"} | ${cell(r.firstPreview)} | ${cell(real?.noopPreview)} | ${cell(real?.noopUp)} | ${cell(real?.rollingChange)} | ${sessions} |`);
    }
    const fresh = rows.filter((r) => r.real).map((r) => `${r.tree} ${r.hosts} host(s): fresh up ${cell(r.real!.freshUp)}`);
    if (fresh.length) out.push("", `  fresh up on real hosts: ${fresh.join("; ")}`);
    for (const r of rows.filter((x) => x.error)) out.push(`  FAILED ${r.tree}, ${r.hosts} hosts: ${r.error!.split("\n")[0]}`);
    return out.join("\n") + "\n";
}
