import { test } from "node:test";
import * as assert from "node:assert/strict";
import { contextAround, frames, insertedIn, MASK, Recorder, type DenoiseParams } from "../src/diffusion";

const M = MASK;

// show renders a frame's segments: [new text], {mask run}, old text as is.
function show(f: { segments: { kind: string; text: string }[] }): string {
  return f.segments.map((s) => (s.kind === "new" ? `[${s.text}]` : s.kind === "mask" ? `{${s.text.length}}` : s.text)).join("");
}

test("insertedIn", async (t) => {
  const cases = [
    { name: "empty to text", a: "", b: "ab", want: "11" },
    { name: "unchanged", a: "abc", b: "abc", want: "000" },
    { name: "mask replaced by a longer token", a: `x${M}y`, b: "xfooy", want: "01110" },
    { name: "two masks, one fixed", a: `${M}${M}`, b: `if${M}`, want: "110" },
    { name: "repeated text keeps the old copy", a: `!= ${M}`, b: "!= !=", want: "00011" },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const got = insertedIn(Array.from(c.a), Array.from(c.b)).map((x) => (x ? "1" : "0")).join("");
      assert.equal(got, c.want);
    });
  }
  await t.test("inserted count is the length difference plus the masks removed", () => {
    const a = Array.from(`\t\tif${M.repeat(20)}`);
    const b = Array.from(`\t\tif err${M.repeat(19)}`);
    assert.equal(insertedIn(a, b).filter(Boolean).length, 4);
  });
});

// The steps the embedded model sent for sample.go:8 (dfill/denoise, trimmed).
const steps = [`\t${M}${M}${M}${M}`, `\t\tif${M}${M}${M}`, `\t\tif err${M}${M}`, `\t\tif err !=${M}`, "\t\tif err != nil"];

test("frames: each step highlights what it fixed, masks stay masks", () => {
  const fs = frames({ texts: steps, steps: steps.length });
  assert.deepEqual(fs.map(show), [
    "[\t]{4}",
    "\t[\tif]{3}",
    "\t\tif[ err]{2}",
    "\t\tif err[ !=]{1}",
    "\t\tif err !=[ nil]",
  ]);
  assert.ok(fs.every((f) => !f.final));
  assert.deepEqual(
    fs.map((f) => [f.step, f.steps, f.fixed, f.masked]),
    [
      [1, 5, 1, 4],
      [2, 5, 3, 3],
      [3, 5, 4, 2],
      [4, 5, 3, 1],
      [5, 5, 4, 0],
    ],
  );
  // Every frame's text is the step's text.
  fs.forEach((f, i) => assert.equal(f.segments.map((s) => s.text).join(""), steps[i]));
});

test("frames: astral characters count as one", () => {
  const fs = frames({ texts: [`${M}${M}`, `😀${M}`], steps: 2 });
  assert.equal(show(fs[1]), "[😀]{1}");
});

const at = { line: 7, character: 0 };
const step = (i: number, n: number, text: string, uri = "file:///w/a.go", position = at): DenoiseParams => ({ uri, position, step: i, steps: n, text });

test("Recorder: keeps the last complete completion per document", () => {
  const r = new Recorder();
  let snapshots = 0;
  const ctx = () => {
    snapshots++;
    return { before: "if err != nil {\n", after: "\n}" };
  };
  assert.equal(r.add(step(1, 3, `a${M}${M}`), ctx), undefined);
  assert.equal(r.add(step(2, 3, `ab${M}`), ctx), undefined);
  assert.equal(r.last("file:///w/a.go")?.complete, false); // in progress is shown until one completes
  const done = r.add(step(3, 3, "abc"), ctx);
  assert.ok(done?.complete);
  assert.deepEqual(done?.texts, [`a${M}${M}`, `ab${M}`, "abc"]);
  assert.equal(snapshots, 1);
  assert.equal(done?.context?.before, "if err != nil {\n");

  // A newer completion that is superseded after one step does not hide the last complete one.
  r.add(step(1, 3, `x${M}${M}`, "file:///w/a.go", { line: 8, character: 1 }));
  assert.deepEqual(r.last("file:///w/a.go")?.texts, [`a${M}${M}`, `ab${M}`, "abc"]);

  // Another document has its own.
  r.add(step(1, 2, `q${M}`, "file:///w/b.go"));
  r.add(step(2, 2, "qq", "file:///w/b.go"));
  assert.deepEqual(r.last("file:///w/b.go")?.texts, [`q${M}`, "qq"]);
  assert.equal(r.latest()?.uri, "file:///w/b.go");

  r.forget("file:///w/b.go");
  assert.equal(r.last("file:///w/b.go"), undefined);
  assert.equal(r.latest(), undefined);
});

test("Recorder: a new request at the same place restarts the recording", () => {
  const r = new Recorder();
  r.add(step(1, 3, `a${M}${M}`));
  r.add(step(2, 3, `ab${M}`));
  r.add(step(1, 3, `z${M}${M}`)); // superseded: the same position again from step 1
  r.add(step(2, 3, `zy${M}`));
  const done = r.add(step(3, 3, "zyx"));
  assert.deepEqual(done?.texts, [`z${M}${M}`, `zy${M}`, "zyx"]);
});

test("Recorder: the answer attaches to the recording at its position only", () => {
  const r = new Recorder();
  r.add(step(1, 2, `a${M}`));
  r.add(step(2, 2, "ab"));
  r.answer("file:///w/a.go", { line: 3, character: 0 }, "elsewhere");
  assert.equal(r.last("file:///w/a.go")?.answer, undefined);
  r.answer("file:///w/a.go", at, "\t\treturn err");
  assert.equal(r.last("file:///w/a.go")?.answer, "\t\treturn err");
});

test("contextAround", async (t) => {
  const text = "l0\nl1\nl2\nl3 abc\nl4\nl5\nl6\nl7";
  await t.test("middle", () => assert.deepEqual(contextAround(text, { line: 3, character: 3 }, 2), { before: "l1\nl2\nl3 ", after: "abc\nl4\nl5" }));
  await t.test("first line", () => assert.deepEqual(contextAround(text, { line: 0, character: 0 }, 2), { before: "", after: "l0\nl1\nl2" }));
  await t.test("CRLF and a position past the end of line", () =>
    assert.deepEqual(contextAround("a\r\nbc\r\nd", { line: 1, character: 9 }, 1), { before: "a\nbc", after: "\nd" }));
});

test("Recorder: the last completion the editor showed wins over later ones that showed nothing", () => {
  const r = new Recorder();
  r.add(step(1, 2, `a${M}`));
  r.add(step(2, 2, "ab"));
  r.answer("file:///w/a.go", at, "ab");
  // After accepting, the editor asks again at the end of the line; nothing is shown there.
  const after = { line: 7, character: 12 };
  r.add(step(1, 2, `z${M}`, "file:///w/a.go", after));
  r.add(step(2, 2, "zz", "file:///w/a.go", after));
  assert.deepEqual(r.last("file:///w/a.go")?.texts, [`a${M}`, "ab"]);
  // A newer completion that was shown replaces it.
  r.answer("file:///w/a.go", after, "zz");
  assert.deepEqual(r.last("file:///w/a.go")?.texts, [`z${M}`, "zz"]);
});

test("frames: the final answer is the last frame, after the steps", () => {
  const fs = frames({ texts: steps, stepNumbers: [1, 2, 3, 4, 5], steps: 5, final: "\t\treturn err" });
  assert.equal(fs.length, steps.length + 1);
  const last = fs[fs.length - 1];
  assert.deepEqual(last, { step: 5, steps: 5, final: true, segments: [{ kind: "answer", text: "\t\treturn err" }], fixed: 0, masked: 0 });
  // Nothing passed validation: an empty answer frame.
  assert.deepEqual(frames({ texts: [`a${M}`], steps: 2, final: "" }).at(-1)?.segments, []);
});

test("frames: step numbers are the server's (a recording joined late)", () => {
  assert.deepEqual(frames({ texts: [`a${M}`, "ab"], stepNumbers: [3, 4], steps: 4 }).map((f) => f.step), [3, 4]);
});

test("Recorder: a final notification ends the recording with the answer", () => {
  const r = new Recorder();
  // The server streams the longest span's steps, then the answer (from another span).
  r.add(step(1, 3, `${M}${M}${M}`));
  r.add(step(2, 3, `if${M}${M}`));
  assert.equal(r.add(step(3, 3, "if err")), r.last("file:///w/a.go")); // complete at the last step
  const done = r.add({ ...step(4, 4, "return err"), final: true });
  assert.ok(done?.complete);
  assert.deepEqual(done?.texts, [`${M}${M}${M}`, `if${M}${M}`, "if err"]);
  assert.equal(done?.final, "return err");
  assert.equal(done?.answer, "return err");
  assert.equal(r.last("file:///w/a.go"), done);

  // A final before the last step (the steps of a shorter run) also ends it.
  const r2 = new Recorder();
  r2.add(step(1, 12, `${M}${M}`));
  const d2 = r2.add({ ...step(12, 12, "x"), final: true });
  assert.deepEqual([d2?.texts.length, d2?.final, d2?.complete], [1, "x", true]);

  // A final with a history (the steps of the span the answer came from)
  // replaces the live steps of the longest span.
  const r3 = new Recorder();
  r3.add(step(1, 3, `${M}${M}${M}`));
  const d3 = r3.add({ ...step(2, 2, "\t\treturn err"), final: true, history: [`${M}${M}`, "\t\treturn err"] });
  assert.deepEqual([d3?.texts, d3?.stepNumbers, d3?.steps], [[`${M}${M}`, "\t\treturn err"], [1, 2], 2]);

  // An empty answer (nothing passed) is recorded but is not what the editor showed.
  r2.add(step(1, 2, `${M}${M}`, "file:///w/a.go", { line: 1, character: 0 }));
  r2.add({ ...step(2, 2, "", "file:///w/a.go", { line: 1, character: 0 }), final: true });
  assert.equal(r2.last("file:///w/a.go"), d2);
});
