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
export function normalizePreview(text: string, stackName: string, sshPort: number): string {
    // Resource names and ids carry the host key's fingerprint: the same placeholder for every run.
    const fingerprints = [...new Set(text.match(/ssh-ed25519 [A-Za-z0-9+/=]+/g) ?? [])].map(hostKeyFingerprint);
    return fingerprints
        .reduce((t, fp) => t.split(fp).join("<host>"), text)
        .split(stackName)
        .join("<stack>")
        .replace(/ssh-ed25519 [A-Za-z0-9+/=]+/g, "ssh-ed25519 <host-key>")
        .replace(/"[0-9a-f]{16}"/g, '"<hash>"')
        .replace(new RegExp(`\\b${sshPort}\\b`, "g"), "<ssh-port>")
        .replace(/\[secret [0-9a-f]{12}\]/g, "[secret <fingerprint>]")
        .replace(/^Duration: .*$/gm, "Duration: <t>")
        .replace(/[ \t]+$/gm, "")
        .trimEnd() + "\n";
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
