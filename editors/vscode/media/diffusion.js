// The "Show diffusion" view: plays the frames the extension sends (see
// src/webview.ts ViewData). No network, no eval; the page's CSP allows only
// this file, by nonce.
// @ts-check
(function () {
  "use strict";
  // @ts-ignore acquireVsCodeApi is defined by the webview host.
  const vscode = acquireVsCodeApi();
  const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
  const canvas = $("canvas");
  const counter = $("counter");
  const timeline = $("timeline");
  const scrub = /** @type {HTMLInputElement} */ ($("scrub"));
  const play = $("play");
  const STEP_MS = 450;

  /** @type {any} */
  let data = null;
  let index = 0;
  /** @type {number | undefined} */
  let timer;

  /** piece appends a segment: one block per masked position, line ends made visible in newly fixed text. */
  function piece(/** @type {HTMLElement} */ parent, /** @type {string} */ cls, /** @type {string} */ text) {
    if (cls === "mask") {
      for (const ch of text) {
        const block = document.createElement("span");
        block.className = "mask";
        block.textContent = ch;
        parent.appendChild(block);
      }
      return;
    }
    const span = document.createElement("span");
    span.className = cls;
    if (cls === "new") {
      // A newly fixed line end would be invisible: mark it.
      text = text.replace(/\n/g, "\u21b5\n");
    }
    span.textContent = text;
    parent.appendChild(span);
  }

  function render() {
    canvas.textContent = "";
    if (!data || data.frames.length === 0) {
      counter.textContent = "step 0 / 0";
      return;
    }
    const f = data.frames[index];
    if (data.context) {
      piece(canvas, "context", data.context.before);
    }
    for (const s of f.segments) {
      piece(canvas, s.kind, s.text);
    }
    if (data.context) {
      piece(canvas, "context", data.context.after);
    }
    document.body.dataset.index = String(index);
    counter.textContent = f.final ? "answer" : `step ${f.step} / ${f.steps}`;
    scrub.value = String(index + 1);
    for (const li of timeline.children) {
      li.classList.toggle("current", Number(/** @type {HTMLElement} */ (li).dataset.index) === index);
    }
  }

  function stop() {
    if (timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
    play.textContent = "Play";
  }

  function start() {
    if (!data || data.frames.length === 0) {
      return;
    }
    if (index >= data.frames.length - 1) {
      index = 0;
      render();
    }
    play.textContent = "Pause";
    timer = setInterval(() => {
      if (index >= data.frames.length - 1) {
        stop();
        return;
      }
      index++;
      render();
      if (index >= data.frames.length - 1) {
        stop();
      }
    }, STEP_MS);
  }

  function load(/** @type {any} */ d) {
    stop();
    data = d;
    index = 0;
    timeline.textContent = "";
    $("empty").hidden = !!(d && d.frames.length > 0);
    const answer = $("answer");
    answer.hidden = true;
    if (!d) {
      $("where").textContent = "";
      document.body.dataset.steps = "0";
      document.body.dataset.frames = "0";
      render();
      return;
    }
    const steps = d.frames.filter((/** @type {any} */ f) => !f.final).length;
    $("where").textContent = `${d.file}:${d.line}:${d.character} \u2014 ${steps} step${steps === 1 ? "" : "s"}${d.complete ? "" : " (so far)"}`;
    if (d.answer !== undefined) {
      answer.hidden = false;
      answer.textContent = "";
      answer.append("Suggestion shown: ");
      const code = document.createElement("code");
      code.textContent = d.answer;
      answer.appendChild(code);
    }
    scrub.max = String(Math.max(1, d.frames.length));
    d.frames.forEach((/** @type {any} */ f, /** @type {number} */ i) => {
      const li = document.createElement("li");
      li.dataset.index = String(i);
      li.textContent = f.final
        ? f.segments.length > 0
          ? "answer: the text the editor was given (post-processed and validated)"
          : "answer: nothing passed validation"
        : `step ${f.step}: ${f.fixed} character${f.fixed === 1 ? "" : "s"} fixed, ${f.masked} masked`;
      li.addEventListener("click", () => {
        stop();
        index = i;
        render();
      });
      timeline.appendChild(li);
    });
    document.body.dataset.steps = String(steps);
    document.body.dataset.frames = String(d.frames.length);
    render();
    start();
  }

  play.addEventListener("click", () => (timer === undefined ? start() : stop()));
  $("replay").addEventListener("click", () => {
    stop();
    index = 0;
    render();
    start();
  });
  scrub.addEventListener("input", () => {
    stop();
    index = Number(scrub.value) - 1;
    render();
  });
  window.addEventListener("message", (ev) => {
    const m = ev.data;
    if (m && m.type === "recording") {
      load(m.data);
    }
  });
  vscode.postMessage({ type: "ready" });
})();
