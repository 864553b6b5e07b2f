import { test } from "node:test";
import * as assert from "node:assert/strict";
import { envStorePath } from "../../components/model";
import { planService } from "../../components/plan";
import { testConfig } from "../support/config";

test("without the app in releases, the activation keeps the notes' .env path as a link to the root-owned file", () => {
    const plan = planService(testConfig());
    assert.deepEqual(plan.links, [{ path: "/var/amarktai/app/backend/.env", target: envStorePath("amarktai-api") }]);
});

test("with the app in releases, the activation keeps (and so repairs) the .env link inside the current release", () => {
    const plan = planService(testConfig({ app: { sourceDir: "demo-app" } }), [{ relativePath: "server.py", content: "app = None\n" }]);
    assert.equal(plan.links.length, 1);
    const link = plan.links[0]!;
    assert.equal(link.target, envStorePath("amarktai-api"));
    assert.equal(link.path, `/var/amarktai/releases/${plan.release.spec.id}/app/.env`);
});
