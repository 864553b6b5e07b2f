/**
 * Renders the `.env` read by `EnvironmentFile=`, following systemd's
 * env-file parser: a value that is not a plain word is double-quoted with
 * `\` before `"`, `\`, `` ` `` and `$`, so it reaches the service byte for byte.
 */
import { CONTROL_CHARS, ENV_NAME, MANAGED_MARKER } from "../model";

const PLAIN_VALUE = /^[A-Za-z0-9_@%+=:,./-]*$/;

/** Renders one `NAME=value` line. Refuses invalid names and values with newlines or control characters, without echoing the value. */
export function renderEnvLine(name: string, value: string): string {
    if (!ENV_NAME.test(name)) {
        throw new Error(`.env key ${JSON.stringify(name)} is not a valid environment variable name`);
    }
    if (CONTROL_CHARS.test(value)) {
        throw new Error(`.env value of ${name} must not contain newlines or control characters`);
    }
    if (PLAIN_VALUE.test(value)) {
        return `${name}=${value}`;
    }
    return `${name}="${value.replace(/[\\"`$]/g, (c) => `\\${c}`)}"`;
}

/** Renders the whole file: the managed marker, then one line per entry, sorted by name for a stable diff. */
export function renderEnvFile(entries: Readonly<Record<string, string>>): string {
    const names = Object.keys(entries).sort();
    return [`# ${MANAGED_MARKER}`, ...names.map((n) => renderEnvLine(n, entries[n]!))].join("\n") + "\n";
}
