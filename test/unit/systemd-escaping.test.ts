import { test } from "node:test";
import * as assert from "node:assert/strict";
import { quoteExecArgument, renderCommandLine, renderEnvironmentAssignment, renderIniFile, renderPath, section, group, serviceDirective } from "../../components/systemd";

test("plain command-line words are left as they are", () => {
    assert.equal(quoteExecArgument("server:app"), "server:app");
    assert.equal(quoteExecArgument("--port"), "--port");
});

test("% and $ in command-line arguments are doubled so they reach the program literally", () => {
    assert.equal(quoteExecArgument("100%"), '"100%%"');
    assert.equal(quoteExecArgument("$HOME"), '"$$HOME"');
});

test("arguments with spaces, quotes or backslashes are double-quoted with C escapes", () => {
    assert.equal(quoteExecArgument('a b'), '"a b"');
    assert.equal(quoteExecArgument('say "x"'), '"say \\"x\\""');
    assert.equal(quoteExecArgument("back\\slash"), '"back\\\\slash"');
    assert.equal(quoteExecArgument(""), '""');
});

test("newlines and control characters are refused in arguments, values and comments", () => {
    assert.throws(() => quoteExecArgument("a\nb"), /newlines or control characters/);
    assert.throws(() => renderEnvironmentAssignment("X", "a\rb"), /newlines or control characters/);
    assert.throws(() => renderIniFile({ sections: [section("Service", group([serviceDirective("Restart", "no\nExecStart=/bin/sh")]))] }), /newlines or control characters/);
});

test("a command line needs an absolute program path", () => {
    assert.throws(() => renderCommandLine(["python", "-m", "x"]), /absolute path/);
    assert.equal(renderCommandLine(["/usr/bin/env", "A=b c"]), '/usr/bin/env "A=b c"');
});

test("Environment= assignments are quoted as in the notes and refuse invalid names", () => {
    assert.equal(renderEnvironmentAssignment("PATH", "/var/amarktai/venv/bin"), '"PATH=/var/amarktai/venv/bin"');
    assert.throws(() => renderEnvironmentAssignment("1BAD", "x"), /not a valid name/);
});

test("paths must be absolute without whitespace, and % is escaped", () => {
    assert.equal(renderPath("/srv/100%"), "/srv/100%%");
    assert.throws(() => renderPath("relative/path"), /absolute/);
    assert.throws(() => renderPath("/with space"), /whitespace/);
});

test("an empty value renders as a reset line", () => {
    assert.equal(renderIniFile({ sections: [section("Service", group([serviceDirective("ExecStart", "")]))] }), "[Service]\nExecStart=\n");
});

test("a % in Description= is doubled, so systemd shows it literally instead of expanding a specifier", async () => {
    const { renderSystemdFiles } = await import("../../components/systemd");
    const { testConfig } = await import("../support/config");
    const unit = renderSystemdFiles(testConfig({ description: "%n on %H (100%)" })).unit.text;
    assert.match(unit, /^Description=%%n on %%H \(100%%\)$/m);
    // Every other directive value that may hold a % is escaped too: no single % is left anywhere in the unit.
    const hostile = renderSystemdFiles(testConfig({ description: "%i", overrides: { e: { environment: { A: "%h" } } } }));
    for (const text of [hostile.unit.text, ...hostile.dropIns.map((d) => d.text)]) {
        assert.doesNotMatch(text.replace(/%%/g, ""), /%/);
    }
});
