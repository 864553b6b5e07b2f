// host: pure generators of every shell script sent to a host, and the one quoting function they use.
// May import model only; never Pulumi, never the network.
export * from "./shell";
export * from "./scripts";
export * from "./safe-fs";
export * from "./read";
export * from "./tar";
export * from "./release";
export * from "./resolve";
export * from "./listener";
export * from "./audit";
export * from "./apt";
export * from "./preflight";
export * from "./installer";
export * from "./sandbox";
export * from "./env-parse";
export * from "./env-read";
export * from "./operate";
export * from "./doctor";
export * from "./handover";
export * from "./adopt";
