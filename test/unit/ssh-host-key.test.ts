import { test } from "node:test";
import * as assert from "node:assert/strict";
import { hostKeyAlgorithms, hostKeyBlob, hostKeyMismatchMessage, keyTypeOfBlob } from "../../components/transport/ssh";

const ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJrLw0/yHgIQgd1mOq03l/DYoJq/TmjmAsaEpj7CY3VG";
/** An ECDSA P-256 blob's header: the type string, then the curve name (the point itself does not matter here). */
function ecdsaBlob(): Buffer {
    const str = (s: string) => Buffer.concat([Buffer.from([0, 0, 0, s.length]), Buffer.from(s, "latin1")]);
    return Buffer.concat([str("ecdsa-sha2-nistp256"), str("nistp256"), str("\u0004point")]);
}

test("the negotiated host-key algorithms are the pinned key's own", () => {
    assert.deepEqual(hostKeyAlgorithms("ssh-ed25519"), ["ssh-ed25519"]);
    assert.deepEqual(hostKeyAlgorithms("ecdsa-sha2-nistp256"), ["ecdsa-sha2-nistp256"]);
    assert.deepEqual(hostKeyAlgorithms("ecdsa-sha2-nistp521"), ["ecdsa-sha2-nistp521"]);
    assert.deepEqual(hostKeyAlgorithms("ssh-rsa"), ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]);
    assert.throws(() => hostKeyAlgorithms("ssh-dss"), /not supported/);
});

test("the key type is read from the presented blob", () => {
    assert.equal(keyTypeOfBlob(hostKeyBlob(ED25519)), "ssh-ed25519");
    assert.equal(keyTypeOfBlob(ecdsaBlob()), "ecdsa-sha2-nistp256");
    assert.equal(keyTypeOfBlob(Buffer.from([1])), "unknown");
});

test("a mismatch names the presented and the pinned key types", () => {
    const other = hostKeyMismatchMessage("ubuntu@h:22", ecdsaBlob(), ED25519);
    assert.match(other, /the host presented a ecdsa-sha2-nistp256 key, the pinned key is ssh-ed25519\. Nothing was run\./);
    const same = hostKeyMismatchMessage("ubuntu@h:22", hostKeyBlob(ED25519), ED25519);
    assert.match(same, /the host presented a different ssh-ed25519 key than the pinned one/);
});
