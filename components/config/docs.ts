/**
 * Documentation generated from the one config schema: the configuration
 * reference in docs/configuration.md and the `config:` block of `Pulumi.yaml`. Tests
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

/** A top-level config key with its JSON Schema. */
interface TopLevelKey {
    readonly name: string;
    readonly schema: JsonSchema;
    readonly required: boolean;
    readonly secret: boolean;
}

/** The top-level keys of the plain schema, then of the secret one, in schema order. */
function topLevelKeys(): TopLevelKey[] {
    const out: TopLevelKey[] = [];
    for (const [zodSchema, secret] of [
        [stackConfigSchema, false],
        [secretConfigSchema, true],
    ] as const) {
        const root = jsonSchema(zodSchema);
        const required = new Set(root.required ?? []);
        for (const [name, schema] of Object.entries(root.properties ?? {})) {
            out.push({ name, schema, required: required.has(name) && schema.default === undefined, secret });
        }
    }
    return out;
}

/** Every config key, plain then secret, with type, default and description. */
export function configKeyDocs(): ConfigKeyDoc[] {
    const out: ConfigKeyDoc[] = [];
    for (const key of topLevelKeys()) {
        collect(key.schema, key.name, key.required, key.secret, out);
    }
    return out;
}

/** The configuration reference table (docs/configuration.md). */
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
    for (const { name, schema, required, secret } of topLevelKeys()) {
        // Pulumi treats a declared key without a default as required: leave optional keys without one out.
        if (schema.default === undefined && !required) continue;
        lines.push(`  ${namespace}:${name}:`);
        lines.push(`    description: ${JSON.stringify((secret ? "(secret: set with --secret) " : "") + (schema.description ?? ""))}`);
        const scalar = schema.type === "string" || schema.type === "integer" || schema.type === "boolean";
        if (schema.default !== undefined && scalar) {
            lines.push(`    type: ${schema.type}`, `    default: ${JSON.stringify(schema.default)}`);
        } else if (schema.default !== undefined) {
            lines.push(`    value: ${JSON.stringify(schema.default)}`);
        }
    }
    return lines.join("\n") + "\n";
}
