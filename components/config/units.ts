/**
 * systemd's units, read the way systemd reads them, so a limit can be
 * compared with a floor before it is written: byte sizes (base 1024) and
 * time spans.
 */

/** The factor of each byte-size suffix (systemd's `parse_size` with base 1024). */
const SIZE_FACTORS: Readonly<Record<string, number>> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/**
 * The bytes a systemd size such as `2G`, `1.5G` or `512M` stands for
 * (`infinity`: `Infinity`), or undefined when it is not one.
 */
export function bytesOfSize(size: string): number | undefined {
    if (size === "infinity") return Infinity;
    const m = /^(\d+(?:\.\d+)?)([KMGT]?)$/.exec(size);
    return m ? Math.floor(Number(m[1]) * SIZE_FACTORS[m[2]!]!) : undefined;
}

/** The seconds of each time-span unit (systemd's `parse_sec`: a month is 30.44 days, a year 365.25). */
const SPAN_SECONDS: Readonly<Record<string, number>> = {
    us: 1e-6,
    ms: 1e-3,
    s: 1, sec: 1, second: 1, seconds: 1,
    m: 60, min: 60, minute: 60, minutes: 60,
    h: 3600, hr: 3600, hour: 3600, hours: 3600,
    d: 86400, day: 86400, days: 86400,
    w: 604800, week: 604800, weeks: 604800,
    month: 2629800, months: 2629800,
    y: 31557600, year: 31557600, years: 31557600,
};

/**
 * The seconds a systemd time span stands for: a number of seconds, or
 * parts such as `30day`, `1h 30min`; undefined when it is not one.
 */
export function secondsOfSpan(span: number | string): number | undefined {
    if (typeof span === "number") return span;
    const parts = [...span.matchAll(/(\d+)\s*([a-z]+)\s*/g)];
    if (parts.length === 0 || parts.map((p) => p[0]).join("") !== span.replace(/^\s+/, "")) return undefined;
    let seconds = 0;
    for (const [, value, unit] of parts) {
        const factor = SPAN_SECONDS[unit!];
        if (factor === undefined) return undefined;
        seconds += Number(value) * factor;
    }
    return seconds;
}

/** Shows a byte count the way the config writes sizes (`16M`, `1.5G`). */
export function showSize(bytes: number): string {
    for (const suffix of ["T", "G", "M", "K"]) {
        const factor = SIZE_FACTORS[suffix]!;
        if (bytes >= factor) return `${Number((bytes / factor).toFixed(2))}${suffix}`;
    }
    return String(bytes);
}
