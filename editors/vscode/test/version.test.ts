import { test } from "node:test";
import * as assert from "node:assert/strict";
import { checkVersion, compareVersions, parseVersion, MIN_VERSION } from "../src/version";

test("parseVersion", async (t) => {
  const cases = [
    { name: "json", out: '{"version":"0.2.0","go":"go1.26.8","platform":"linux/amd64"}\n', want: "0.2.0" },
    { name: "json with revision", out: '{"version":"0.3.1","go":"go1.26.8","platform":"linux/amd64","revision":"abc","modified":true}', want: "0.3.1" },
    { name: "plain line (no --json)", out: "dfill 0.1.4 (go1.25.1, linux/amd64)\n", want: "0.1.4" },
    { name: "plain line with v", out: "dfill v0.2.0-dev (go1.26.8)", want: "0.2.0-dev" },
    { name: "usage text", out: "flag provided but not defined: -json\nusage: dfill ...", want: undefined },
    { name: "empty json version", out: '{"version":""}', want: undefined },
    { name: "nothing", out: "", want: undefined },
  ];
  for (const c of cases) {
    await t.test(c.name, () => assert.equal(parseVersion(c.out), c.want));
  }
});

test("compareVersions", async (t) => {
  const cases = [
    { name: "equal", a: "0.2.0", b: "0.2.0", sign: 0 },
    { name: "patch newer", a: "0.2.1", b: "0.2.0", sign: 1 },
    { name: "minor older", a: "0.1.9", b: "0.2.0", sign: -1 },
    { name: "numeric not lexical", a: "0.10.0", b: "0.9.0", sign: 1 },
    { name: "major", a: "1.0.0", b: "0.99.99", sign: 1 },
    { name: "leading v", a: "v0.2.0", b: "0.2.0", sign: 0 },
    { name: "pre-release counts as its core", a: "0.2.0-dev", b: "0.2.0", sign: 0 },
  ];
  for (const c of cases) {
    await t.test(c.name, () => assert.equal(Math.sign(compareVersions(c.a, c.b) as number), c.sign));
  }
  await t.test("not a version", () => assert.equal(compareVersions("devel", "0.2.0"), undefined));
});

test("checkVersion", async (t) => {
  await t.test("the minimum passes", () => {
    assert.deepEqual(checkVersion("/bin/dfill", `{"version":"${MIN_VERSION}"}`), { ok: true, version: MIN_VERSION });
  });
  await t.test("older is refused with what to do", () => {
    const r = checkVersion("/opt/dfill", '{"version":"0.1.3"}');
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.reason === "old");
    assert.match(!r.ok ? r.message : "", /\/opt\/dfill is dfill 0\.1\.3; this extension needs dfill 0\.2\.0 or newer/);
  });
  await t.test("no version is refused", () => {
    const r = checkVersion("/usr/bin/true", "");
    assert.ok(!r.ok && r.reason === "unknown");
    assert.match(!r.ok ? r.message : "", /\/usr\/bin\/true did not report its version/);
  });
});
