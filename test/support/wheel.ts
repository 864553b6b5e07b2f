/**
 * Pure-Python wheels built in memory, for tests that serve their own package
 * index: a zip archive with the modules given, the `.dist-info` metadata pip
 * and uv read, and a RECORD of every file's SHA-256. The bytes depend only on
 * the arguments (fixed timestamps), so two builds of one wheel are identical
 * and any change to a module gives another SHA-256.
 */
import * as crypto from "crypto";
import * as zlib from "zlib";

/** A built wheel. */
export interface Wheel {
    /** The file name an index serves it under, e.g. `amarktai_lockdemo-1.0-py3-none-any.whl`. */
    readonly fileName: string;
    /** The archive's bytes. */
    readonly bytes: Buffer;
    /** SHA-256 of {@link bytes}, hex (what an index puts in a link's `#sha256=` fragment). */
    readonly sha256: string;
}

/** What a pure-Python wheel holds. */
export interface PurePythonWheelSpec {
    /** The distribution's name as published, e.g. `amarktai-lockdemo`. */
    readonly name: string;
    readonly version: string;
    /** Python files by their path inside the wheel, e.g. `{ "amarktai_lockdemo/__init__.py": "VERSION = \"1.0\"\n" }`. */
    readonly files: Readonly<Record<string, string>>;
}

/** The name as wheel file names and `.dist-info` directories spell it (PEP 427: runs of `-_.` become `_`). */
function wheelNamePart(name: string): string {
    return name.replace(/[-_.]+/g, "_").toLowerCase();
}

/** A RECORD line's hash: `sha256=` and the URL-safe base64 digest without padding. */
function recordHash(content: Buffer): string {
    return `sha256=${crypto.createHash("sha256").update(content).digest("base64url")}`;
}

/** Builds a `py3-none-any` wheel of `spec`. */
export function purePythonWheel(spec: PurePythonWheelSpec): Wheel {
    const base = `${wheelNamePart(spec.name)}-${spec.version}`;
    const distInfo = `${base}.dist-info`;
    const entries = new Map<string, Buffer>();
    for (const [path, text] of Object.entries(spec.files)) entries.set(path, Buffer.from(text, "utf8"));
    entries.set(`${distInfo}/METADATA`, Buffer.from(`Metadata-Version: 2.1\nName: ${spec.name}\nVersion: ${spec.version}\n`, "utf8"));
    entries.set(`${distInfo}/WHEEL`, Buffer.from("Wheel-Version: 1.0\nGenerator: amarktai-infra tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n", "utf8"));
    const record = [...entries].map(([path, content]) => `${path},${recordHash(content)},${content.length}`);
    entries.set(`${distInfo}/RECORD`, Buffer.from([...record, `${distInfo}/RECORD,,`].join("\n") + "\n", "utf8"));
    const bytes = zipArchive(entries);
    return { fileName: `${base}-py3-none-any.whl`, bytes, sha256: crypto.createHash("sha256").update(bytes).digest("hex") };
}

/** DOS time and date of every entry: 1980-01-01 00:00, the format's earliest (fixed, so the bytes are reproducible). */
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

/** A zip archive (deflated entries, no zip64, no comment) of `entries` in their order. */
function zipArchive(entries: ReadonlyMap<string, Buffer>): Buffer {
    const locals: Buffer[] = [];
    const centrals: Buffer[] = [];
    let offset = 0;
    for (const [path, content] of entries) {
        const name = Buffer.from(path, "utf8");
        const data = zlib.deflateRawSync(content);
        const crc = zlib.crc32(content);
        const local = Buffer.alloc(30);
        local.writeUInt32LE(0x04034b50, 0);
        local.writeUInt16LE(20, 4); // version needed: 2.0 (deflate)
        local.writeUInt16LE(0x0800, 6); // flags: names are UTF-8
        local.writeUInt16LE(8, 8); // deflate
        local.writeUInt16LE(DOS_TIME, 10);
        local.writeUInt16LE(DOS_DATE, 12);
        local.writeUInt32LE(crc, 14);
        local.writeUInt32LE(data.length, 18);
        local.writeUInt32LE(content.length, 22);
        local.writeUInt16LE(name.length, 26);
        local.writeUInt16LE(0, 28);
        const central = Buffer.alloc(46);
        central.writeUInt32LE(0x02014b50, 0);
        central.writeUInt16LE((3 << 8) | 20, 4); // made by: Unix, 2.0 (so the external attributes carry a mode)
        central.writeUInt16LE(20, 6);
        central.writeUInt16LE(0x0800, 8);
        central.writeUInt16LE(8, 10);
        central.writeUInt16LE(DOS_TIME, 12);
        central.writeUInt16LE(DOS_DATE, 14);
        central.writeUInt32LE(crc, 16);
        central.writeUInt32LE(data.length, 20);
        central.writeUInt32LE(content.length, 24);
        central.writeUInt16LE(name.length, 28);
        central.writeUInt16LE(0, 30); // extra field length
        central.writeUInt16LE(0, 32); // comment length
        central.writeUInt16LE(0, 34); // disk number
        central.writeUInt16LE(0, 36); // internal attributes
        central.writeUInt32LE(((0o100644 << 16) >>> 0), 38); // a regular file, mode 0644
        central.writeUInt32LE(offset, 42);
        locals.push(local, name, data);
        centrals.push(central, name);
        offset += local.length + name.length + data.length;
    }
    const directory = Buffer.concat(centrals);
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(0, 4);
    end.writeUInt16LE(0, 6);
    end.writeUInt16LE(entries.size, 8);
    end.writeUInt16LE(entries.size, 10);
    end.writeUInt32LE(directory.length, 12);
    end.writeUInt32LE(offset, 16);
    end.writeUInt16LE(0, 20);
    return Buffer.concat([...locals, directory, end]);
}
