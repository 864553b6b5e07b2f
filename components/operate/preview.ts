/**
 * A preview that shows what changes: `pulumi preview --json` read as data
 * (each step's old and new inputs) and printed with only the inputs that
 * differ, each down to the values that differ, text as a line diff. The
 * CLI's `--diff` prints every input of an updated resource (an activation's
 * ~60 unchanged lines around a one-line `.env` change); this prints the
 * change and names what it left out. Secrets stay `[secret]` (the JSON
 * carries no secret value), so a change inside a secret is reported as one.
 */
import { lineDiff } from "../plan";

/** One resource step of `pulumi preview --json` (the fields read here). */
export interface PreviewStep {
    readonly op: string;
    readonly urn: string;
    readonly oldState?: { readonly type?: string; readonly inputs?: Readonly<Record<string, unknown>> } | null;
    readonly newState?: { readonly type?: string; readonly inputs?: Readonly<Record<string, unknown>> } | null;
}

/** What `pulumi preview --json` prints (the fields read here). */
export interface PreviewJson {
    readonly steps?: readonly PreviewStep[];
    readonly changeSummary?: Readonly<Record<string, number>>;
    readonly diagnostics?: readonly { readonly severity?: string; readonly message?: string; readonly urn?: string }[];
}

/** How the JSON shows a secret value. */
const SECRET = "[secret]";

/** Inputs the engine adds that say nothing about the host. */
const HIDDEN_INPUTS = new Set(["__provider"]);

/** The marks of each step kind, as the CLI prints them. */
const OP_MARKS: Readonly<Record<string, string>> = { create: "+", update: "~", delete: "-", replace: "+-", "create-replacement": "++", "delete-replaced": "--", read: ">", refresh: "~", import: "=" };

function isRecord(v: unknown): v is Record<string, unknown> {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A scalar as the CLI shows it: strings quoted, secrets as `[secret]`. */
function scalar(v: unknown): string {
    if (v === SECRET) return SECRET;
    return JSON.stringify(v) ?? "undefined";
}

/** `value` in full, one line per leaf, indented by `pad`. Multi-line strings as their lines. */
function shown(value: unknown, pad: string, mark: string): string[] {
    if (typeof value === "string" && value.includes("\n")) return value.replace(/\n$/, "").split("\n").map((l) => `${pad}${mark} ${l}`);
    if (isRecord(value)) return Object.keys(value).sort().flatMap((k) => labelled(k, value[k], pad, mark));
    // A list of one-line texts (an adoption's report) reads as its lines.
    if (Array.isArray(value) && value.every((v) => typeof v === "string" && v !== SECRET && !v.includes("\n"))) return (value as string[]).map((l) => `${pad}${mark} ${l}`);
    if (Array.isArray(value)) return value.flatMap((v, i) => labelled(`[${i}]`, v, pad, mark));
    return [`${pad}${mark} ${scalar(value)}`];
}

/** `key: value` (a nested value on the lines below). */
function labelled(key: string, value: unknown, pad: string, mark: string): string[] {
    if ((typeof value === "string" && value.includes("\n")) || (isRecord(value) && Object.keys(value).length > 0) || (Array.isArray(value) && value.length > 0)) {
        return [`${pad}${mark} ${key}:`, ...shown(value, `${pad}    `, mark)];
    }
    return [`${pad}${mark} ${key}: ${isRecord(value) ? "{}" : Array.isArray(value) ? "[]" : scalar(value)}`];
}

/** A line diff of two texts (the plan's {@link lineDiff}): changed lines with `-`/`+`, up to two unchanged lines of context around them. */
export function textLineDiff(before: string, after: string): string[] {
    const ops = lineDiff(before.replace(/\n$/, "").split("\n"), after.replace(/\n$/, "").split("\n"));
    const changedAt = (k: number) => ops[k] !== undefined && (ops[k]!.startsWith("- ") || ops[k]!.startsWith("+ "));
    const near = (k: number) => [-2, -1, 0, 1, 2].some((d) => changedAt(k + d));
    const out: string[] = [];
    let skipped = false;
    ops.forEach((line, k) => {
        if (near(k)) {
            if (skipped) out.push("  …");
            skipped = false;
            out.push(line);
        } else skipped = true;
    });
    if (skipped && out.length > 0) out.push("  …");
    return out;
}

/** Same value? (Plain JSON data.) */
function same(a: unknown, b: unknown): boolean {
    return JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));
}

function sorted(v: unknown): unknown {
    if (Array.isArray(v)) return v.map(sorted);
    if (isRecord(v)) return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]));
    return v;
}

/** The lines of what differs between `before` and `after` under `key` (nothing when they are equal). */
function changed(key: string, before: unknown, after: unknown, pad: string): string[] {
    if (same(before, after)) return [];
    if (before === undefined) return labelled(key, after, pad, "+");
    if (after === undefined) return labelled(key, before, pad, "-");
    if (isRecord(before) && isRecord(after)) {
        const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
        return [`${pad}~ ${key}:`, ...keys.flatMap((k) => changed(k, before[k], after[k], `${pad}    `))];
    }
    if (typeof before === "string" && typeof after === "string" && (before.includes("\n") || after.includes("\n"))) {
        return [`${pad}~ ${key}:`, ...textLineDiff(before, after).map((l) => `${pad}    ${l}`)];
    }
    if (Array.isArray(before) && Array.isArray(after) && before.every((v) => typeof v !== "object") && after.every((v) => typeof v !== "object")) {
        const gone = before.filter((v) => !after.some((w) => same(v, w)));
        const added = after.filter((v) => !before.some((w) => same(v, w)));
        if (gone.length + added.length > 0) return [`${pad}~ ${key}:`, ...gone.map((v) => `${pad}    - ${scalar(v)}`), ...added.map((v) => `${pad}    + ${scalar(v)}`)];
    }
    return [`${pad}~ ${key}: ${scalar(before)} => ${scalar(after)}`];
}

/** `<Type> <name>` of a step, the type without Pulumi's dynamic-provider prefix. */
function stepTitle(step: PreviewStep): string {
    const parts = step.urn.split("::");
    const type = (parts[parts.length - 2] ?? "").split("$").pop()!.replace(/^pulumi-nodejs:dynamic\//, "");
    return `${type} ${parts[parts.length - 1]}`;
}

/**
 * The preview as text: one block per step that changes something (creates
 * with their inputs, updates with only what differs, deletes by name), each
 * update ending with the names of the inputs it did not show, then the
 * engine's summary and its warnings and errors.
 */
export function formatPreview(preview: PreviewJson): string {
    const out: string[] = [];
    for (const step of preview.steps ?? []) {
        if (step.op === "same") continue;
        const mark = OP_MARKS[step.op] ?? "?";
        out.push(`${mark} ${stepTitle(step)} (${step.op})`);
        const before = step.oldState?.inputs ?? {};
        const after = step.newState?.inputs ?? {};
        if (step.op === "create" || step.op === "create-replacement") {
            for (const k of Object.keys(after).sort()) if (!HIDDEN_INPUTS.has(k)) out.push(...labelled(k, after[k], "    ", " "));
            continue;
        }
        if (step.op === "delete" || step.op === "delete-replaced") continue;
        const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => !HIDDEN_INPUTS.has(k)).sort();
        const lines: string[] = [];
        const unchanged: string[] = [];
        // Inputs holding a secret cannot be compared here (both sides read `[secret]`): named apart, never called unchanged.
        const secret: string[] = [];
        for (const k of keys) {
            const diff = changed(k, before[k], after[k], "    ");
            if (diff.length > 0) lines.push(...diff);
            else if (JSON.stringify(after[k] ?? null).includes(SECRET)) secret.push(k);
            else unchanged.push(k);
        }
        if (lines.length === 0) out.push(`    (no visible input differs: ${secret.length > 0 ? `a secret may have changed (${secret.join(", ")}), or ` : ""}the host drifted, or the state is older)`);
        out.push(...lines);
        if (secret.length > 0) out.push(`    (secret, not compared: ${secret.join(", ")})`);
        if (unchanged.length > 0) out.push(`    (${unchanged.length} unchanged: ${unchanged.join(", ")})`);
    }
    if (out.length === 0) out.push("no changes");
    const summary = Object.entries(preview.changeSummary ?? {})
        .filter(([op]) => op !== "same")
        .map(([op, n]) => `${n} to ${op}`);
    const sameCount = preview.changeSummary?.["same"] ?? 0;
    out.push("", `Resources: ${[...summary, `${sameCount} unchanged`].join(", ")}`);
    for (const d of preview.diagnostics ?? []) {
        if (d.severity === "error" || d.severity === "warning") out.push(`${d.severity}: ${(d.message ?? "").trim()}`);
    }
    return out.join("\n") + "\n";
}
