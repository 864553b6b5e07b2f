/**
 * Upgrade shim, not transport: the providers serialized into state by release
 * 0.1.0 load their code from `dist/components/transport/providers.js`, and
 * Pulumi uses a resource's stored provider to refresh and delete it. This
 * keeps stacks deployed with that release refreshable and destroyable.
 */
export { providers } from "../pulumi/providers";
