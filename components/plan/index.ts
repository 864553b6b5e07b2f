// plan: config (+ the app's source files) → everything one service puts on a host: files with their
// modes, owners and triggers, the host preparation, purge paths, the health URL. Pure but for reading
// the app's source; may import config, model and systemd. `render` shows a plan without the engine.
export * from "./plan";
export * from "./app-source";
export * from "./release";
export * from "./operated";
export * from "./adopt";
