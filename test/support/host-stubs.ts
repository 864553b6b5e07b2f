/**
 * Runs generated host-script lines for real in bash on this machine, with
 * stand-ins for the host's commands (`systemctl`, `cloud-init`, `python3`,
 * `systemd-run`, …) first on PATH. Each stand-in records how it was called,
 * so a test can tell what a script ran, and in which order.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

/** What a run of lines did. */
export interface StubbedRun {
    readonly code: number | null;
    readonly stdout: string;
    readonly stderr: string;
    /** How long the run took, in milliseconds. */
    readonly ms: number;
    /** `NAME ARGS…` per stand-in call, in order. */
    readonly calls: string[];
}

/** A scratch directory for one test: stand-in commands in `bin/`, anything else beside it. */
export class StubHost {
    readonly dir: string;
    private readonly bin: string;
    private readonly callLog: string;

    constructor() {
        // Root-owned 0755 and not under /tmp: the checks under test refuse directories others can write.
        this.dir = fs.mkdtempSync(path.join(os.homedir(), ".stub-host-"));
        fs.chmodSync(this.dir, 0o755);
        this.bin = path.join(this.dir, "bin");
        fs.mkdirSync(this.bin);
        this.callLog = path.join(this.dir, "calls");
        fs.writeFileSync(this.callLog, "");
    }

    /** Puts a stand-in `name` on PATH: a bash script `body` (its arguments in "$@"), after recording the call. */
    command(name: string, body: string): this {
        const file = path.join(this.bin, name);
        fs.writeFileSync(file, `#!/bin/bash\nprintf '%s\\n' "${name}${"${*:+ $*}"}" >> ${JSON.stringify(this.callLog)}\n${body}\n`, { mode: 0o755 });
        return this;
    }

    /** Writes `content` to `relative` inside the scratch directory and returns its path. */
    file(relative: string, content: string, mode = 0o644): string {
        const p = path.join(this.dir, relative);
        fs.mkdirSync(path.dirname(p), { recursive: true });
        fs.writeFileSync(p, content, { mode });
        return p;
    }

    /**
     * Runs `script` in bash with the stand-ins first on PATH. `onStdout` sees
     * the output as it comes (to act on a line, e.g. let a stand-in finish).
     */
    run(script: string, options: { onStdout?: (soFar: string) => void; timeoutMs?: number } = {}): Promise<StubbedRun> {
        const started = Date.now();
        return new Promise((resolve, reject) => {
            const child = spawn("bash", ["-c", script], { env: { ...process.env, PATH: `${this.bin}:${process.env.PATH ?? "/usr/bin:/bin"}` }, stdio: ["ignore", "pipe", "pipe"] });
            let stdout = "";
            let stderr = "";
            const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
            child.stdout.on("data", (d: Buffer) => {
                stdout += d.toString();
                options.onStdout?.(stdout);
            });
            child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
            child.on("error", reject);
            child.on("close", (code) => {
                clearTimeout(timer);
                resolve({ code, stdout, stderr, ms: Date.now() - started, calls: fs.readFileSync(this.callLog, "utf8").split("\n").filter(Boolean) });
            });
        });
    }

    /** Removes the scratch directory. */
    done(): void {
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}
