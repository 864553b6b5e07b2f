// model: plain data every layer shares — the files a service owns on a host, what a change to each
// triggers, where the library keeps its state, host naming, text rules. Imports nothing of the project.
export * from "./files";
export * from "./triggers";
export * from "./host";
export * from "./text";
export * from "./hash";
export * from "./host-spec";
export * from "./release";
export * from "./ssh-key";
export * from "./dropin";
export * from "./operated";
export * from "./adoption";
