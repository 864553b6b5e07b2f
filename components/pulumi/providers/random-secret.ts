/** The RandomSecret provider: random bytes generated once and kept, encrypted, in the state. */
import { randomBytes, randomUUID } from "crypto";
import { STATE_SCHEMA_VERSION } from "../../model";
import { Provider, diffProps } from "./diff";

/** Inputs of a RandomSecret resource. */
export interface RandomSecretInputs {
    /** Number of random bytes (the value is their base64url text). */
    bytes: number;
}

export const randomSecret: Provider = {
    async check(_olds, news) {
        const bytes = (news as Partial<RandomSecretInputs>).bytes ?? 32;
        if (!Number.isInteger(bytes) || bytes < 16 || bytes > 1024) {
            return { failures: [{ property: "bytes", reason: "must be an integer from 16 to 1024" }] };
        }
        return { inputs: { ...news, bytes } };
    },
    async diff(_id, olds, news) {
        return diffProps(olds, news, ["bytes"], ["bytes"]);
    },
    async create(inputs: RandomSecretInputs) {
        return { id: randomUUID(), outs: { bytes: inputs.bytes, value: randomBytes(inputs.bytes).toString("base64url"), schemaVersion: STATE_SCHEMA_VERSION } };
    },
    async update(_id, olds) {
        // Only a migration of older state reaches here (a new size replaces): the value is kept.
        return { outs: { ...olds, schemaVersion: STATE_SCHEMA_VERSION } };
    },
    async delete() {
        // Nothing outside the state.
    },
    async read(id, props) {
        return { id, props };
    },
};
