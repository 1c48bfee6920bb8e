// End-to-end test of the playground: Debian's chromium, driven by
// playwright-core, loads /playground from a `dfill http` on loopback
// (its URL is the first argument), places the cursor in the Go sample,
// clicks Fill, and checks that the diffusion lane showed several steps
// before the answer, that the answer is what /v1/fim/completions returns
// for the same request without streaming, that the left-to-right lane
// replayed it one token per step, that the page asked nothing of another
// origin, and that with reduced motion the steps are a list. When the
// server wants a key ($DFILL_PLAYGROUND_KEY), a fill without it shows the
// server's refusal, and the key typed once is kept for the tab.
// Screenshots go to $ARTIFACTS (or a temporary folder), named in the
// output.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const base = process.argv[2];
if (!base) {
  console.error("usage: node run.mjs http://127.0.0.1:PORT");
  process.exit(2);
}
const origin = new URL(base).origin;
const key = process.env.DFILL_PLAYGROUND_KEY || "";
const auth = key ? { Authorization: `Bearer ${key}` } : {};
const artifacts = process.env.ARTIFACTS || fs.mkdtempSync(path.join(os.tmpdir(), "dfill-playground-"));
fs.mkdirSync(artifacts, { recursive: true });

let failures = 0;
const pass = (msg) => console.log(`ok - ${msg}`);
const fail = (msg) => {
  failures++;
  console.log(`FAIL - ${msg}`);
};
const check = (cond, msg, detail = "") => (cond ? pass(msg) : fail(detail ? `${msg}: ${detail}` : msg));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});

// fill loads the page in a new context, puts the cursor on the blank line
// of `if err != nil {` (the marker taken out), sets the span, clicks Fill
// and returns what the page recorded and the requests it made.
async function fill(contextOptions, shot, withKey = true) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...contextOptions });
  const page = await context.newPage();
  const reloaded = async () => {
    await page.reload();
    return page.inputValue("#apikey");
  };
  const requests = [];
  page.on("request", (r) => requests.push(r.url()));
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${base}/playground`);
  await page.waitForFunction(() => document.getElementById("code").value.includes("<|fill|>"));
  await page.evaluate(() => {
    const area = document.getElementById("code");
    const at = area.value.indexOf("<|fill|>");
    area.value = area.value.slice(0, at) + area.value.slice(at + "<|fill|>".length);
    area.focus();
    area.setSelectionRange(at, at);
  });
  await page.fill("#span", "8");
  if (withKey) await page.fill("#apikey", key);
  await page.click("#fill");
  await page.waitForFunction(() => ["done", "error"].includes(window.__dfillPlayground.state), null, { timeout: 60_000 });
  const rec = await page.evaluate(() => window.__dfillPlayground);
  rec.status = await page.locator("#status").innerText();
  const listItems = await page.locator("#diffusion-list li").count();
  const summary = await page.locator("#summary").innerText();
  const file = path.join(artifacts, shot);
  await page.screenshot({ path: file, fullPage: true });
  rec.keptKey = withKey && key ? (await reloaded()) === key : null;
  await context.close();
  return { rec, requests, errors, listItems, summary, file };
}

try {
  const { rec, requests, errors, summary, file } = await fill({}, "playground.png");
  check(rec.state === "done", "the fill finished", rec.error || rec.state);
  check(errors.length === 0, "no script error on the page", errors.join("; "));
  const masked = rec.rendered.filter((t) => t.includes("\u2591"));
  check(masked.length >= 2 && new Set(masked).size >= 2, `the diffusion lane showed ${masked.length} masked steps before the answer`, JSON.stringify(rec.rendered));
  check(rec.rendered.length >= 3 && rec.rendered[rec.rendered.length - 1] === rec.final, "the diffusion lane ends on the answer", JSON.stringify(rec.rendered));
  const first = rec.rendered.findIndex((t) => t === rec.final);
  check(first === rec.rendered.length - 1 || rec.rendered.slice(0, first).some((t) => t.includes("\u2591")), "intermediate steps came before the final text");

  // The same request, whole: greedy decoding gives the same answer.
  const body = { ...rec.request, stream: false, diffusing: false };
  delete body.stream_options;
  const resp = await fetch(`${base}/v1/fim/completions`, { method: "POST", headers: { "Content-Type": "application/json", ...auth }, body: JSON.stringify(body) });
  const whole = await resp.json();
  const text = whole.choices && whole.choices[0] && whole.choices[0].text;
  check(resp.ok && text === rec.final, "the answer equals /v1/fim/completions without streaming", `${JSON.stringify(text)} vs ${JSON.stringify(rec.final)}`);

  const tokens = rec.dfill ? rec.dfill.tokens : [];
  check(tokens.length > 0 && tokens.join("") === rec.final, `the answer came with its ${tokens.length} tokens`);
  check(rec.ltrRendered.length === tokens.length + 1 && rec.ltrRendered[rec.ltrRendered.length - 1] === rec.final,
    `the left-to-right lane took ${tokens.length} steps against ${rec.rendered.length} of diffusion`, JSON.stringify(rec.ltrRendered));
  check(["accepted", "trimmed", "rejected"].includes(rec.dfill && rec.dfill.validation) && /Syntax check/.test(summary),
    `the summary says what the syntax check did (${rec.dfill && rec.dfill.validation})`, summary);
  const foreign = requests.filter((u) => new URL(u).origin !== origin);
  check(foreign.length === 0, `all ${requests.length} requests went to ${origin}`, foreign.join(", "));
  console.log(`screenshot: ${file}`);

  if (key) {
    check(rec.keptKey === true, "the key typed once is still there after a reload (session storage)");
    const refused = await fill({}, "playground-no-key.png", false);
    check(refused.rec.state === "error" && /API key/.test(refused.rec.status), "without the key the page shows the server's refusal", refused.rec.status);
  }

  const reduced = await fill({ reducedMotion: "reduce" }, "playground-reduced-motion.png");
  check(reduced.rec.state === "done" && reduced.listItems >= 2 && reduced.listItems === reduced.rec.rendered.length,
    `with reduced motion the ${reduced.listItems} steps are a list`);
  console.log(`screenshot: ${reduced.file}`);
} catch (err) {
  fail(`the test broke: ${err.stack || err}`);
} finally {
  await browser.close();
}
console.log(failures ? `playground e2e: ${failures} failed` : "playground e2e: all passed");
process.exit(failures ? 1 : 0);
