/**
 * The operator command's arguments: `amarktai-ops COMMAND [flags]`, flags
 * anywhere. Bad input is refused with a message naming the flag and what it
 * takes, before any host is contacted.
 */

/** The operator's commands. */
export const OPERATOR_COMMANDS = ["status", "logs", "restart", "doctor"] as const;
export type OperatorCommand = (typeof OPERATOR_COMMANDS)[number];

/** Parsed arguments. */
export interface OperatorArgs {
    readonly command: OperatorCommand;
    /** `-s/--stack`: the stack; default: the selected one. */
    readonly stack?: string;
    /** `--config-file`: the stack's config file, as `pulumi --config-file`. */
    readonly configFile?: string;
    /** `-C/--cwd`: the Pulumi project's directory; default: the current one. */
    readonly cwd?: string;
    /** `--host NAME` (repeatable): only these hosts (their `name`, else address). */
    readonly hosts: readonly string[];
    /** `--json` (status, doctor, restart) or `-o json` (logs): machine-readable output. */
    readonly json: boolean;
    /** logs `-n N`. */
    readonly lines?: number;
    /** logs `--since`. */
    readonly since?: string;
    /** logs `--until`. */
    readonly until?: string;
    /** logs `-f/--follow`. */
    readonly follow: boolean;
    /** logs `--output FILE`: write the lines there instead of stdout. */
    readonly output?: string;
    /** restart `--loop N`: the notes' restart loop, N restarts per host. */
    readonly loop?: number;
    /** `--connect-timeout SEC`: how long to keep dialling each host (default 30). */
    readonly connectTimeoutSec: number;
}

/** A bad command line: the message says which flag and what it takes. */
export class UsageError extends Error {}

/** `-h`/`--help`: the message is the usage text, for stdout. */
export class HelpRequested extends UsageError {}

/** The command's help text. */
export const USAGE = `usage: amarktai-ops COMMAND [flags]

Commands (every host of the stack at once; --host NAME for one, repeatable):
  status     unit state, main PID, uptime, restarts, memory, CPU, live release, last deploy, health
  logs       the unit's journal from every host, each line prefixed by its host
  restart    a rolling restart in the rollout's batches (rollout.maxUnavailable), each health-gated
  doctor     checks the notes' "won't start" causes on each host and says which one holds

Flags:
  -s, --stack NAME        the stack (default: the selected stack)
  --config-file FILE      the stack's config file (as for pulumi)
  -C, --cwd DIR           the Pulumi project directory (default: the current directory)
  --host NAME             only this host (its name, else its address); repeatable
  --json                  machine-readable output (status, restart, doctor)
  --connect-timeout SEC   how long to keep dialling each host (default 30)
logs:
  -n, --lines N           the newest N lines (default 50; with -f, 10)
  --since WHEN, --until WHEN   as journalctl takes them ("10 minutes ago", "2026-12-06 10:00")
  -f, --follow            keep printing new lines, merged from every host, until Ctrl-C
  -o, --output-format short|json   short (default): journalctl's short-precise; json: one object per line
  --output FILE           write the lines to FILE (mode 0600) instead of the terminal
restart:
  --loop N                the notes' restart loop: N health-gated restarts per host, then the journal is
                          searched for the notes' warnings
`;

const VALUE_FLAGS = new Set(["-s", "--stack", "--config-file", "-C", "--cwd", "--host", "-n", "--lines", "--since", "--until", "-o", "--output-format", "--output", "--loop", "--connect-timeout"]);

function wholeNumber(flag: string, value: string, min: number, max: number): number {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw new UsageError(`${flag}: must be a whole number from ${min} to ${max}, not '${value}'`);
    return Number(value);
}

/** Parses `argv` (without node and the script). Throws a {@link UsageError} for anything it does not take. */
export function parseOperatorArgs(argv: readonly string[]): OperatorArgs {
    const values = new Map<string, string[]>();
    const switches = new Set<string>();
    const positional: string[] = [];
    for (let i = 0; i < argv.length; i++) {
        let arg = argv[i]!;
        let value: string | undefined;
        const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
        if (eq > 0) {
            value = arg.slice(eq + 1);
            arg = arg.slice(0, eq);
        }
        if (VALUE_FLAGS.has(arg)) {
            if (value === undefined) {
                value = argv[++i];
                if (value === undefined) throw new UsageError(`${arg}: needs a value`);
            }
            values.set(arg, [...(values.get(arg) ?? []), value]);
        } else if (["--json", "-f", "--follow", "-h", "--help"].includes(arg) && value === undefined) {
            switches.add(arg);
        } else if (arg.startsWith("-")) {
            throw new UsageError(`unknown flag ${arg}\n\n${USAGE}`);
        } else {
            positional.push(arg);
        }
    }
    if (switches.has("-h") || switches.has("--help")) throw new HelpRequested(USAGE);
    const [command, ...extra] = positional;
    if (command === undefined) throw new UsageError(`a command is needed: ${OPERATOR_COMMANDS.join(", ")}\n\n${USAGE}`);
    if (!(OPERATOR_COMMANDS as readonly string[]).includes(command)) throw new UsageError(`unknown command '${command}'; the commands are ${OPERATOR_COMMANDS.join(", ")}`);
    if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}' (flags take their value as --flag VALUE)`);
    const one = (...names: string[]): string | undefined => {
        const given = names.flatMap((n) => values.get(n) ?? []);
        if (given.length > 1) throw new UsageError(`${names.join("/")}: given more than once`);
        return given[0];
    };
    const only = (flag: string, commands: readonly OperatorCommand[], given: boolean) => {
        if (given && !commands.includes(command as OperatorCommand)) throw new UsageError(`${flag}: only for ${commands.join(", ")}, not ${command}`);
    };
    const text = (flag: string, value: string | undefined): string | undefined => {
        // journalctl takes the value as one argument; a control character has no business in a time.
        if (value !== undefined && (value.trim() === "" || /[\x00-\x1f\x7f]/.test(value))) throw new UsageError(`${flag}: must be a time such as '10 minutes ago' or '2026-12-06 10:00:00'`);
        return value;
    };
    const lines = one("-n", "--lines");
    const format = one("-o", "--output-format");
    const loop = one("--loop");
    const follow = switches.has("-f") || switches.has("--follow");
    only("-n/--lines", ["logs"], lines !== undefined);
    only("--since", ["logs"], values.has("--since"));
    only("--until", ["logs"], values.has("--until"));
    only("-f/--follow", ["logs"], follow);
    only("-o/--output-format", ["logs"], format !== undefined);
    only("--output", ["logs"], values.has("--output"));
    only("--loop", ["restart"], loop !== undefined);
    only("--json", ["status", "restart", "doctor"], switches.has("--json"));
    if (format !== undefined && format !== "short" && format !== "json") throw new UsageError(`-o/--output-format: must be short or json, not '${format}'`);
    const since = text("--since", one("--since"));
    const until = text("--until", one("--until"));
    if (follow && until !== undefined) throw new UsageError("--until: cannot be combined with -f/--follow");
    const output = one("--output");
    if (output !== undefined && output.trim() === "") throw new UsageError("--output: must be a file path");
    const hosts = values.get("--host") ?? [];
    const stack = one("-s", "--stack");
    const configFile = one("--config-file");
    const cwd = one("-C", "--cwd");
    const connect = one("--connect-timeout");
    return {
        command: command as OperatorCommand,
        ...(stack !== undefined ? { stack } : {}),
        ...(configFile !== undefined ? { configFile } : {}),
        ...(cwd !== undefined ? { cwd } : {}),
        hosts,
        json: switches.has("--json") || format === "json",
        ...(command === "logs" ? { lines: lines !== undefined ? wholeNumber("-n/--lines", lines, 0, 1_000_000) : since !== undefined || until !== undefined ? undefined : follow ? 10 : 50 } : {}),
        ...(since !== undefined ? { since } : {}),
        ...(until !== undefined ? { until } : {}),
        follow,
        ...(output !== undefined ? { output } : {}),
        ...(loop !== undefined ? { loop: wholeNumber("--loop", loop, 1, 100) } : {}),
        connectTimeoutSec: connect !== undefined ? wholeNumber("--connect-timeout", connect, 0, 3600) : 30,
    } as OperatorArgs;
}
