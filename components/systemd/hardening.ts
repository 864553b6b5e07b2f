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

/**
 * What the `strict` profile adds on top of the notes' block. Measured on the
 * test VM (systemd 257): `systemd-analyze security` scores the notes' unit
 * 7.9 and this profile 1.1, with the service healthy, writing its logs and
 * making outbound TCP connections. What is left costs outbound networking
 * (PrivateNetwork=, AF_INET/AF_INET6/AF_UNIX, IPAddressDeny=). Python
 * packages that use cffi's old-style `ffi.callback()` need
 * MemoryDenyWriteExecute=no (drop-in override).
 */
export function strictHardeningExtras(): Directive<"Service">[] {
    return [
        s("CapabilityBoundingSet", ""),
        s("AmbientCapabilities", ""),
        s("PrivateDevices", "true"),
        s("DevicePolicy", "closed"),
        s("PrivateUsers", "true"),
        s("PrivateIPC", "true"),
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
        s("KeyringMode", "private"),
        s("UMask", "0027"),
        s("SystemCallArchitectures", "native"),
        s("SystemCallFilter", "@system-service"),
        s("SystemCallFilter", "~@privileged @resources"),
        s("SystemCallErrorNumber", "EPERM"),
    ];
}
