/**
 * Redaction on the host of output that reaches messages (and so CI logs): a
 * service's journal can show the secrets of its `.env` (a traceback printing
 * its settings), an installer's log the credentials of an index URL. The
 * values are read on the host, by root, and never travel anywhere.
 */
import { ENV_FILE_PARSER_PY } from "./env-parse";
import { quoteScript } from "./shell";

/** The longest output line kept (longer ones are cut, after redaction). */
export const REDACTED_LINE_MAX = 300;

/** Values shorter than this are not redacted: they would match too much to be worth hiding. */
export const REDACT_MIN_LENGTH = 4;

/** Python regex replacing the `user:password@` of a URL by `[redacted]@`. */
const URL_USERINFO_PY = "re.compile(r'([A-Za-z][A-Za-z0-9+.-]*://)[^/\\s@]+@')";

/**
 * Python defining `env_secrets(files, keys)`: the values (of at least {@link REDACT_MIN_LENGTH}
 * characters) of each key in the env files (`*`: every key), as `(value, key)` pairs, longest
 * first, so a value inside a longer one is masked after it. Env files are parsed as systemd's
 * `EnvironmentFile=` does; a missing or unreadable one is skipped, a link is never followed.
 * `mask(text, secrets)` replaces each value in text with `[secret KEY]`.
 */
export const ENV_SECRETS_PY = [
    "import os",
    `MIN_LENGTH = ${REDACT_MIN_LENGTH}`,
    ...ENV_FILE_PARSER_PY.split("\n"),
    "def env_secrets(files, keys):",
    "    secrets = {}",
    "    for path in files:",
    "        try:",
    "            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)",
    "            with os.fdopen(fd, 'rb') as f:",
    "                env = parse_env(f.read().decode('utf-8', 'surrogateescape'))",
    "        except OSError:",
    "            continue",
    "        for k, v in env.items():",
    "            if ('*' in keys or k in keys) and len(v) >= MIN_LENGTH:",
    "                secrets.setdefault(v, k)",
    "    return sorted(secrets.items(), key=lambda kv: -len(kv[0]))",
    "def mask(text, secrets):",
    "    for v, k in secrets:",
    "        text = text.replace(v, '[secret %s]' % k)",
    "    return text",
].join("\n");

/**
 * Python filter, stdin to stdout: `ENVFILE… -- KEY…` replaces every
 * occurrence of the value (of at least {@link REDACT_MIN_LENGTH} characters)
 * of each KEY in the env files (`*`: every key) with `[secret KEY]`, the
 * userinfo of every URL with `[redacted]`, and cuts lines to
 * {@link REDACTED_LINE_MAX} characters. Env files are parsed as systemd's
 * `EnvironmentFile=` does (quotes, backslash escapes, continuation lines);
 * a missing or unreadable one is skipped, a link is never followed.
 */
export const REDACT_PY = [
    "import os, re, sys",
    `LINE_MAX = ${REDACTED_LINE_MAX}`,
    `USERINFO = ${URL_USERINFO_PY}`,
    ...ENV_SECRETS_PY.split("\n"),
    "sep = sys.argv.index('--') if '--' in sys.argv else len(sys.argv)",
    "ordered = env_secrets(sys.argv[1:sep], sys.argv[sep + 1:])",
    "for raw in sys.stdin.buffer:",
    "    line = raw.decode('utf-8', 'surrogateescape').rstrip('\\n')",
    "    line = mask(line, ordered)",
    "    line = USERINFO.sub(r'\\1[redacted]@', line)",
    "    if len(line) > LINE_MAX:",
    "        line = line[:LINE_MAX] + ' [line cut]'",
    "    sys.stdout.buffer.write((line + '\\n').encode('utf-8', 'surrogateescape'))",
].join("\n");

/**
 * Shell lines defining `redact_output ENVFILE… -- KEY…`, a filter (see
 * {@link REDACT_PY}). When python3 fails, nothing unredacted is printed after
 * the failure: the filter prints a notice instead.
 */
export function redactFunction(): string[] {
    return [`redact_output() { python3 -c ${quoteScript(REDACT_PY)} "$@" || echo '(the rest of this output could not be redacted and is not shown)'; }`];
}
