/**
 * Escaping for values written into unit files, following systemd.syntax(7)
 * and systemd.service(5): `%` starts a specifier, `$` starts a variable in
 * command lines, and nothing may contain a newline or a control character.
 */

import { CONTROL_CHARS, ENV_NAME } from "../model";

/** Throws when `value` has a newline or another control character; `what` names the value in the message. */
export function assertNoControlCharacters(value: string, what: string): void {
    if (CONTROL_CHARS.test(value)) {
        throw new Error(`${what} must not contain newlines or control characters (got ${JSON.stringify(value)})`);
    }
}

/** Doubles every `%` so systemd does not read it as a specifier. */
export function escapeSpecifiers(value: string): string {
    return value.replace(/%/g, "%%");
}

/** A word that needs no quoting in a command line. */
const PLAIN_WORD = /^[A-Za-z0-9_@+=:,./-]+$/;

/**
 * Renders one argument of an `ExecStart=` command line: `%` and `$` are
 * doubled so they reach the program literally, and an argument with spaces,
 * quotes or backslashes is double-quoted with C-style escapes.
 */
export function quoteExecArgument(arg: string): string {
    assertNoControlCharacters(arg, "a command-line argument");
    if (arg.length > 0 && PLAIN_WORD.test(arg)) {
        return arg;
    }
    const escaped = arg
        .replace(/\\/g, "\\\\")
        .replace(/"/g, '\\"')
        .replace(/%/g, "%%")
        .replace(/\$/g, "$$$$");
    return `"${escaped}"`;
}

/** Renders a whole command line (program and arguments). */
export function renderCommandLine(argv: readonly string[]): string {
    if (argv.length === 0) {
        throw new Error("a command line needs at least the program");
    }
    const [program] = argv;
    if (!program!.startsWith("/")) {
        throw new Error(`the program of a command line must be an absolute path (got ${JSON.stringify(program)})`);
    }
    return argv.map(quoteExecArgument).join(" ");
}

/** Renders the value of an `Environment=` directive: `"NAME=value"` with quotes, backslashes and `%` escaped. */
export function renderEnvironmentAssignment(name: string, value: string): string {
    if (!ENV_NAME.test(name)) {
        throw new Error(`environment variable name ${JSON.stringify(name)} is not a valid name`);
    }
    assertNoControlCharacters(value, `environment variable ${name}`);
    const escaped = value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/%/g, "%%");
    return `"${name}=${escaped}"`;
}

/** Renders a space-separated list of absolute paths (e.g. `ReadWritePaths=`); paths with whitespace are refused. */
export function renderPathList(paths: readonly string[]): string {
    return paths.map((p) => renderPath(p)).join(" ");
}

/** Renders one absolute path value, with `%` escaped. */
export function renderPath(path: string): string {
    assertNoControlCharacters(path, "a path");
    if (!path.startsWith("/") || /\s/.test(path)) {
        throw new Error(`path ${JSON.stringify(path)} must be absolute and contain no whitespace`);
    }
    return escapeSpecifiers(path);
}
