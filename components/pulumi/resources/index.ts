// resources: the library's dynamic resources, one file per resource (their providers are in ../providers).
export { ConnectionInput, HostArgs } from "./library-resource";
export * from "./host-adoption";
export * from "./host-prepare";
export * from "./host-file";
export * from "./service-activation";
export * from "./random-secret";
export * from "./app-release";
export * from "./resolved-requirements";
