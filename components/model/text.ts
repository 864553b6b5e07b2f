/** Text rules shared by every layer that renders or quotes values. */

/** Any control character, newline and tab included: never allowed in a one-line value. */
export const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/** Control characters other than tab: never allowed in a shell word. */
export const CONTROL_CHARS_EXCEPT_TAB = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** Control characters other than tab and newline: never allowed in a script. */
export const CONTROL_CHARS_EXCEPT_TAB_NEWLINE = /[\u0000-\u0008\u000b-\u001f\u007f]/;
