/**
 * What the transport is waiting for (a host that does not answer SSH yet, a
 * long step), as one-line messages for whoever shows progress. The transport
 * never imports Pulumi: the Pulumi layer installs a reporter that shows them
 * in `pulumi up` (see `components/pulumi/providers/progress.ts`).
 */

/** Receives one line about something the transport is waiting for. It never receives a secret. */
export type ProgressReporter = (message: string) => void;

let reporter: ProgressReporter | undefined;

/**
 * Installs `next` as the one receiver of progress messages (`undefined`
 * removes it) and returns the one it replaces, so a caller can put it back.
 */
export function setProgressReporter(next: ProgressReporter | undefined): ProgressReporter | undefined {
    const previous = reporter;
    reporter = next;
    return previous;
}

/** Passes `message` to the installed reporter, if any; a reporter that throws never fails the step it reports on. */
export function reportProgress(message: string): void {
    try {
        reporter?.(message);
    } catch {
        // Progress is informational only.
    }
}
