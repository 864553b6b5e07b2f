/**
 * Golden files for CLI output: normalise the volatile parts (stack names,
 * ports, keys, hashes, fingerprints, timings), then compare with the file in
 * test/fixtures, or rewrite it when AMARKTAI_UPDATE_GOLDEN=1.
 */
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { hostKeyFingerprint } from "../../components/model";
import { REPO } from "../../tools/vm";

/** Replaces what changes from run to run (stack name, the VM's SSH port, keys, hashes, timings) with placeholders. */
export function normalizePreview(text: string, stackName: string, sshPort: number, hostKeys: readonly string[] = []): string {
    // Resource names and ids carry the host key's fingerprint: the same placeholder for every run. Previews show
    // connections as secrets, so the keys come from the caller (and from any the text still shows).
    const fingerprints = [...new Set([...hostKeys, ...(text.match(/ssh-ed25519 [A-Za-z0-9+/=]+/g) ?? [])])].map(hostKeyFingerprint);
    const named = fingerprints.reduce((t, fp) => t.split(fp).join("<host>"), text);
    return sortDeleteBlocks(named)
        .split(stackName)
        .join("<stack>")
        .replace(/ssh-ed25519 [A-Za-z0-9+/=]+/g, "ssh-ed25519 <host-key>")
        .replace(/"[0-9a-f]{16}"/g, '"<hash>"')
        .replace(/\/releases\/[0-9a-f]{16}\//g, "/releases/<release>/")
        .replace(new RegExp(`\\b${sshPort}\\b`, "g"), "<ssh-port>")
        .replace(/\[secret [0-9a-f]{12}\]/g, "[secret <fingerprint>]")
        .replace(/^Duration: .*$/gm, "Duration: <t>")
        .replace(/[ \t]+$/gm, "")
        .trimEnd() + "\n";
}

/**
 * The engine plans the deletes of resources that do not depend on each other in no fixed order
 * (seen: 20-memory, 10-logging, 30-cpu in one run, another order in the next), so each run of
 * adjacent `(delete)` steps is put in URN order. The text of every step is kept as it was.
 */
export function sortDeleteBlocks(text: string): string {
    const lines = text.split("\n");
    const isStep = (l: string) => /^ {4}[-+~]{0,2} ?\S+: \((create|update|delete|replace|same|read|refresh)[^)]*\)$/.test(l) || /^ {4}--outputs:--$/.test(l);
    const out: string[] = [];
    let i = 0;
    while (i < lines.length) {
        if (!(isStep(lines[i]!) && /\(delete\)$/.test(lines[i]!))) {
            out.push(lines[i]!);
            i++;
            continue;
        }
        const blocks: string[][] = [];
        while (i < lines.length && isStep(lines[i]!) && /\(delete\)$/.test(lines[i]!)) {
            const block = [lines[i]!];
            i++;
            while (i < lines.length && !isStep(lines[i]!) && /^ {5,}/.test(lines[i]!)) block.push(lines[i++]!);
            blocks.push(block);
        }
        const urn = (b: string[]) => b.find((l) => l.includes("[urn=")) ?? b[0]!;
        blocks.sort((a, b) => (urn(a) < urn(b) ? -1 : urn(a) > urn(b) ? 1 : 0));
        for (const b of blocks) out.push(...b);
    }
    return out.join("\n");
}

/** Compares `actual` with test/fixtures/<name>, or writes it when AMARKTAI_UPDATE_GOLDEN=1. */
export function assertGolden(name: string, actual: string): void {
    const file = path.join(REPO, "test", "fixtures", name);
    if (process.env.AMARKTAI_UPDATE_GOLDEN === "1") {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, actual);
        return;
    }
    assert.ok(fs.existsSync(file), `golden file ${name} is missing: run the test with AMARKTAI_UPDATE_GOLDEN=1 and review it`);
    assert.equal(actual, fs.readFileSync(file, "utf8"), `output differs from test/fixtures/${name} (AMARKTAI_UPDATE_GOLDEN=1 rewrites it after review)`);
}

/** The changed lines (`- …` / `+ …`) of a `pulumi preview --diff` output, trimmed. */
export function changedLines(preview: string): string[] {
    return preview
        .split("\n")
        .filter((l) => /^\s+[-+] /.test(l) && !/^\s+[-+] pulumi/.test(l))
        .map((l) => l.trim());
}

/**
 * Asserts that a preview shows every line of `text` in full: an added or
 * removed file's `content` is printed whole (scripts/pulumi passes
 * `--show-full-output`) as one quoted string, never cut after three lines.
 */
export function assertShowsEveryLine(preview: string, text: string, what: string): void {
    const shown = preview
        .split("\n")
        .map((l) => /^\s*[-+]?\s*content\s*:\s*(".*")$/.exec(l))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => {
            try {
                return JSON.parse(m[1]!) as string;
            } catch {
                return "";
            }
        });
    assert.ok(text.length > 0 && shown.includes(text), `the preview does not show every line of ${what}:\n${text}\n--- preview:\n${preview}`);
}
