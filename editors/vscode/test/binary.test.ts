import { test } from "node:test";
import * as assert from "node:assert/strict";
import { findBinary } from "../src/binary";

const exists = (...files: string[]) => (p: string) => files.includes(p);

test("findBinary", async (t) => {
  await t.test("the setting wins over PATH", () => {
    assert.deepEqual(findBinary("/opt/dfill/bin/dfill", "/usr/bin", exists("/opt/dfill/bin/dfill", "/usr/bin/dfill"), "linux", "/home/u"), {
      ok: true,
      path: "/opt/dfill/bin/dfill",
      from: "setting",
    });
  });
  await t.test("~ in the setting is the home folder", () => {
    const r = findBinary("~/go/bin/dfill", "", exists("/home/u/go/bin/dfill"), "linux", "/home/u");
    assert.deepEqual(r, { ok: true, path: "/home/u/go/bin/dfill", from: "setting" });
  });
  await t.test("a setting that points nowhere says so and does not fall back to PATH", () => {
    const r = findBinary("/nope/dfill", "/usr/bin", exists("/usr/bin/dfill"), "linux", "/home/u");
    assert.ok(!r.ok);
    assert.match(!r.ok ? r.message : "", /dfill\.path is "\/nope\/dfill", but there is no executable file there/);
  });
  await t.test("first match on PATH, empty entries skipped", () => {
    const r = findBinary("", "::/a:/b:/c", exists("/b/dfill", "/c/dfill"), "linux", "/home/u");
    assert.deepEqual(r, { ok: true, path: "/b/dfill", from: "PATH" });
  });
  await t.test("missing everywhere", () => {
    const r = findBinary("  ", "/a:/b", exists(), "linux", "/home/u");
    assert.ok(!r.ok);
    assert.match(!r.ok ? r.message : "", /no dfill on PATH/);
  });
});
