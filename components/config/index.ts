// config: the one zod schema of the stack configuration and its loader (errors name the key). May import model.
// The docs generator (docs.ts) is imported by tools/gen-docs.ts only, never at deploy time.
export * from "./schema";
export * from "./load";
export * from "./boundary";
export * from "./requirements";
export * from "./units";
