// End-to-end test of the dfill extension in the real VS Code: code-server
// (VS Code 1.100 in the browser) with the extension's .vsix installed,
// driven by Debian's chromium through playwright-core. A user's session:
// open a Go file, type on the blank line inside `if err != nil {`, see
// dfill's ghost text, accept it with Tab, save; then open "Show diffusion".
//
// Environment: DFILL (the binary), VSIX (the packaged extension),
// ARTIFACTS (where screenshots, buffer dumps and logs go), CHROMIUM
// (default /usr/bin/chromium). Every wait is bounded; code-server, its
// extension host and the dfill it starts are killed (process group) at
// the end, also on failure.

import { spawn, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../../..");
const DFILL = need("DFILL");
const VSIX = need("VSIX");
const ARTIFACTS = need("ARTIFACTS");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const CODE_SERVER = path.join(here, "node_modules", ".bin", "code-server");
const SAMPLE = path.join(repo, "cmd", "dfill", "testdata", "sample.go");
const SAMPLES = 5; // latency samples
const WANT = "return err"; // what the embedded model answers at sample.go:8

function need(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`run.mjs: ${name} is not set (test.sh sets it)`);
  }
  return v;
}

function log(...args) {
  console.log("[e2e]", ...args);
}

/** within runs promise with a deadline, naming what it waited for. */
async function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** descendants lists the pids below pid (from /proc), deepest last. */
function descendants(pid) {
  const children = new Map();
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(d));
    } catch {
      // gone
    }
  }
  const out = [];
  const walk = (p) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

function commandOf(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
  } catch {
    return "";
  }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dfill-vscode-e2e-"));
let server; // the code-server child (its own process group)
let browser;
let cleaned = false;

/** cleanup closes the browser and kills code-server's process group and anything left below it. */
async function cleanup() {
  if (cleaned) return;
  cleaned = true;
  if (browser) {
    await within(10_000, "closing chromium", browser.close()).catch((e) => log("closing chromium:", e.message));
  }
  if (server && server.exitCode === null) {
    const stray = descendants(server.pid);
    try {
      process.kill(-server.pid, "SIGTERM");
    } catch {
      // already gone
    }
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && [server.pid, ...stray].some(alive)) {
      await sleep(100);
    }
    for (const pid of [server.pid, ...stray]) {
      if (alive(pid)) {
        log(`killing ${pid} (${commandOf(pid)})`);
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
    try {
      process.kill(-server.pid, "SIGKILL");
    } catch {
      // the group is empty
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    // A zombie is dead for our purpose.
    return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let passed = 0;
/** pass records a check that held. */
function pass(what) {
  passed++;
  console.log(`[e2e] ok ${passed} - ${what}`);
}

for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    log(`${sig}: cleaning up`);
    cleanup().finally(() => process.exit(1));
  });
}

async function main() {
  const userData = path.join(tmp, "user-data");
  const extensions = path.join(tmp, "extensions");
  const workspace = path.join(tmp, "workspace");
  fs.mkdirSync(path.join(userData, "User"), { recursive: true });
  fs.mkdirSync(extensions, { recursive: true });
  fs.mkdirSync(workspace, { recursive: true });
  fs.copyFileSync(SAMPLE, path.join(workspace, "sample.go"));
  const settings = {
    "files.autoSave": "off",
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": false,
    "workbench.enableExperiments": false,
    "editor.inlineSuggest.enabled": true,
    "editor.quickSuggestions": { other: "off", comments: "off", strings: "off" },
    "editor.suggestOnTriggerCharacters": false,
    "security.workspace.trust.enabled": false,
    "telemetry.telemetryLevel": "off",
    "update.mode": "none",
    "extensions.autoCheckUpdates": false,
    "extensions.autoUpdate": false,
    "extensions.ignoreRecommendations": true,
    "git.enabled": false,
    "chat.commandCenter.enabled": false,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
    "window.commandCenter": false,
    "dfill.path": DFILL,
    // Every suggestion is shown, whatever its score: the test is of the
    // extension, not of the embedded model's threshold.
    "dfill.minScore": 0,
  };
  fs.writeFileSync(path.join(userData, "User", "settings.json"), JSON.stringify(settings, null, 2));
  const config = path.join(tmp, "config.yaml");
  fs.writeFileSync(config, "");
  const env = {
    ...process.env,
    XDG_CONFIG_HOME: path.join(tmp, "xdg-config"),
    XDG_DATA_HOME: path.join(tmp, "xdg-data"),
    XDG_CACHE_HOME: path.join(tmp, "xdg-cache"),
  };
  delete env.VSCODE_IPC_HOOK_CLI;
  const common = ["--config", config, "--user-data-dir", userData, "--extensions-dir", extensions];

  log(`installing ${VSIX}`);
  const t0 = Date.now();
  execFileSync(CODE_SERVER, [...common, "--install-extension", VSIX], { env, stdio: ["ignore", "pipe", "pipe"], timeout: 120_000 });
  const installed = execFileSync(CODE_SERVER, [...common, "--list-extensions", "--show-versions"], { env, timeout: 60_000 }).toString();
  if (!/^dfill\.dfill@/m.test(installed)) {
    throw new Error(`the extension is not installed; --list-extensions says: ${installed}`);
  }
  pass(`code-server --install-extension installed ${installed.trim()} (${Date.now() - t0} ms)`);

  const port = await freePort();
  const serverLog = fs.openSync(path.join(ARTIFACTS, "code-server.log"), "w");
  server = spawn(
    CODE_SERVER,
    [
      ...common,
      "--bind-addr",
      `127.0.0.1:${port}`,
      "--auth",
      "none",
      "--disable-telemetry",
      "--disable-update-check",
      "--disable-workspace-trust",
      "--disable-getting-started-override",
      "--ignore-last-opened",
      workspace,
    ],
    { env, detached: true, stdio: ["ignore", serverLog, serverLog] },
  );
  if (process.env.E2E_PGID_FILE) {
    fs.writeFileSync(process.env.E2E_PGID_FILE, String(server.pid)); // test.sh's last resort
  }
  log(`code-server pid ${server.pid} on 127.0.0.1:${port}`);
  const base = `http://127.0.0.1:${port}`;
  await within(60_000, "code-server's /healthz", (async () => {
    for (;;) {
      if (server.exitCode !== null) throw new Error(`code-server exited with ${server.exitCode}; see code-server.log`);
      try {
        const r = await fetch(`${base}/healthz`);
        if (r.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(200);
    }
  })());

  browser = await within(30_000, "launching chromium", chromium.launch({
    executablePath: CHROMIUM,
    env: { ...env, HOME: path.join(tmp, "home") }, // chromium's crash database and caches stay in tmp
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  }));
  const page = await browser.newPage({ viewport: { width: 1400, height: 860 } });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  await page.goto(`${base}/?folder=${encodeURIComponent(workspace)}`, { timeout: 60_000 });
  await page.locator(".monaco-workbench").waitFor({ timeout: 60_000 });
  log("workbench loaded");

  // Open sample.go with Quick Open.
  await page.locator(".monaco-workbench .part.editor").click({ timeout: 10_000 });
  await openQuick(page, "Control+P", "sample.go");
  const editor = page.locator(".editor-instance .monaco-editor").first();
  await editor.locator(".view-lines", { hasText: "readConfig" }).waitFor({ timeout: 30_000 });
  log("sample.go open");

  // The extension starts dfill; the status bar shows the model once loaded.
  // An error notification from the extension ends the wait at once.
  const status = page.locator(".statusbar-item", { hasText: "dfill-go-4m" });
  const trouble = page.locator(".notifications-toasts .notification-toast .notification-list-item-message", { hasText: /^dfill: / });
  await within(60_000, "the status bar to show the model", (async () => {
    for (;;) {
      if ((await status.count()) > 0) return;
      if ((await trouble.count()) > 0) throw new Error(`the extension says: ${await trouble.first().innerText()}`);
      await sleep(200);
    }
  })());
  pass(`the extension started dfill; the status bar shows ${JSON.stringify((await status.first().innerText()).trim())}`);

  // The cursor on the blank line 8, inside `if err != nil {`.
  await page.keyboard.press("Control+G");
  await page.keyboard.type("8");
  await page.keyboard.press("Enter");
  await sleep(300);

  // Type a tab there: VS Code asks dfill for inline completions.
  // Each sample: keystroke -> ghost text, measured in the page; then undo.
  await page.evaluate(() => {
    window.__dfill = { keydown: 0 };
    window.addEventListener("keydown", () => (window.__dfill.keydown = performance.now()), true);
  });
  const latencies = [];
  let ghost = "";
  for (let i = 0; i < SAMPLES; i++) {
    const last = i === SAMPLES - 1;
    await page.keyboard.press("Tab");
    const r = await within(15_000, `ghost text after the keystroke (sample ${i + 1})`, page.waitForFunction(() => {
      const inline = [...document.querySelectorAll(".editor-instance .view-lines .ghost-text-decoration, .editor-instance .view-lines .ghost-text-decoration-preview")];
      const below = [...document.querySelectorAll(".editor-instance .view-zones .suggest-preview-text .view-line")];
      const text = [inline.map((p) => p.textContent).join(""), ...below.map((l) => [...l.querySelectorAll(".ghost-text")].map((p) => p.textContent).join(""))].join("\n").replace(/\u00a0/g, " ");
      if (text.trim() === "") return null;
      return { text, ms: performance.now() - window.__dfill.keydown };
    }, null, { polling: "raf", timeout: 15_000 }).then((h) => h.jsonValue()));
    latencies.push(r.ms);
    ghost = r.text;
    log(`sample ${i + 1}: ghost text ${JSON.stringify(r.text)} after ${r.ms.toFixed(1)} ms`);
    if (!r.text.includes(WANT)) {
      await page.screenshot({ path: path.join(ARTIFACTS, "ghost-text-wrong.png") });
      throw new Error(`ghost text is ${JSON.stringify(r.text)}, want the server's suggestion containing ${JSON.stringify(WANT)}`);
    }
    if (!last) {
      await page.keyboard.press("Escape");
      await page.keyboard.press("Control+Z");
      await within(5000, "the ghost text to go away", page.waitForFunction(() => document.querySelectorAll(".editor-instance .view-lines .ghost-text-decoration").length === 0, null, { timeout: 5000 }));
      await sleep(150);
    }
  }
  await page.screenshot({ path: path.join(ARTIFACTS, "1-ghost-text.png") });
  pass(`typing a tab on the blank line shows dfill's ghost text ${JSON.stringify(ghost)} (${SAMPLES} times)`);
  // The status bar shows the model and the extension's own round trip of the last completion.
  const statusText = (await page.locator(".statusbar-item", { hasText: "dfill-go-4m" }).first().innerText()).trim();
  if (!/dfill-go-4m \d+ ms/.test(statusText)) {
    throw new Error(`the status bar shows ${JSON.stringify(statusText)}, want the model and the last latency`);
  }
  pass(`the status bar shows the model and the last latency: ${JSON.stringify(statusText)}`);
  const sorted = [...latencies].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  log(`keystroke -> ghost text: median ${median.toFixed(1)} ms over ${latencies.length} samples (${latencies.map((x) => x.toFixed(0)).join(", ")} ms)`);

  // Accept with Tab; the line becomes the suggestion.
  await page.keyboard.press("Tab");
  await within(5000, "the ghost text to be accepted", page.waitForFunction(() => document.querySelectorAll(".editor-instance .view-lines .ghost-text-decoration").length === 0, null, { timeout: 5000 }));
  const lines = await editor.locator(".view-lines .view-line").evaluateAll((els) =>
    els
      .map((el) => ({ top: parseFloat(el.style.top) || 0, text: el.textContent.replace(/\u00a0/g, " ") }))
      .sort((a, b) => a.top - b.top)
      .map((l) => l.text),
  );
  fs.writeFileSync(path.join(ARTIFACTS, "editor-lines.txt"), lines.join("\n") + "\n");
  if (!lines.some((l) => l.trim() === WANT)) {
    throw new Error(`after Tab the editor shows no line "${WANT}":\n${lines.join("\n")}`);
  }
  await page.keyboard.press("Control+S");
  const saved = path.join(workspace, "sample.go");
  const want = fs.readFileSync(SAMPLE, "utf8").split("\n");
  want[7] = "\t\treturn err";
  await within(10_000, "sample.go saved with the completion", (async () => {
    for (;;) {
      if (fs.readFileSync(saved, "utf8") === want.join("\n")) return;
      await sleep(100);
    }
  })()).catch((e) => {
    fs.copyFileSync(saved, path.join(ARTIFACTS, "sample.go.after"));
    throw new Error(`${e.message}; the saved file is in sample.go.after:\n${fs.readFileSync(saved, "utf8")}`);
  });
  fs.copyFileSync(saved, path.join(ARTIFACTS, "sample.go.after"));
  await sleep(300);
  await page.screenshot({ path: path.join(ARTIFACTS, "2-accepted.png") });
  pass("Tab accepts the suggestion: the editor and the saved file have \\t\\treturn err on line 8");

  // Show diffusion, from the command palette.
  await openQuick(page, "Control+Shift+P", "dfill: Show Diffusion");
  const view = await within(30_000, "the diffusion webview", (async () => {
    for (;;) {
      for (const f of page.frames()) {
        try {
          if ((await f.locator("#counter").count()) > 0) return f;
        } catch {
          // a frame going away
        }
      }
      await sleep(200);
    }
  })());
  // It plays by itself: wait for its last frame.
  const atEnd = () => {
    const b = document.body.dataset;
    const frames = Number(b.frames || 0);
    return frames > 0 && Number(b.index) === frames - 1;
  };
  await within(30_000, "the diffusion to play to its last frame", view.waitForFunction(atEnd, null, { timeout: 30_000 }));
  const played = await view.evaluate(() => ({
    steps: Number(document.body.dataset.steps),
    frames: Number(document.body.dataset.frames),
    counter: document.getElementById("counter")?.textContent,
    items: [...document.querySelectorAll("#timeline li")].map((li) => li.textContent),
    where: document.getElementById("where")?.textContent,
    answer: document.getElementById("answer")?.textContent,
    canvas: document.getElementById("canvas")?.textContent,
  }));
  log(`diffusion view: ${played.where}; ${played.frames} frames, the last: ${JSON.stringify(played.items.at(-1))}; ${played.answer}`);
  if (played.steps < 2 || played.items.length < 2) {
    throw new Error(`the diffusion view shows ${played.steps} steps (${played.items.length} listed), want at least 2`);
  }
  // The first step still shows masked positions; a later one fixed some.
  await view.locator("#timeline li").first().click();
  if ((await view.locator("#canvas .mask").count()) === 0) {
    throw new Error("the first step of the diffusion shows no masked positions");
  }
  await view.locator("#timeline li").nth(Math.floor(played.steps / 2)).click();
  await sleep(200);
  const mid = await view.evaluate(() => ({ masks: document.querySelectorAll("#canvas .mask").length, fixed: document.querySelectorAll("#canvas .new").length, counter: document.getElementById("counter")?.textContent }));
  log(`diffusion view at ${mid.counter}: ${mid.masks} masked positions, ${mid.fixed} pieces fixed in that step`);
  await page.screenshot({ path: path.join(ARTIFACTS, "3-diffusion-mid.png") });
  await view.locator("#replay").click();
  await within(30_000, "the replay to end", view.waitForFunction(atEnd, null, { timeout: 30_000 }));
  await page.screenshot({ path: path.join(ARTIFACTS, "4-diffusion-end.png") });
  pass(`Show Diffusion plays ${played.steps} denoising steps (masked positions turning into code) and the answer`);
  fs.writeFileSync(path.join(ARTIFACTS, "diffusion-last-step.txt"), played.canvas ?? "");

  // Settings apply live: the server gets its section with
  // workspace/didChangeConfiguration. A malformed value comes back as the
  // server's window/showMessage naming the key.
  // The user's settings.json, edited as a user does: Preferences: Open User Settings (JSON).
  const writeSettings = async (extra) => {
    await openQuick(page, "Control+Shift+P", "Preferences: Open User Settings (JSON)");
    await page.locator(".tabs-container .tab", { hasText: "settings.json" }).first().waitFor({ timeout: 10_000 });
    await sleep(300);
    await page.keyboard.press("Control+A");
    // One line: typed newlines would be auto-indented.
    await page.keyboard.insertText(JSON.stringify({ ...settings, ...extra }));
    // Drop what the editor auto-closed after the cursor.
    await page.keyboard.press("Control+Shift+End");
    await page.keyboard.press("Delete");
    await page.keyboard.press("Control+S");
    await within(10_000, "settings.json saved", (async () => {
      for (;;) {
        try {
          const saved = JSON.parse(fs.readFileSync(path.join(userData, "User", "settings.json"), "utf8"));
          if (Object.entries(extra).every(([k, v]) => JSON.stringify(saved[k]) === JSON.stringify(v))) return;
        } catch {
          // being written
        }
        await sleep(100);
      }
    })()).finally(() => fs.copyFileSync(path.join(userData, "User", "settings.json"), path.join(ARTIFACTS, "settings.json")));
  };
  await writeSettings({ "dfill.maxTokens": "lots" });
  const toast = page.locator(".notifications-toasts .notification-toast", { hasText: "maxTokens" });
  await toast.first().waitFor({ timeout: 20_000 });
  pass(`a setting changed in settings.json reaches the server, which answers: ${JSON.stringify(await toast.first().locator(".notification-list-item-message").innerText())}`);
  await page.screenshot({ path: path.join(ARTIFACTS, "5-bad-setting.png") });

  // Changing dfill.path restarts the server with the new binary.
  const link = path.join(tmp, "bin", "dfill");
  fs.mkdirSync(path.dirname(link), { recursive: true });
  fs.symlinkSync(DFILL, link);
  await writeSettings({ "dfill.path": link });
  await within(30_000, `a dfill server started from ${link}, the old one gone`, (async () => {
    for (;;) {
      const cmds = descendants(server.pid).map(commandOf);
      if (cmds.some((c) => c.startsWith(`${link} serve`)) && !cmds.some((c) => c.startsWith(`${DFILL} serve`))) return;
      await sleep(200);
    }
  })());
  pass(`changing dfill.path restarts the server from ${link}`);

  // A dfill older than the extension needs: a notification says what to do.
  const old = path.join(tmp, "bin", "dfill-0.1.0");
  fs.writeFileSync(old, `#!/bin/sh\n[ "$1" = version ] && echo '{"version":"0.1.0","go":"go1.24.0","platform":"linux/amd64"}'\n`, { mode: 0o755 });
  await writeSettings({ "dfill.path": old });
  const oldToast = page.locator(".notifications-toasts .notification-toast", { hasText: "needs dfill 0.2.0 or newer" });
  await oldToast.first().waitFor({ timeout: 20_000 });
  pass(`a dfill older than 0.2.0 is refused: ${JSON.stringify(await oldToast.first().locator(".notification-list-item-message").innerText())}`);
  await page.screenshot({ path: path.join(ARTIFACTS, "6-old-dfill.png") });
  await writeSettings({ "dfill.path": link });

  // The status bar item opens the menu; "Turn completions off" stops the ghost text.
  await page.locator(".tabs-container .tab", { hasText: "sample.go" }).first().click();
  const item = page.locator(".statusbar-item", { hasText: "dfill-go-4m" }).first();
  await item.waitFor({ timeout: 30_000 });
  await item.click();
  await page.locator(".quick-input-widget .monaco-list-row", { hasText: "Turn completions off" }).first().click({ timeout: 10_000 });
  await page.locator(".statusbar-item", { hasText: "dfill off" }).first().waitFor({ timeout: 10_000 });
  await page.keyboard.press("Control+G");
  await page.keyboard.type("8");
  await page.keyboard.press("Enter");
  await page.keyboard.press("Control+Shift+K"); // delete the accepted line ...
  await page.keyboard.press("Control+G");
  await page.keyboard.type("7");
  await page.keyboard.press("Enter");
  await page.keyboard.press("End");
  await page.keyboard.press("Enter"); // ... and open a new one there, indented: a place dfill completes
  await sleep(2000);
  const offGhost = await page.locator(".editor-instance .view-lines .ghost-text-decoration").count();
  await page.screenshot({ path: path.join(ARTIFACTS, "7-completions-off.png") });
  if (offGhost !== 0) {
    throw new Error("completions are off, yet the editor shows ghost text");
  }
  pass("the status bar menu turns completions off: `dfill off`, no ghost text after 2 s");
  await openQuick(page, "Control+Shift+P", "dfill: Turn Completions On/Off");
  await page.locator(".statusbar-item", { hasText: "dfill-go-4m" }).first().waitFor({ timeout: 10_000 });
  await page.keyboard.press("Backspace");
  await page.keyboard.press("Tab");
  const again = await within(15_000, "ghost text once completions are on again", page.waitForFunction(() => {
    const t = [...document.querySelectorAll(".editor-instance .view-lines .ghost-text-decoration")].map((p) => p.textContent).join("");
    return t.trim() === "" ? null : t.replace(/\u00a0/g, " ");
  }, null, { polling: "raf", timeout: 15_000 }).then((h) => h.jsonValue()));
  if (!again.includes(WANT)) {
    throw new Error(`completions on again: ghost text ${JSON.stringify(again)}, want ${JSON.stringify(WANT)}`);
  }
  pass(`dfill: Turn Completions On/Off turns them on again: ghost text ${JSON.stringify(again)}`);

  if (pageErrors.length) {
    log(`page errors (not failures): ${pageErrors.slice(0, 5).join(" | ")}`);
  }
  const dfills = descendants(server.pid).filter((p) => commandOf(p).startsWith(`${link} serve`));
  log(`dfill server processes under code-server: ${dfills.join(", ") || "none"}`);
  if (dfills.length !== 1) {
    throw new Error(`want one dfill server under code-server, found ${dfills.length}`);
  }
  pass(`one dfill server runs under code-server (pid ${dfills[0]}); it is killed with code-server's process group`);
  log(`artifacts in ${ARTIFACTS}`);
  console.log(`[e2e] latency from keystroke to ghost text: median ${median.toFixed(1)} ms`);
}

/** openQuick opens Quick Open or the command palette with key and runs the entry for text. */
async function openQuick(page, key, text) {
  await page.keyboard.press(key);
  const input = page.locator(".quick-input-widget .quick-input-box input");
  await input.waitFor({ timeout: 10_000 });
  await input.fill(key === "Control+Shift+P" ? `>${text}` : text);
  await page.locator(".quick-input-widget .monaco-list-row", { hasText: text.replace(/^.*: /, "") }).first().click({ timeout: 10_000 });
}

let failed = false;
const started = Date.now();
try {
  await within(240_000, "the whole e2e test", main());
} catch (e) {
  failed = true;
  console.error(`[e2e] FAIL: ${e.stack || e}`);
  try {
    const pages = browser?.contexts().flatMap((c) => c.pages()) ?? [];
    if (pages[0]) await within(10_000, "failure screenshot", pages[0].screenshot({ path: path.join(ARTIFACTS, "failure.png") }));
  } catch {
    // no screenshot
  }
} finally {
  // The extension's log and the code-server's logs, for whoever reads the artifacts.
  try {
    const logs = path.join(tmp, "user-data", "logs");
    if (fs.existsSync(logs)) fs.cpSync(logs, path.join(ARTIFACTS, "vscode-logs"), { recursive: true });
  } catch {
    // best effort
  }
  await cleanup();
}
console.log(`e2e: ${passed} passed, ${failed ? 1 : 0} failed (${((Date.now() - started) / 1000).toFixed(0)} s)`);
process.exit(failed ? 1 : 0);
