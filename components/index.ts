/**
 * amarktai-infra: run a Python (uvicorn) API as a hardened systemd service
 * with Pulumi, over SSH. The Amarktai Network API is the first preset: the
 * config schema's defaults are its service notes.
 */
export * from "./config";
export * from "./systemd";
export * from "./host/shell";
export * from "./host/scripts";
export * from "./files";
export * from "./service";
export * from "./transport/resources";
export { SshConnection, runAsRoot, closeAllConnections, RemoteCommandError } from "./transport/ssh";
export { main } from "./program";
