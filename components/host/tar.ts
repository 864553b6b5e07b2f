/**
 * A minimal, deterministic tar (POSIX pax) writer: regular files only, owned
 * by root, mtime 0, long paths in pax headers. The host unpacks it with
 * Python's `tarfile` and its `data` filter, so the whole app travels in one
 * stream on stdin, whatever its size or number of files.
 */

/** One entry: a path relative to the archive root, its bytes and octal mode. */
export interface TarEntry {
    readonly path: string;
    readonly content: Uint8Array;
    readonly mode: string;
}

const BLOCK = 512;

function octal(value: number, width: number): string {
    return value.toString(8).padStart(width - 1, "0") + "\0";
}

function header(name: string, size: number, mode: number, type: "0" | "x"): Buffer {
    const h = Buffer.alloc(BLOCK, 0);
    h.write(name, 0, 100, "utf8");
    h.write(octal(mode, 8), 100, "ascii");
    h.write(octal(0, 8), 108, "ascii");
    h.write(octal(0, 8), 116, "ascii");
    h.write(octal(size, 12), 124, "ascii");
    h.write(octal(0, 12), 136, "ascii");
    h.write("        ", 148, "ascii");
    h.write(type, 156, "ascii");
    h.write("ustar\0", 257, "ascii");
    h.write("00", 263, "ascii");
    h.write("root", 265, "ascii");
    h.write("root", 297, "ascii");
    let sum = 0;
    for (const b of h) sum += b;
    h.write(octal(sum, 7) + " ", 148, "ascii");
    return h;
}

function padded(data: Uint8Array): Buffer[] {
    const rest = data.length % BLOCK;
    return rest === 0 ? [Buffer.from(data)] : [Buffer.from(data), Buffer.alloc(BLOCK - rest, 0)];
}

/** A pax record `"<len> path=<value>\n"`, whose length counts itself. */
function paxRecord(key: string, value: string): string {
    const body = ` ${key}=${value}\n`;
    let len = Buffer.byteLength(body) + 1;
    while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
    return `${len}${body}`;
}

/** The tar archive of `entries`, in the order given. */
export function tarArchive(entries: readonly TarEntry[]): Buffer {
    const parts: Buffer[] = [];
    for (const e of entries) {
        const mode = parseInt(e.mode, 8);
        if (Buffer.byteLength(e.path) > 99) {
            const pax = Buffer.from(paxRecord("path", e.path), "utf8");
            parts.push(header("././@PaxHeader", pax.length, 0o644, "x"), ...padded(pax));
        }
        const shortName = Buffer.byteLength(e.path) > 99 ? Buffer.from(e.path).subarray(0, 99).toString("utf8").replace(/\uFFFD$/, "") : e.path;
        parts.push(header(shortName, e.content.length, mode, "0"), ...padded(e.content));
    }
    parts.push(Buffer.alloc(BLOCK * 2, 0));
    return Buffer.concat(parts);
}
