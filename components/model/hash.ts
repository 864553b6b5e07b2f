/** Content hashing shared by the program (change detection) and the providers. */
import { createHash } from "crypto";

/** SHA-256 of a text (UTF-8) or of bytes, hex. */
export function sha256(content: string | Uint8Array): string {
    const h = createHash("sha256");
    return (typeof content === "string" ? h.update(content, "utf8") : h.update(content)).digest("hex");
}
