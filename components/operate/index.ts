// operate: the operator command (`amarktai-ops`, `scripts/ops`): status, logs, restart and doctor on every
// host of a stack, from the stack's own config. May import config, model, plan, host and transport; never
// @pulumi/pulumi (it reads the stack with the CLI, and needs no engine).
export * from "./args";
export * from "./stack";
export * from "./format";
export { main } from "./cli";
