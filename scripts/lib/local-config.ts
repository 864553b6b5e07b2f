/**
 * Fills the VM's details into the `local` stack's config file, and nothing
 * else: `amarktai-infra:hosts` (address, forwarded port, login, pinned host
 * key). Every other line — the user's settings and comments — stays as
 * written. The file is made from the template only when it does not exist.
 *
 *   node dist/scripts/lib/local-config.js CONFIG_FILE TEMPLATE HOSTS_JSON
 *   node dist/scripts/lib/local-config.js --salt-from NEW_STACK_FILE CONFIG_FILE
 *
 * The second form, after a `stack init` (the stack was missing from the
 * backend), takes the new stack's `encryptionsalt` into the config file.
 *
 * Prints what it did. (The secret `sshPrivateKey` is set by up-local.sh with
 * the Pulumi CLI, which alone can encrypt it, and only when it changed.)
 */
import * as fs from "fs";
import * as path from "path";
import { isDeepStrictEqual } from "util";
import { Scalar, isMap, isScalar, parseDocument, stringify } from "yaml";

const HOSTS_KEY = "amarktai-infra:hosts";

/** The result of {@link fillLocalConfig}: the new text, and what changed. */
export interface FilledConfig {
    readonly text: string;
    readonly hostsChanged: boolean;
}

/** `key: value` as block YAML, every line indented by `column` spaces. */
function pairText(key: string, value: unknown, column: number): string {
    return stringify({ [key]: value }, { indent: 2 })
        .trimEnd()
        .split("\n")
        .map((l) => " ".repeat(column) + l)
        .join("\n");
}

/** Where a node's text ends (before the spaces and line breaks yaml counts into its range), at most `offset`. */
function endOfContent(text: string, offset: number): number {
    let end = offset;
    while (end > 0 && /\s/.test(text[end - 1]!)) end--;
    return end;
}

/**
 * The config file's text with `hosts` set to `hosts`. Only the lines of the
 * `hosts` entry are replaced (or the entry is added at the end of the
 * `config:` block): every other byte — the user's settings, comments and
 * spacing — stays as written.
 */
export function fillLocalConfig(text: string, hosts: unknown): FilledConfig {
    const doc = parseDocument(text);
    if (doc.errors.length > 0) throw new Error(`not valid YAML: ${doc.errors[0]!.message.split("\n")[0]}`);
    const config = isMap(doc.contents) ? doc.contents.get("config", true) : undefined;
    if (!isMap(config) || config.flow || config.items.length === 0 || !config.range) {
        // No block of settings to keep: write the config from scratch (top-level keys kept).
        const fresh = isMap(doc.contents) ? doc : parseDocument("{}");
        fresh.setIn(["config", HOSTS_KEY], fresh.createNode(hosts));
        return { text: fresh.toString(), hostsChanged: true };
    }
    const pair = config.items.find((p) => isScalar(p.key) && p.key.value === HOSTS_KEY);
    const lineStart = (offset: number) => text.lastIndexOf("\n", offset - 1) + 1;
    if (pair) {
        const value = pair.value as { toJSON?: () => unknown; range?: [number, number, number] } | null;
        if (value?.toJSON && isDeepStrictEqual(value.toJSON(), hosts)) return { text, hostsChanged: false };
        const keyStart = (pair.key as Scalar).range![0];
        const from = lineStart(keyStart);
        const to = endOfContent(text, value?.range ? value.range[1] : (pair.key as Scalar).range![2]);
        return { text: text.slice(0, from) + pairText(HOSTS_KEY, hosts, keyStart - from) + text.slice(to), hostsChanged: true };
    }
    // Added after the last entry of the config block, at its indentation.
    const first = config.items[0]!.key as Scalar;
    const column = first.range![0] - lineStart(first.range![0]);
    const end = endOfContent(text, config.range[1]);
    return { text: text.slice(0, end) + "\n" + pairText(HOSTS_KEY, hosts, column) + text.slice(end), hostsChanged: true };
}

/** The config file's text with the top-level `encryptionsalt` set to `salt`; the rest untouched. */
export function withSalt(text: string, salt: string): string {
    const doc = parseDocument(text);
    if (doc.get("encryptionsalt") === salt) return text;
    doc.set("encryptionsalt", salt);
    return doc.toString();
}

function main(argv: readonly string[]): void {
    if (argv[0] === "--salt-from") {
        const [, from, file] = argv;
        if (!from || !file) throw new Error("usage: local-config.js --salt-from NEW_STACK_FILE CONFIG_FILE");
        const salt = parseDocument(fs.readFileSync(from, "utf8")).get("encryptionsalt");
        if (typeof salt === "string") fs.writeFileSync(file, withSalt(fs.readFileSync(file, "utf8"), salt));
        return;
    }
    const [file, template, hostsJson] = argv;
    if (!file || !template || !hostsJson) throw new Error("usage: local-config.js CONFIG_FILE TEMPLATE HOSTS_JSON");
    let text: string;
    if (fs.existsSync(file)) {
        text = fs.readFileSync(file, "utf8");
    } else {
        text = fs.readFileSync(template, "utf8");
        console.log(`created ${file} from ${template}: your local stack's settings; edit them there`);
    }
    const filled = fillLocalConfig(text, JSON.parse(hostsJson));
    if (filled.hostsChanged || !fs.existsSync(file)) {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, filled.text);
    }
    console.log(filled.hostsChanged ? `filled in hosts (this VM's address, port and host key) in ${file}` : `hosts in ${file} already match this VM`);
}

if (require.main === module) {
    try {
        main(process.argv.slice(2));
    } catch (e) {
        console.error(`local-config: ${(e as Error).message}`);
        process.exit(1);
    }
}
