/**
 * State written by earlier releases of the library, brought to today's shape
 * before it is compared or acted on. Release 0.1.0 described each managed
 * file as one `PATH MODE OWNER:GROUP EFFECT` line; this is the only place
 * such a line is read, and nothing writes one any more.
 */
import { FILE_EFFECTS, FileEffect, ManagedFile } from "../../model";

/** Reads a 0.1.0 `PATH MODE OWNER:GROUP EFFECT` line. */
export function legacyManagedFile(line: string): ManagedFile {
    const m = /^(\/\S+) ([0-7]{4}) ([a-z_][a-z0-9_-]*):([a-z_][a-z0-9_-]*) (\S+)$/.exec(line);
    if (!m || !FILE_EFFECTS.includes(m[5] as FileEffect)) {
        throw new Error(`state written by an earlier release holds an unreadable file entry: ${JSON.stringify(line)}`);
    }
    return { path: m[1]!, mode: m[2]!, owner: m[3]!, group: m[4]!, effect: m[5] as FileEffect };
}

/** A HostFile's `file` as today's object, from today's state or 0.1.0's line. */
export function managedFileOf(file: ManagedFile | string): ManagedFile {
    return typeof file === "string" ? legacyManagedFile(file) : file;
}

/** An activation's files by path, from today's state or 0.1.0's list of lines. */
export function activationFilesOf(files: Record<string, Omit<ManagedFile, "path">> | string[] | undefined): ManagedFile[] {
    if (files === undefined) return [];
    if (Array.isArray(files)) return files.map(legacyManagedFile);
    return Object.entries(files).map(([path, f]) => ({ path, mode: f.mode, owner: f.owner, group: f.group, effect: f.effect }));
}
