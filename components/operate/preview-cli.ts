#!/usr/bin/env node
/**
 * Prints `pulumi preview --json` (read from stdin) as {@link formatPreview}
 * does: only what changes. Used by `scripts/preview`; input that is not the
 * preview's JSON (a preview that failed before it could plan) is passed
 * through as it is, and the exit status says so.
 */
import * as fs from "fs";
import { PreviewJson, formatPreview } from "./preview";

function main(): number {
    const text = fs.readFileSync(0, "utf8");
    let preview: PreviewJson;
    try {
        preview = JSON.parse(text) as PreviewJson;
    } catch {
        process.stdout.write(text);
        return 1;
    }
    process.stdout.write(formatPreview(preview));
    return 0;
}

process.exitCode = main();
