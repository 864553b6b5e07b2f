import * as pulumi from "@pulumi/pulumi";
import type { AdoptionSurveySpec } from "../../host";
import type { AdoptionExpectations } from "../../plan";
import { HostArgs, libraryResource } from "./library-resource";

/** Arguments of {@link HostAdoption}. */
export interface HostAdoptionArgs extends HostArgs {
    /** What the survey reads on the host: the service, its account, directories and the notes' `.env` path. */
    spec: pulumi.Input<AdoptionSurveySpec>;
    /**
     * What the stack will install (the unit, its drop-ins, the `.env`'s key names): the survey's report is
     * the difference. Passed as a secret so that a preview shows it as one line; the report is the readable part.
     */
    expected: pulumi.Input<AdoptionExpectations & { readonly allowInterpreterEnv: readonly string[] }>;
}

/**
 * Takes over a hand-made install of the service notes on one host (`hosts[i].adopt`). Its preview reads
 * the host and shows, as `report`, what exists and what the stack changes; its creation keeps a lasting
 * backup (`backupDir`) and records what was adopted, which the host's preparation and activation then
 * accept. Nothing is undone by its deletion: the backup stays.
 */
export const HostAdoption = libraryResource<HostAdoptionArgs, {
    /** What the host had and what changes (no secret value): the unit's lines, drop-ins, owners, the `.env`'s keys. */
    readonly report: pulumi.Output<string[]>;
    /** Where the hand-made unit, drop-ins and `.env` were copied ("" when there was nothing to adopt). */
    readonly backupDir: pulumi.Output<string>;
    /** The hand-made `.env`'s values the config does not set (JWT_SECRET included): carried into the managed `.env`. Always secret. */
    readonly carriedEnv: pulumi.Output<Record<string, string>>;
}>({
    kind: "hostAdoption",
    type: "HostAdoption",
    outputs: ["report", "backupDir", "carriedEnv"],
    secretOutputs: ["connection", "expected", "carriedEnv"],
});
/** An instance of {@link HostAdoption}. */
export type HostAdoption = InstanceType<typeof HostAdoption>;
