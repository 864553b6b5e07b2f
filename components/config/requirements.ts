/**
 * The one rule for pip requirements, for `app.requirements` entries and for
 * each line of `app.requirementsFile` alike: a requirement is a package name
 * with optional extras, version specifiers and an environment marker. Options
 * (`-r`, `-c`, `-e`, `--index-url`, `-f`, …) are refused: they read another
 * file, or fetch from another index, a URL, a local path or a VCS, past
 * `releases.indexUrl` and past what the preview shows. Only `--hash=` pins
 * (and `--require-hashes`, which only restricts) may appear, in a file.
 * Lines are split into tokens the way pip does (an option starts at the
 * first token beginning with `-`), on any whitespace, so what is checked
 * is never less than what the installer reads.
 */

/** A package name (PEP 508). */
const NAME = "[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?";

/** One version specifier such as `==0.38.0`, `>=1.2,<2` is two. */
const SPECIFIER = " *(?:===|==|~=|!=|<=|>=|<|>) *[A-Za-z0-9.*+!_-]+";

/** An environment marker (PEP 508): comparisons of marker variables and quoted values, joined by `and`/`or`. */
const MARKER_VARIABLE =
    "(?:python_version|python_full_version|os_name|sys_platform|platform_release|platform_system|platform_version|platform_machine|platform_python_implementation|implementation_name|implementation_version|extra)";
const MARKER_VALUE = `(?:'[A-Za-z0-9._*+!~<>=, -]*'|"[A-Za-z0-9._*+!~<>=, -]*")`;
const MARKER_OPERATOR = "(?:===|==|!=|<=|>=|~=|<|>|not +in|in)";
const MARKER_COMPARISON = `\\(* *(?:${MARKER_VARIABLE}|${MARKER_VALUE}) *${MARKER_OPERATOR} *(?:${MARKER_VARIABLE}|${MARKER_VALUE}) *\\)*`;
const MARKER = `${MARKER_COMPARISON}(?: +(?:and|or) +${MARKER_COMPARISON})*`;

/**
 * A requirement: name, extras, specifiers and an environment marker
 * (`; python_version >= '3.8'`), with spaces between parts. No `@` (a
 * direct URL), no `$` (pip expands `${VAR}`), no `#`, no path.
 */
const REQUIREMENT = new RegExp(`^${NAME}(?: *\\[ *${NAME}(?: *, *${NAME})* *\\])?(?:${SPECIFIER}(?: *,${SPECIFIER})*)?(?: *; *${MARKER})?$`);

/** Longer than any real requirement (and a bound on the pattern's work). */
const MAX_REQUIREMENT_CHARS = 1000;

/** A hash pin pip and uv accept on a requirement line. */
const HASH_OPTION = /^--hash=(?:sha256|sha384|sha512):[0-9a-fA-F]+$/;

/** An option line that only makes the install stricter. */
const STRICTER_OPTION_LINES = ["--require-hashes"];

/** What an option does, for the refusal. */
const OPTION_REASON =
    "options are refused: -r/-c read another file, -e/-f and URLs fetch from elsewhere, --index-url/--extra-index-url/--trusted-host change the index (set releases.indexUrl, releases.extraIndexUrls and releases.trustedHosts instead)";

/** Where pip's comments start: `#` at the start of a line or after whitespace. */
const COMMENT = /(^|\s+)#.*$/;

/** Characters no requirement text may hold: control characters (tab aside) and the separators Python's `splitlines` breaks lines at. */
const LINE_BREAKING = /[\u0000-\u0008\u000a-\u001f\u007f\u0085\u2028\u2029]/;

/**
 * Why one requirement (an `app.requirements` entry, or a logical line of a
 * requirements file without its comment) is refused, or undefined when it is
 * a plain requirement. `hashPins`: `--hash=` options may follow it.
 */
export function requirementProblem(text: string, hashPins: boolean): string | undefined {
    if (LINE_BREAKING.test(text)) return "must be one line: no newline or control character";
    const tokens = text.trim().split(/\s+/).filter((t) => t !== "");
    const firstOption = tokens.findIndex((t) => t.startsWith("-"));
    const requirement = (firstOption === -1 ? tokens : tokens.slice(0, firstOption)).join(" ");
    const options = firstOption === -1 ? [] : tokens.slice(firstOption);
    const refused = options.find((o) => !(hashPins && HASH_OPTION.test(o)));
    if (refused !== undefined) {
        const option = refused.split("=")[0]!;
        if (hashPins && option === "--hash") return "a hash pin must be written --hash=sha256:<hex digits> (with '=')";
        return `${option} is an option; ${hashPins ? "only --hash=sha256:… pins may follow a requirement; other " : ""}${OPTION_REASON}`;
    }
    if (requirement === "") return "must be a pip requirement like 'uvicorn==0.38.0'";
    if (requirement.length > MAX_REQUIREMENT_CHARS) return `is longer than ${MAX_REQUIREMENT_CHARS} characters; no requirement is`;
    if (!REQUIREMENT.test(requirement)) {
        return "must be a pip requirement like 'uvicorn==0.38.0', 'uvicorn[standard]>=0.30,<1' or \"tomli==2.0.1 ; python_version < '3.11'\" (a package from the index: no URL, path, '@', '$' or '#')";
    }
    return undefined;
}

/** One refused line of a requirements file. */
export interface RequirementsFileProblem {
    /** The 1-based line number (the first line of a `\`-continued line). */
    readonly line: number;
    readonly problem: string;
}

/**
 * Checks a requirements file line by line with {@link requirementProblem}:
 * blank lines and `#` comments are allowed, `\` continues a line (for
 * `--hash=` pins on the lines below a requirement), `--hash=` pins and
 * `--require-hashes` are the only options.
 */
export function requirementsFileProblems(text: string): RequirementsFileProblem[] {
    const problems: RequirementsFileProblem[] = [];
    const lines = text.split(/\r?\n/);
    let logical = "";
    let continuing = false;
    let start = 0;
    lines.forEach((raw, i) => {
        if (LINE_BREAKING.test(raw)) {
            problems.push({ line: i + 1, problem: "holds a control character or a Unicode line separator (pip would read a new line there)" });
            return;
        }
        if (!continuing) start = i + 1;
        // pip ends a continuation at a comment line and joins the others without their backslashes.
        const isComment = /^\s*#/.test(raw);
        if (raw.endsWith("\\") && !isComment) {
            // uv ends a comment at the end of its line, pip continues it: refuse what they would read differently.
            if (COMMENT.test(raw)) {
                problems.push({ line: i + 1, problem: "ends a comment with '\\', which pip reads as a continuation and uv does not: remove the backslash" });
                return;
            }
            logical += raw.replace(/^\\+|\\+$/g, "");
            continuing = true;
            return;
        }
        logical += isComment ? "" : raw;
        const line = logical.replace(COMMENT, "").trim();
        logical = "";
        continuing = false;
        if (line === "" || STRICTER_OPTION_LINES.includes(line)) return;
        const problem = requirementProblem(line, true);
        if (problem !== undefined) problems.push({ line: start, problem });
    });
    const trailing = logical.replace(COMMENT, "").trim();
    if (trailing !== "") {
        const problem = requirementProblem(trailing, true);
        if (problem !== undefined) problems.push({ line: start, problem });
    }
    return problems;
}
