/**
 * The answer of the safe file helper's `env-read` (see `envReadScript`): a
 * host's `.env` as the service gets it. The values are secrets, so nothing
 * here ever puts the answer's text, or any part of it, in an error.
 */

/** A `.env` the helper found and read: who owns it, its mode, its digest and every assignment. */
export interface EnvFilePresent {
    readonly state: "present";
    /** The owner's user name (its number when it has none). */
    readonly owner: string;
    /** The group's name (its number when it has none). */
    readonly group: string;
    /** Four octal digits, e.g. `0640`. */
    readonly mode: string;
    /** The hex SHA-256 of the file's bytes. */
    readonly sha256: string;
    /** Every assignment, as systemd's `EnvironmentFile=` reads it. Secret. */
    readonly values: Readonly<Record<string, string>>;
}

/** No `.env` at the path (nor, possibly, a directory on the way). */
export interface EnvFileAbsent {
    readonly state: "absent";
}

/** What `env-read` found at a path. */
export type EnvRead = EnvFilePresent | EnvFileAbsent;

/** A control character other than tab (the helper refuses values holding one). */
const CONTROL_BUT_TAB = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** An error about the answer's shape, never quoting it. */
function malformed(why: string): Error {
    return new Error(`the host's .env read gave a malformed answer: ${why}`);
}

/** True for a JSON object (not null, not an array). */
function isPlainObject(v: unknown): v is Record<string, unknown> {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Throws unless `obj` has exactly the keys `keys`. */
function exactKeys(obj: Record<string, unknown>, keys: readonly string[]): void {
    const own = Object.keys(obj);
    if (own.length !== keys.length || !keys.every((k) => Object.hasOwn(obj, k))) {
        throw malformed(`expected the fields ${keys.join(", ")}`);
    }
}

/** The string field `key` of `obj` matching `shape`, or an error naming the field (never its content). */
function field(obj: Record<string, unknown>, key: string, shape: RegExp): string {
    const v = obj[key];
    if (typeof v !== "string" || !shape.test(v)) throw malformed(`${key} is not what the helper writes`);
    return v;
}

/**
 * Reads the stdout of `envReadScript`: exactly one JSON line (a final newline
 * allowed) of the shape {@link EnvRead}. Throws an Error that never contains
 * the output's text (it holds secrets) when the output is anything else.
 */
export function parseEnvRead(stdout: string): EnvRead {
    const line = stdout.endsWith("\n") ? stdout.slice(0, -1) : stdout;
    if (line.includes("\n")) throw malformed("more than one line");
    let parsed: unknown;
    try {
        parsed = JSON.parse(line);
    } catch {
        // JSON.parse's own message quotes the input: never passed on.
        throw malformed("not JSON");
    }
    if (!isPlainObject(parsed)) throw malformed("not a JSON object");
    if (parsed.state === "absent") {
        exactKeys(parsed, ["state"]);
        return { state: "absent" };
    }
    if (parsed.state !== "present") throw malformed("state is neither present nor absent");
    exactKeys(parsed, ["state", "owner", "group", "mode", "sha256", "values"]);
    const raw = parsed.values;
    if (!isPlainObject(raw)) throw malformed("values is not an object");
    const entries = Object.entries(raw);
    for (const [name, value] of entries) {
        if (name === "" || CONTROL_BUT_TAB.test(name)) throw malformed("a name is empty or has a control character");
        if (typeof value !== "string") throw malformed("a value is not a string");
        if (CONTROL_BUT_TAB.test(value)) throw malformed("a value has a control character other than tab");
    }
    return {
        state: "present",
        owner: field(parsed, "owner", /^[^\s:]+$/),
        group: field(parsed, "group", /^[^\s:]+$/),
        mode: field(parsed, "mode", /^[0-7]{4}$/),
        sha256: field(parsed, "sha256", /^[0-9a-f]{64}$/),
        // fromEntries defines each name as an own property, `__proto__` included.
        values: Object.fromEntries(entries as [string, string][]),
    };
}
