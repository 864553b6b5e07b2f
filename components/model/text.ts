/** Text rules shared by every layer that renders or quotes values. */

/** Any control character, newline and tab included: never allowed in a one-line value. */
export const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/** Control characters other than tab: never allowed in a shell word. */
export const CONTROL_CHARS_EXCEPT_TAB = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** Control characters other than tab and newline: never allowed in a script. */
export const CONTROL_CHARS_EXCEPT_TAB_NEWLINE = /[\u0000-\u0008\u000b-\u001f\u007f]/;

/**
 * The characters of an environment variable name, as a regular-expression
 * fragment (valid in JavaScript and Python): a letter or `_`, then letters,
 * digits and `_`. Every layer that checks or finds a name builds on it.
 */
export const ENV_NAME_SOURCE = "[A-Za-z_][A-Za-z0-9_]*";

/** A whole environment variable name. */
export const ENV_NAME = new RegExp(`^${ENV_NAME_SOURCE}$`);

/** The start of a `NAME=value` line; group 1 is the name. */
export const ENV_ASSIGNMENT = new RegExp(`^(${ENV_NAME_SOURCE})=`);
