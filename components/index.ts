/**
 * amarktai-infra: run a Python (uvicorn) API as a hardened systemd service
 * with Pulumi, over SSH. The Amarktai Network API is the first preset: the
 * config schema's defaults are its service notes.
 *
 * The public API: the component, config loading and the config and output
 * types. Everything else is internal and may change between releases.
 */
export { SystemdService, SystemdServiceArgs, HostTarget, HostOutputs } from "./pulumi/service";
export { serviceConfig, ServiceConfig, loadConfig, ConfigError, StackConfig, SecretConfig, HostConfig, OverrideConfig, stackConfigSchema, secretConfigSchema } from "./config";
export { AppSourceFile, readAppSource, planService, ServicePlan } from "./plan";
