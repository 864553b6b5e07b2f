/**
 * The one quoting function for shell text sent to a host. Every value that is
 * interpolated into a generated script goes through {@link shellQuote}.
 */

import { CONTROL_CHARS_EXCEPT_TAB, CONTROL_CHARS_EXCEPT_TAB_NEWLINE } from "../model";

/**
 * Quotes `value` as a single POSIX shell word: wrapped in single quotes, with
 * each embedded single quote written as `'\''`. Refuses NUL, newlines and
 * other control characters (a tab is allowed), which have no business in a
 * path, a unit name or a user name.
 */
export function shellQuote(value: string): string {
    if (CONTROL_CHARS_EXCEPT_TAB.test(value)) {
        throw new Error(`refusing to quote a value with a control character or newline: ${JSON.stringify(value)}`);
    }
    return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * Quotes a whole generated script as one shell word for `bash -c`. Unlike
 * {@link shellQuote} it keeps newlines and tabs (a script has lines), and
 * still refuses NUL and the other control characters.
 */
export function quoteScript(script: string): string {
    if (CONTROL_CHARS_EXCEPT_TAB_NEWLINE.test(script)) {
        throw new Error("refusing to send a script with control characters other than newline and tab");
    }
    return `'${script.replace(/'/g, `'\\''`)}'`;
}

/** Quotes each value and joins them with spaces, for a command's argument list. */
export function shellWords(values: readonly string[]): string {
    return values.map(shellQuote).join(" ");
}
