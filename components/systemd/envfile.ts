/**
 * Renders the `.env` read by `EnvironmentFile=`, following systemd's
 * env-file parser: a value that is not a plain word is double-quoted with
 * `\` before `"`, `\`, `` ` `` and `$`, so it reaches the service byte for byte.
 */
import { CONTROL_CHARS, ENV_NAME, MANAGED_MARKER } from "../model";

const PLAIN_VALUE = /^[A-Za-z0-9_@%+=:,./-]*$/;

/** Refuses a name that is not a valid environment variable name. */
function checkEnvName(name: string): void {
    if (!ENV_NAME.test(name)) {
        throw new Error(`.env key ${JSON.stringify(name)} is not a valid environment variable name`);
    }
}

/** Renders one `NAME=value` line. Refuses invalid names and values with newlines or control characters, without echoing the value. */
export function renderEnvLine(name: string, value: string): string {
    checkEnvName(name);
    if (CONTROL_CHARS.test(value)) {
        throw new Error(`.env value of ${name} must not contain newlines or control characters`);
    }
    if (PLAIN_VALUE.test(value)) {
        return `${name}=${value}`;
    }
    return `${name}="${value.replace(/[\\"`$]/g, (c) => `\\${c}`)}"`;
}

/** The file's first line, as written: the managed-file marker. */
export const ENV_FILE_HEADER = `# ${MANAGED_MARKER}`;

/**
 * The entry lines, sorted by name for a stable diff: each entry of `entries`
 * exactly as {@link renderEnvLine} writes it, and each name of `placeholders`
 * (which win over `entries`) as `NAME=` followed by its placeholder verbatim,
 * for a reviewer's copy in which a secret stands redacted.
 */
export function renderEnvLines(entries: Readonly<Record<string, string>>, placeholders: Readonly<Record<string, string>> = {}): string[] {
    const names = [...new Set([...Object.keys(entries), ...Object.keys(placeholders)])].sort();
    return names.map((n) => {
        if (!Object.hasOwn(placeholders, n)) return renderEnvLine(n, entries[n]!);
        checkEnvName(n);
        return `${n}=${placeholders[n]}`;
    });
}

/** Renders the whole file: the managed marker, then one line per entry, sorted by name for a stable diff. */
export function renderEnvFile(entries: Readonly<Record<string, string>>): string {
    return renderRedactedEnvFile(entries, {});
}

/**
 * The `.env` as a reviewer sees it: byte for byte what {@link renderEnvFile}
 * writes for the plain `entries`, with each secret's line replaced by
 * `NAME=<placeholder>` (for example `API_KEY=[secret]`).
 */
export function renderRedactedEnvFile(entries: Readonly<Record<string, string>>, placeholders: Readonly<Record<string, string>>): string {
    return [ENV_FILE_HEADER, ...renderEnvLines(entries, placeholders)].join("\n") + "\n";
}
