/**
 * Reads a stack's configuration the way Pulumi hands it to the program, from
 * files alone: the project's `config:` block in `Pulumi.yaml` (its `value`s
 * and `default`s), then the stack file `Pulumi.<stack>.yaml` on top. No
 * backend, no passphrase: an encrypted (`secure:`) value is never decrypted;
 * it is replaced by {@link SECRET_PLACEHOLDER}, and `sshPrivateKey` is not
 * needed at all. Used by `render`, which must work for a reviewer without
 * the stack's secrets.
 */
import { parse } from "yaml";

/** What an encrypted value is shown as. */
export const SECRET_PLACEHOLDER = "[secret]";

/** A stack's configuration as raw strings per key (namespace removed), as the program receives it. */
export interface StackFileConfig {
    /** `key → raw value` for the project namespace (objects and non-strings as JSON text). */
    readonly raw: Record<string, string>;
    /** Keys (dotted paths) whose values were encrypted and are shown as {@link SECRET_PLACEHOLDER}. */
    readonly secretPaths: readonly string[];
}

/** A problem with the stack or project file: the message names the file and what is wrong. */
export class StackFileError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "StackFileError";
    }
}

function isSecure(value: unknown): boolean {
    return typeof value === "object" && value !== null && !Array.isArray(value) && Object.keys(value).length === 1 && "secure" in value;
}

/** Replaces every `{secure: …}` inside `value` by the placeholder, recording where. */
function redact(value: unknown, at: string, secretPaths: string[]): unknown {
    if (isSecure(value)) {
        secretPaths.push(at);
        return SECRET_PLACEHOLDER;
    }
    if (Array.isArray(value)) return value.map((v, i) => redact(v, `${at}[${i}]`, secretPaths));
    if (typeof value === "object" && value !== null) {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v, `${at}.${k}`, secretPaths)]));
    }
    return value;
}

function parseYaml(text: string, file: string): unknown {
    try {
        return parse(text);
    } catch (e) {
        throw new StackFileError(`${file}: not valid YAML: ${(e as Error).message.split("\n")[0]}`);
    }
}

/** The `config:` map of a parsed file, or {} when it has none. */
function configBlock(doc: unknown, file: string): Record<string, unknown> {
    if (doc === null || doc === undefined) return {};
    if (typeof doc !== "object" || Array.isArray(doc)) throw new StackFileError(`${file}: expected a YAML mapping at the top`);
    const config = (doc as Record<string, unknown>).config;
    if (config === undefined || config === null) return {};
    if (typeof config !== "object" || Array.isArray(config)) throw new StackFileError(`${file}: \`config\` must be a mapping of keys to values`);
    return config as Record<string, unknown>;
}

/** The key without the project namespace, or undefined for another namespace's key. */
function ownKey(fullKey: string, namespace: string): string | undefined {
    if (!fullKey.includes(":")) return fullKey;
    return fullKey.startsWith(`${namespace}:`) ? fullKey.slice(namespace.length + 1) : undefined;
}

/** As Pulumi hands a value to the program: strings as they are, everything else as JSON. */
function rawValue(value: unknown): string {
    return typeof value === "string" ? value : JSON.stringify(value);
}

/**
 * The configuration of one stack from the project file's text and the stack
 * file's text. `projectFile`/`stackFile` name the files in error messages.
 */
export function stackFileConfig(project: { text: string; file: string }, stack: { text: string; file: string }, namespace: string): StackFileConfig {
    const raw: Record<string, string> = {};
    const secretPaths: string[] = [];
    // Project-level values and defaults first (a typed entry: `{type, default}` or `{value}`; else the value itself).
    for (const [fullKey, entry] of Object.entries(configBlock(parseYaml(project.text, project.file), project.file))) {
        const key = ownKey(fullKey, namespace);
        if (key === undefined) continue;
        const isTyped = typeof entry === "object" && entry !== null && !Array.isArray(entry) && ("description" in entry || "type" in entry || "default" in entry || "value" in entry);
        const value = isTyped ? ("value" in entry ? (entry as { value: unknown }).value : (entry as { default?: unknown }).default) : entry;
        if (value !== undefined && value !== null) raw[key] = rawValue(value);
    }
    // Then the stack's own values, which win.
    for (const [fullKey, value] of Object.entries(configBlock(parseYaml(stack.text, stack.file), stack.file))) {
        const key = ownKey(fullKey, namespace);
        if (key === undefined || value === undefined || value === null) continue;
        raw[key] = rawValue(redact(value, key, secretPaths));
    }
    return { raw, secretPaths };
}
