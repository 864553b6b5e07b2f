/**
 * Hardening profiles. The service notes' directives are the floor of every
 * profile; `strict` adds the rest of systemd's sandbox that a Python web API
 * (uvicorn, outbound TCP, writes under its ReadWritePaths) tolerates.
 */
import { Directive, serviceDirective as s } from "./model";
import { renderPathList } from "./escape";

/** The notes' "Security hardening" block, in the notes' order. */
export function notesHardening(readWritePaths: readonly string[]): Directive<"Service">[] {
    return [
        s("NoNewPrivileges", "true"),
        s("PrivateTmp", "true"),
        s("ProtectSystem", "strict"),
        s("ProtectHome", "true"),
        s("ReadWritePaths", renderPathList(readWritePaths)),
        s("ProtectKernelTunables", "true"),
        s("ProtectControlGroups", "true"),
        s("RestrictRealtime", "true"),
    ];
}

/** What the `strict` profile adds on top of the notes' block. */
export function strictHardeningExtras(): Directive<"Service">[] {
    return [
        s("PrivateDevices", "true"),
        s("PrivateUsers", "true"),
        s("ProtectKernelModules", "true"),
        s("ProtectKernelLogs", "true"),
        s("ProtectClock", "true"),
        s("ProtectHostname", "true"),
        s("ProtectProc", "invisible"),
        s("ProcSubset", "pid"),
        s("RestrictSUIDSGID", "true"),
        s("RestrictNamespaces", "true"),
        s("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        s("LockPersonality", "true"),
        s("MemoryDenyWriteExecute", "true"),
        s("RemoveIPC", "true"),
        s("CapabilityBoundingSet", ""),
        s("AmbientCapabilities", ""),
        s("SystemCallArchitectures", "native"),
        s("SystemCallFilter", "@system-service"),
        s("SystemCallFilter", "~@privileged @resources"),
        s("SystemCallErrorNumber", "EPERM"),
        s("DevicePolicy", "closed"),
        s("KeyringMode", "private"),
        s("UMask", "0027"),
    ];
}
