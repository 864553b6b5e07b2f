/**
 * Renders the typed model to the exact text systemd reads.
 */
import { assertNoControlCharacters } from "./escape";
import { IniFile, Section } from "./model";

/** Renders one section: its header, then each group (comment first) with a blank line between groups. */
function renderSection(section: Section): string[] {
    const lines = [`[${section.name}]`];
    section.groups.forEach((group, index) => {
        if (index > 0) {
            lines.push("");
        }
        if (group.comment !== undefined) {
            assertNoControlCharacters(group.comment, "a comment");
            lines.push(`# ${group.comment}`);
        }
        for (const d of group.directives) {
            assertNoControlCharacters(d.value, `the value of ${d.name}=`);
            lines.push(`${d.name}=${d.value}`);
        }
    });
    return lines;
}

/** Renders a unit file, drop-in or journald.conf fragment; the text always ends with a newline. */
export function renderIniFile(file: IniFile): string {
    const blocks: string[][] = [];
    if (file.header && file.header.length > 0) {
        blocks.push(
            file.header.map((line) => {
                assertNoControlCharacters(line, "a header line");
                return `# ${line}`;
            }),
        );
    }
    for (const section of file.sections) {
        if (section.groups.every((g) => g.directives.length === 0)) {
            continue;
        }
        blocks.push(renderSection(section));
    }
    return blocks.map((b) => b.join("\n")).join("\n\n") + "\n";
}

/** One parsed `Name=value` line with the section it stands in. */
export interface ParsedDirective {
    readonly section: string;
    readonly name: string;
    readonly value: string;
}

/**
 * Parses unit-file text into its directives in order, ignoring comments and
 * blank lines. Used to compare files directive for directive.
 */
export function parseIniDirectives(text: string): ParsedDirective[] {
    const out: ParsedDirective[] = [];
    let current = "";
    for (const raw of text.split("\n")) {
        const line = raw.trim();
        if (line === "" || line.startsWith("#") || line.startsWith(";")) {
            continue;
        }
        const header = /^\[([^\]]+)\]$/.exec(line);
        if (header) {
            current = header[1]!;
            continue;
        }
        const eq = line.indexOf("=");
        if (eq < 0) {
            throw new Error(`not a directive: ${JSON.stringify(line)}`);
        }
        out.push({ section: current, name: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim() });
    }
    return out;
}
