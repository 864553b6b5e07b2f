// transport: SSH only (ssh2) — pinned host key, one pooled connection per host, content on stdin.
// May import host/shell (the quoting function) and model; never Pulumi.
export * from "./ssh";
