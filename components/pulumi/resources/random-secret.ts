import * as pulumi from "@pulumi/pulumi";
import { libraryResource } from "./library-resource";

/** Arguments of {@link RandomSecret}. */
export interface RandomSecretArgs {
    /** Random bytes in the value (default 32). */
    bytes?: pulumi.Input<number>;
}

/** A random value generated once and kept (encrypted) in the stack state, e.g. `JWT_SECRET`. */
export const RandomSecret = libraryResource<RandomSecretArgs, { /** The value, base64url; always secret. */ readonly value: pulumi.Output<string> }>({
    kind: "randomSecret",
    type: "RandomSecret",
    outputs: ["value"],
    secretOutputs: ["value"],
});
/** An instance of {@link RandomSecret}. */
export type RandomSecret = InstanceType<typeof RandomSecret>;
