/**
 * Documentation generated from the one config schema: the README's
 * configuration reference and the `config:` block of `Pulumi.yaml`. Tests
 * fail when either drifts from the schema (`npm run gen` rewrites both).
 */
import { z } from "zod";
import { secretConfigSchema, stackConfigSchema } from "./schema";

/** The part of JSON Schema the generator reads. */
interface JsonSchema {
    type?: string | string[];
    description?: string;
    default?: unknown;
    enum?: unknown[];
    minimum?: number;
    maximum?: number;
    minItems?: number;
    items?: JsonSchema;
    properties?: Record<string, JsonSchema>;
    required?: string[];
    additionalProperties?: JsonSchema | boolean;
    anyOf?: JsonSchema[];
}

function jsonSchema(schema: z.ZodType): JsonSchema {
    return z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as JsonSchema;
}

/** One documented key. */
export interface ConfigKeyDoc {
    /** The key path, e.g. `overrides.<name>.memoryMax` or `hosts[].port`. */
    readonly key: string;
    readonly type: string;
    /** The default as shown to users, or `—`. */
    readonly defaultValue: string;
    readonly required: boolean;
    readonly secret: boolean;
    readonly description: string;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

function describeType(s: JsonSchema): string {
    if (s.anyOf) return s.anyOf.map(describeType).join(" or ");
    if (s.enum) return s.enum.map((v) => `\`${String(v)}\``).join(" \\| ");
    const type = Array.isArray(s.type) ? s.type.join(" or ") : s.type;
    switch (type) {
        case "integer": {
            const hasMax = s.maximum !== undefined && s.maximum < MAX_SAFE;
            if (s.minimum !== undefined && hasMax) return `integer ${s.minimum}–${s.maximum}`;
            if (s.minimum !== undefined) return `integer ≥ ${s.minimum}`;
            return "integer";
        }
        case "array":
            return s.items ? `list of ${s.items.properties ? "objects" : describeType(s.items)}` : "list";
        case "object":
            return s.properties ? "object" : "map";
        default:
            return type ?? "any";
    }
}

function showDefault(v: unknown): string {
    if (v === undefined) return "—";
    return `\`${JSON.stringify(v)}\``;
}

/** Flattens a schema into documented keys, depth first, in schema order. */
function collect(s: JsonSchema, prefix: string, required: boolean, secret: boolean, out: ConfigKeyDoc[]): void {
    // An object's default is the sum of its fields' defaults, listed on their own rows.
    const defaultValue = s.properties ? (s.default === undefined ? "—" : "fields below") : showDefault(s.default);
    out.push({ key: prefix, type: describeType(s), defaultValue, required, secret, description: s.description ?? "" });
    if (s.properties) {
        for (const [name, child] of Object.entries(s.properties)) {
            collect(child, `${prefix}.${name}`, false, secret, out);
        }
    } else if (s.items?.properties) {
        const req = new Set(s.items.required ?? []);
        for (const [name, child] of Object.entries(s.items.properties)) {
            collect(child, `${prefix}[].${name}`, req.has(name) && child.default === undefined, secret, out);
        }
    } else if (typeof s.additionalProperties === "object" && s.additionalProperties.properties) {
        for (const [name, child] of Object.entries(s.additionalProperties.properties)) {
            collect(child, `${prefix}.<name>.${name}`, false, secret, out);
        }
    }
}

/** Every config key, plain then secret, with type, default and description. */
export function configKeyDocs(): ConfigKeyDoc[] {
    const out: ConfigKeyDoc[] = [];
    for (const [schema, secret] of [
        [stackConfigSchema, false],
        [secretConfigSchema, true],
    ] as const) {
        const root = jsonSchema(schema);
        const req = new Set(root.required ?? []);
        for (const [name, child] of Object.entries(root.properties ?? {})) {
            collect(child, name, req.has(name) && child.default === undefined, secret, out);
        }
    }
    return out;
}

/** The README's configuration reference table. */
export function configReferenceMarkdown(): string {
    const rows = configKeyDocs().map((d) => {
        const type = `${d.secret ? "secret " : ""}${d.type}${d.required ? ", **required**" : ""}`;
        return `| \`${d.key}\` | ${type} | ${d.defaultValue} | ${d.description.replace(/\|/g, "\\|")} |`;
    });
    return ["| key | type | default | what |", "| --- | --- | --- | --- |", ...rows].join("\n") + "\n";
}

/**
 * The `config:` block of `Pulumi.yaml`: every required top-level key, and
 * every key with a default (shared by all stacks), with its description.
 * Optional keys without a default are left out: Pulumi would require them.
 */
export function projectConfigBlock(namespace: string): string {
    const lines = ["config:"];
    for (const [schema, secret] of [
        [stackConfigSchema, false],
        [secretConfigSchema, true],
    ] as const) {
        const root = jsonSchema(schema);
        const required = new Set(root.required ?? []);
        for (const [name, child] of Object.entries(root.properties ?? {})) {
            // Pulumi treats a declared key without a default as required: leave optional keys without one out.
            if (child.default === undefined && !required.has(name)) continue;
            lines.push(`  ${namespace}:${name}:`);
            lines.push(`    description: ${JSON.stringify((secret ? "(secret: set with --secret) " : "") + (child.description ?? ""))}`);
            const scalar = child.type === "string" || child.type === "integer" || child.type === "boolean";
            if (child.default !== undefined && scalar) {
                lines.push(`    type: ${child.type}`, `    default: ${JSON.stringify(child.default)}`);
            } else if (child.default !== undefined) {
                lines.push(`    value: ${JSON.stringify(child.default)}`);
            }
        }
    }
    return lines.join("\n") + "\n";
}
