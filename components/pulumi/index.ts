// pulumi: the Pulumi layer — the SystemdService component, the dynamic resources (resources.ts) and
// their providers (providers/, one file per resource), and the stack program (program.ts). The only
// layer that imports @pulumi/pulumi; may import every other layer.
export * from "./service";
export * from "./resources";
export { main, validatedConfig } from "./program";
