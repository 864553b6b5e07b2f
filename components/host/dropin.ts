/**
 * Summarising an unmanaged drop-in on its host, so its text (which may hold
 * `Environment=TOKEN=…`) never leaves the host: shared by the read (which
 * reports the summary) and the activation (whose refusal names each file's
 * directives). See `DropInSummary` in the model for what is shown.
 */
import { DROPIN_SHOWN_DIRECTIVES, DROPIN_SHOWN_VALUE_MAX, DROPIN_SHOWN_VALUE_SOURCE } from "../model";
import { quoteScript } from "./shell";

/** Directives that are lists: repeated assignments add up, an empty one resets. */
const LIST_DIRECTIVES = ["After", "Before", "Requires", "Wants", "BindsTo", "PartOf"];

/** The most bytes of a drop-in parsed (the hash covers all of it). */
const PARSE_LIMIT = 65536;

/**
 * Python: `record PATH…` prints `foreign<TAB>PATH<TAB>file<TAB>SHA256<TAB>JSON` per plain file
 * (JSON: `{"sections": …, "unparsedLines": N}`) and `foreign<TAB>PATH<TAB>link` for anything else;
 * `text PATH…` prints `PATH (sha256 HEX): [Section] Name, Name=value` lines for people.
 * It never follows a link and never prints a value outside the allow-list.
 */
export const DROPIN_SUMMARY_PY = [
    "import hashlib, json, os, re, stat, sys",
    `SHOWN = frozenset(${JSON.stringify(DROPIN_SHOWN_DIRECTIVES)})`,
    `LISTS = frozenset(${JSON.stringify(LIST_DIRECTIVES)})`,
    `VALUE = re.compile(${JSON.stringify(DROPIN_SHOWN_VALUE_SOURCE)})`,
    `VALUE_MAX = ${DROPIN_SHOWN_VALUE_MAX}`,
    `LIMIT = ${PARSE_LIMIT}`,
    "NAME = re.compile(r'^[A-Za-z][A-Za-z0-9_-]{0,63}$')",
    "SECTION = re.compile(r'^\\[([A-Za-z][A-Za-z0-9_-]{0,63})\\]$')",
    "def read(path):",
    "    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)",
    "    try:",
    "        if not stat.S_ISREG(os.fstat(fd).st_mode):",
    "            return None",
    "        digest, head = hashlib.sha256(), b''",
    "        while True:",
    "            chunk = os.read(fd, 65536)",
    "            if not chunk:",
    "                return digest.hexdigest(), head",
    "            digest.update(chunk)",
    "            head += chunk[:max(0, LIMIT - len(head))]",
    "    finally:",
    "        os.close(fd)",
    "def logical_lines(text):",
    "    pending = None",
    "    for raw in text.split('\\n'):",
    "        line = raw.strip()",
    "        if pending is not None and line[:1] in ('#', ';'):",
    "            continue",
    "        if line.endswith('\\\\'):",
    "            pending = (pending + ' ' if pending is not None else '') + line[:-1]",
    "            continue",
    "        yield (pending + ' ' + line) if pending is not None else line",
    "        pending = None",
    "    if pending is not None:",
    "        yield pending",
    "def summarise(head):",
    "    sections, unparsed, section = {}, 0, None",
    "    for line in logical_lines(head.decode('utf-8', 'replace')):",
    "        if not line or line[0] in '#;':",
    "            continue",
    "        m = SECTION.match(line)",
    "        if m:",
    "            section = sections.setdefault(m.group(1), {})",
    "            continue",
    "        name, eq, value = line.partition('=')",
    "        name, value = name.strip(), value.strip()",
    "        if line.startswith('[') or not eq or section is None or not NAME.match(name):",
    "            unparsed += 1",
    "            if line.startswith('['):",
    "                section = None",
    "            continue",
    "        if name not in SHOWN:",
    "            section[name] = None",
    "            continue",
    "        if name in LISTS and value and section.get(name):",
    "            value = section[name] + ' ' + value",
    "        section[name] = value if len(value) <= VALUE_MAX and VALUE.match(value) else None",
    "    return {'sections': sections, 'unparsedLines': unparsed}",
    "def describe(summary):",
    "    lines = ['[%s] %s' % (s, ', '.join(n if v is None else '%s=%s' % (n, v) for n, v in d.items())) for s, d in summary['sections'].items()]",
    "    if summary['unparsedLines'] > 0:",
    "        lines.append('(%d line(s) not shown: not a directive)' % summary['unparsedLines'])",
    "    return lines",
    "mode = sys.argv[1]",
    "for path in sys.argv[2:]:",
    "    try:",
    "        found = read(path)",
    "    except OSError:",
    "        found = None",
    "    if mode == 'record':",
    "        if found is None:",
    "            print('foreign\\t%s\\tlink' % path)",
    "        else:",
    "            print('foreign\\t%s\\tfile\\t%s\\t%s' % (path, found[0], json.dumps(summarise(found[1]), separators=(',', ':'))))",
    "    elif found is None:",
    "        print('%s: not a plain file (a link?)' % path)",
    "    else:",
    "        print('%s (sha256 %s): %s' % (path, found[0], '; '.join(describe(summarise(found[1]))) or 'no directives'))",
].join("\n");

/** Shell lines defining `summarise_dropin record|text PATH…` (see {@link DROPIN_SUMMARY_PY}). */
export function dropInSummaryFunction(): string[] {
    return [`summarise_dropin() { python3 -c ${quoteScript(DROPIN_SUMMARY_PY)} "$@"; }`];
}
