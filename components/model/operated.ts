/** What the operator command needs to know about one service on its hosts: names and paths, never a secret. */

/** The `[Unit]` dependencies the service starts after or needs (the config's and every override's). */
export interface UnitDependencies {
    readonly after: readonly string[];
    readonly requires: readonly string[];
    readonly wants: readonly string[];
}

/** One deployed service, as `status`, `logs`, `restart` and `doctor` see it on each host. */
export interface OperatedService {
    readonly serviceName: string;
    /** `<serviceName>.service`. */
    readonly unitName: string;
    readonly user: string;
    readonly group: string;
    /** The socket unit holding the listener (`<serviceName>.socket`) when the service is socket-activated. */
    readonly socketUnit?: string;
    /** The URL probed inside the host (the app's bind address and port, `health.path`). */
    readonly healthUrl: string;
    /** The port of {@link healthUrl}: its listener must belong to the unit. */
    readonly healthPort: number;
    /** How long a restart may take to become healthy, in seconds. */
    readonly healthTimeoutSec: number;
    /** The notes' `.env` path (`paths.envFile`): a link to {@link envStore}. */
    readonly envLink: string;
    /** The real `.env`, root:group 0640, which `EnvironmentFile=` reads. */
    readonly envStore: string;
    /** The venv's interpreter (`paths.venv`/bin/python). */
    readonly venvPython: string;
    /** Where the app module is imported from (`paths.workingDirectory`). */
    readonly workingDirectory: string;
    /** The module part of `app.module` (`server` of `server:app`). */
    readonly appModule: string;
    /** The releases directory; its `current` link names the live release. */
    readonly releasesDir: string;
    /** The host's audit log of activations (JSON lines). */
    readonly auditLog: string;
    readonly dependencies: UnitDependencies;
}
