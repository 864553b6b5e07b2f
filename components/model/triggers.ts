/**
 * What a change to a managed file triggers on the host, as data (in the
 * spirit of NixOS's `restartTriggers`/`reloadTriggers`): read by the plan,
 * by previews and by the generated activation script, never re-derived.
 */
import { FileEffect } from "./files";

/** An action the activation takes once, after swapping files in. */
export type HostAction =
    /** `systemctl daemon-reload`. */
    | "daemon-reload"
    /** Restart the service (and health-check it). */
    | "restart-service"
    /** Restart systemd-journald. */
    | "restart-journald";

/** Every {@link HostAction}, in the order the activation takes them. */
export const HOST_ACTIONS: readonly HostAction[] = ["daemon-reload", "restart-journald", "restart-service"];

/** For each kind of file, the actions a change (or removal) of one such file triggers. */
export const EFFECT_TRIGGERS: Readonly<Record<FileEffect, readonly HostAction[]>> = {
    systemd: ["daemon-reload", "restart-service"],
    restart: ["restart-service"],
    journald: ["restart-journald"],
};

/** Whether changing a file of kind `effect` triggers `action`. */
export function triggers(effect: FileEffect, action: HostAction): boolean {
    return EFFECT_TRIGGERS[effect].includes(action);
}
