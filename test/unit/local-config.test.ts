import { test } from "node:test";
import * as assert from "node:assert/strict";
import { parse } from "yaml";
import { fillLocalConfig, withSalt } from "../../scripts/lib/local-config";

const USER_FILE = `# my local stack
encryptionsalt: v1:abc
config:
  amarktai-infra:app:
    sourceDir: demo-app   # the demo
  # my override, added by hand
  amarktai-infra:overrides:
    workers:
      workers: 2
  amarktai-infra:hosts:
    - name: local-vm
      address: 127.0.0.1
      port: 2222
      user: ubuntu
      hostKey: ssh-ed25519 AAAAold
  amarktai-infra:sshPrivateKey:
    secure: v1:xyz
`;
const VM = [{ name: "local-vm", address: "127.0.0.1", port: 2299, user: "ubuntu", hostKey: "ssh-ed25519 AAAAnew" }];

test("filling in the local VM changes only hosts: the user's settings, comments and secrets stay as written", () => {
    const { text, hostsChanged } = fillLocalConfig(USER_FILE, VM);
    assert.equal(hostsChanged, true);
    const before = USER_FILE.split("\n");
    const after = text.split("\n");
    const removed = before.filter((l) => !after.includes(l));
    assert.deepEqual(removed, ["      port: 2222", "      hostKey: ssh-ed25519 AAAAold"]);
    for (const line of ["# my local stack", "    sourceDir: demo-app   # the demo", "  # my override, added by hand", "      workers: 2", "    secure: v1:xyz"]) {
        assert.ok(after.includes(line), `lost: ${line}\n${text}`);
    }
    const parsed = parse(text);
    assert.deepEqual(parsed.config["amarktai-infra:hosts"], VM);
    assert.deepEqual(parsed.config["amarktai-infra:overrides"], { workers: { workers: 2 } });
});

test("a second run against the same VM leaves the file byte for byte as it is", () => {
    const once = fillLocalConfig(USER_FILE, VM).text;
    const twice = fillLocalConfig(once, VM);
    assert.equal(twice.hostsChanged, false);
    assert.equal(twice.text, once);
});

test("the template without hosts gets them; a new stack's salt is taken without touching the rest", () => {
    const template = "# template\nconfig:\n  # flags\n  amarktai-infra:env:\n    ENABLE_TRADING: \"false\"\n";
    const filled = fillLocalConfig(template, VM).text;
    assert.ok(filled.startsWith("# template\nconfig:\n  # flags\n  amarktai-infra:env:\n    ENABLE_TRADING: \"false\"\n"), filled);
    assert.deepEqual(parse(filled).config["amarktai-infra:hosts"], VM);
    const salted = withSalt(filled, "v1:new");
    assert.equal(parse(salted).encryptionsalt, "v1:new");
    assert.ok(salted.includes("  # flags\n"));
});
