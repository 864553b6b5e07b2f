export * from "./model";
export * from "./escape";
export * from "./render";
export * from "./hardening";
export * from "./service";
export * from "./envfile";
