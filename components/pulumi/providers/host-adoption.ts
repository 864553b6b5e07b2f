/** The HostAdoption provider: surveys a hand-made install at preview, takes it over (backup and record) at up. */
import { interpreterEnvReason } from "../../config/boundary";
import { AdoptionSurveySpec, adoptionSurveyScript, adoptionTakeoverScript, detachedScript, envReadScript, parseAdoptionSurvey, parseEnvRead } from "../../host";
import { AdoptionPlan, STATE_SCHEMA_VERSION, hostKeyFingerprint } from "../../model";
import { AdoptionExpectations, planAdoption } from "../../plan";
import { SshConnection, runAsRoot } from "../../transport";
import { Provider, diffProps } from "./diff";

/** What the stack installs (see `adoptionExpectations`), and the interpreter variables the config allows in the `.env`. */
export type AdoptionExpected = AdoptionExpectations & { readonly allowInterpreterEnv: readonly string[] };

/** Inputs of a HostAdoption resource (`report`, `plan` and `state` are set by `check`). */
export interface HostAdoptionInputs {
    connection: SshConnection;
    spec: AdoptionSurveySpec;
    expected: AdoptionExpected;
    /** What the survey found and what changes, one line each (set by `check`; never a secret value). */
    report?: string[];
    /** What the takeover backs up and records (set by `check`). */
    plan?: Pick<AdoptionPlan, "state" | "take">;
}

/** What a HostAdoption keeps in state. */
type HostAdoptionOutputs = HostAdoptionInputs & { backupDir: string; carriedEnv: Record<string, string>; adoptedAt: string; schemaVersion: number };

/** Whether a value is still unknown (a preview of a host the same program creates). */
function isUnknown(value: unknown): boolean {
    return typeof value !== "string" || value === "" || value === "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
}

/** Reads the host and plans the takeover; refusals are the sentences `planAdoption` and the interpreter rule give. */
async function survey(inputs: HostAdoptionInputs): Promise<{ plan: AdoptionPlan; refusals: string[] }> {
    const out = await runAsRoot(inputs.connection, adoptionSurveyScript(inputs.spec), { what: "reading the hand-made install" });
    const found = parseAdoptionSurvey(out.stdout);
    const e = inputs.expected;
    const { allowInterpreterEnv: _allowed, ...expectations } = e;
    const plan = planAdoption({ survey: found, ...expectations });
    // A carried name that would change where the service's code comes from is refused as the config's own would be.
    const refusals = [...plan.refusals];
    for (const name of carriedNames(found.envFile.keys ?? [], e)) {
        const why = interpreterEnvReason(name);
        if (why !== undefined && !e.allowInterpreterEnv.includes(name)) {
            refusals.push(`${found.envFile.path} sets ${name}, which may not be carried into the managed .env: ${why}. Remove it from that file, or allow it with allowInterpreterEnv: ["${name}"] if it points only at root-owned files`);
        }
    }
    return { plan, refusals };
}

/** The `.env` names the config does not set: carried from the hand-made file. */
function carriedNames(names: readonly string[], e: AdoptionExpected): string[] {
    return names.filter((n) => !(n in e.env) && !e.secretEnvKeys.includes(n));
}

/** Takes over the install the check planned: backup and record, then reads the values to carry (secret). */
async function adopt(inputs: HostAdoptionInputs): Promise<HostAdoptionOutputs> {
    const done = { ...inputs, adoptedAt: new Date().toISOString(), schemaVersion: STATE_SCHEMA_VERSION };
    if (!inputs.plan || inputs.plan.state !== "adopt") return { ...done, backupDir: "", carriedEnv: {} };
    // The check at this up surveyed again; the takeover re-checks every hash it backs up, so a change since fails here.
    const out = await runAsRoot(inputs.connection, detachedScript("adopt the hand-made install", adoptionTakeoverScript(inputs.spec, inputs.plan.take)), {
        what: "taking over the hand-made install",
        streamLog: true,
    });
    const backupDir = /^backup (.+)$/m.exec(out.stdout.trim().split("\n").pop() ?? "")?.[1] ?? "";
    let carriedEnv: Record<string, string> = {};
    if (inputs.plan.take.envFile) {
        try {
            const read = parseEnvRead((await runAsRoot(inputs.connection, envReadScript(inputs.spec.envFile, { user: inputs.spec.user, group: inputs.spec.group }), { what: "reading the hand-made .env" })).stdout);
            if (read.state === "present") {
                const keep = new Set(carriedNames(Object.keys(read.values), inputs.expected));
                carriedEnv = Object.fromEntries(Object.entries(read.values).filter(([k]) => keep.has(k)));
            }
        } catch {
            // Never let a secret-bearing output reach an error message.
            throw new Error(`could not read ${inputs.spec.envFile} safely on ${inputs.connection.host}; nothing of it was carried (the backup ${backupDir || "was not made"} is kept)`);
        }
    }
    return { ...done, backupDir, carriedEnv };
}

export const hostAdoption: Provider = {
    async check(olds: Partial<HostAdoptionOutputs>, news: HostAdoptionInputs) {
        // Adopted once: later previews open no SSH session and show what was adopted.
        if (olds.adoptedAt) return { inputs: { ...news, report: olds.report ?? [], plan: olds.plan } };
        if (isUnknown(news.connection?.host) || isUnknown(news.connection?.hostKey)) return { inputs: news };
        const { plan, refusals } = await survey(news);
        const inputs = { ...news, report: plan.report, plan: { state: plan.state, take: plan.take } };
        return refusals.length > 0 ? { inputs, failures: refusals.map((reason) => ({ property: "adopt", reason })) } : { inputs };
    },
    async diff(_id, olds, news) {
        // Adoption happens once: only a new login is recorded.
        return diffProps(olds, news, ["connection"]);
    },
    async create(inputs: HostAdoptionInputs) {
        return { id: `${hostKeyFingerprint(inputs.connection.hostKey)}/adoption`, outs: await adopt(inputs) };
    },
    async update(_id, olds: HostAdoptionOutputs, news: HostAdoptionInputs) {
        return { outs: { ...olds, connection: news.connection, schemaVersion: STATE_SCHEMA_VERSION } };
    },
    async delete() {
        // The backup and what was adopted stay (see the resource's documentation).
    },
    async read(id, props: HostAdoptionOutputs) {
        return { id, props };
    },
};
