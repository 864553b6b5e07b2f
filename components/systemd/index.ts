// systemd: the typed unit/drop-in model, escaping, rendering, hardening profiles, journald and the .env renderer.
// Pure; may import config and model.
export * from "./model";
export * from "./escape";
export * from "./render";
export * from "./hardening";
export * from "./service";
export * from "./envfile";
