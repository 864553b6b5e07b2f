/**
 * The environment variable through which a Pulumi language host hands the
 * program the full keys (`namespace:key`) of the config values stored as
 * secrets, as a JSON array, beside `PULUMI_CONFIG` (which
 * `pulumi.runtime.allConfig()` reads). Every language host sets it
 * (`pulumi-language-nodejs`, and `scripts/lib/pulumi-inline.ts` for this
 * project); the SDK has no public getter for it. A module of its own, with
 * no imports, so the runner can name it without loading the program.
 */
export const CONFIG_SECRET_KEYS_ENV = "PULUMI_CONFIG_SECRET_KEYS";
