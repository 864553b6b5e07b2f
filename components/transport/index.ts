// transport: SSH only (ssh2) — pinned host key, one pooled connection per host, content on stdin, a dial that
// waits (bounded, reported) for a host still booting, a time limit on every step.
// May import host/shell (the quoting function) and model; never Pulumi.
export * from "./ssh";
export * from "./progress";
