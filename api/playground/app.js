// The dfill playground: sends the code around the cursor to this server's
// POST /v1/fim/completions with "stream" and "diffusing", and shows each
// denoising step of the span as it was (masked positions as blocks, the
// tokens a step committed highlighted), then the same answer written left
// to right, one token per step. It asks nothing of any other origin.
"use strict";

const MASK = "\u2591"; // engine.MaskGlyph
const MARKER = "<|fill|>";
const STEP_MS = 220; // how long each step stays on screen
const KEY_ITEM = "dfill.apiKey"; // sessionStorage

const SAMPLE = `package main

import (
	"fmt"
	"os"
)

// readConfig returns the contents of the file at path.
func readConfig(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
${MARKER}
	}
	return data, nil
}

func main() {
	data, err := readConfig("config.json")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(len(data))
}
`;

const $ = (id) => document.getElementById(id);

// What the page did, for tests and for anyone curious: the texts the
// diffusion lane showed, in order, and the final answer.
const record = { state: "idle", rendered: [], ltrRendered: [], final: null, request: null, dfill: null, error: null };
window.__dfillPlayground = record;

const reducedMotion = () => window.matchMedia("(prefers-reduced-motion: reduce)").matches;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// cursorSplit returns the text before and after the fill: at the first
// marker when there is one (removed), else at the textarea's cursor.
function cursorSplit(area) {
  const text = area.value;
  const at = text.indexOf(MARKER);
  if (at >= 0) {
    return { prompt: text.slice(0, at), suffix: text.slice(at + MARKER.length) };
  }
  const off = area.selectionStart ?? text.length;
  return { prompt: text.slice(0, off), suffix: text.slice(off) };
}

// segments splits a step's text into runs of masked positions and of text.
function segments(text) {
  const out = [];
  for (const ch of text) {
    const mask = ch === MASK;
    const last = out[out.length - 1];
    if (last && last.mask === mask) last.text += ch;
    else out.push({ mask, text: ch });
  }
  return out;
}

// paint writes cur into el: masked positions as blocks, and the text that
// took the place of positions masked in prev highlighted as fresh.
function paint(el, prev, cur) {
  el.replaceChildren();
  const add = (cls, text) => {
    if (!text) return;
    if (!cls) {
      el.append(document.createTextNode(text));
      return;
    }
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = text;
    el.append(span);
  };
  // addRegion writes what filled a run of masks: masks still masked, the
  // rest fresh.
  const addRegion = (text) => {
    for (const seg of segments(text)) add(seg.mask ? "mask" : "fresh", seg.text);
  };
  if (prev === null) {
    for (const seg of segments(cur)) add(seg.mask ? "mask" : "", seg.text);
    return;
  }
  const segs = segments(prev);
  let j = 0;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i];
    if (!seg.mask) {
      add("", cur.slice(j, j + seg.text.length));
      j += seg.text.length;
      continue;
    }
    // The region up to the next text of prev in cur is what the masks became.
    const next = segs[i + 1];
    let end = next ? cur.indexOf(next.text, j) : cur.length;
    if (end < 0) end = cur.length;
    addRegion(cur.slice(j, end));
    j = end;
  }
  if (j < cur.length) addRegion(cur.slice(j));
}

// Lane shows the texts of a fill one step at a time, or, when the user
// prefers reduced motion, as a list of steps.
class Lane {
  // logName names the list of record that keeps what the lane showed.
  constructor(canvasId, listId, counterId, logName) {
    this.canvas = $(canvasId);
    this.list = $(listId);
    this.counter = $(counterId);
    this.logName = logName;
    this.prev = null;
  }
  reset() {
    this.prev = null;
    this.canvas.replaceChildren();
    this.list.replaceChildren();
    this.counter.textContent = "";
    this.list.hidden = !reducedMotion();
    this.canvas.hidden = reducedMotion();
  }
  show(text, step, steps) {
    this.counter.textContent = steps ? `step ${step} / ${steps}` : `step ${step}`;
    if (reducedMotion()) {
      const li = document.createElement("li");
      const pre = document.createElement("pre");
      paint(pre, this.prev, text);
      li.append(pre);
      this.list.append(li);
    } else {
      paint(this.canvas, this.prev, text);
    }
    this.prev = text;
    record[this.logName].push(text);
  }
}

// readEvents yields the data of each Server-Sent Event of a response body.
async function* readEvents(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const event = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const data = event
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).replace(/^ /, ""))
        .join("\n");
      if (data) yield data;
    }
  }
}

function setStatus(text, error = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", error);
}

// requestBody returns the request the controls ask for.
function requestBody(prompt, suffix) {
  const num = (id) => Number($(id).value);
  const body = {
    prompt,
    suffix,
    max_tokens: num("span"),
    steps: num("steps"),
    algorithm: $("algorithm").value,
    threshold: num("threshold"),
    temperature: num("temperature"),
    stream: true,
    diffusing: true,
    stream_options: { include_usage: true },
  };
  const lang = $("language").value.trim();
  if (lang) body.language = lang;
  return body;
}

async function fill() {
  const button = $("fill");
  const form = $("controls");
  if (!form.reportValidity()) return;
  const key = $("apikey").value.trim();
  if (key) sessionStorage.setItem(KEY_ITEM, key);
  else sessionStorage.removeItem(KEY_ITEM);

  const { prompt, suffix } = cursorSplit($("code"));
  const body = requestBody(prompt, suffix);
  Object.assign(record, { state: "running", rendered: [], ltrRendered: [], final: null, request: body, dfill: null, error: null });
  diffusion.reset();
  ltr.reset();
  $("summary").hidden = true;
  button.disabled = true;
  setStatus("Denoising…");

  const headers = { "Content-Type": "application/json" };
  if (key) headers.Authorization = `Bearer ${key}`;
  try {
    const start = performance.now();
    const resp = await fetch("/v1/fim/completions", { method: "POST", headers, body: JSON.stringify(body) });
    if (!resp.ok) {
      let msg = `${resp.status} ${resp.statusText}`;
      try {
        msg = (await resp.json()).error.message || msg;
      } catch {}
      throw new Error(msg);
    }
    const steps = []; // each step's whole text, as it arrived
    let final = null;
    let finalAt = 0;
    let usage = null;
    let ext = null;
    let ended = false; // the stream is over, answered or not
    const shown = (async () => {
      // Show the steps at a pace a person can follow as they arrive.
      for (let i = 0; ; i++) {
        while (i >= steps.length && final === null && !ended) await sleep(15);
        if (i >= steps.length) return;
        diffusion.show(steps[i], i + 1, final !== null ? steps.length : 0);
        if (!reducedMotion()) await sleep(STEP_MS);
      }
    })();
    try {
      for await (const data of readEvents(resp.body)) {
        if (data === "[DONE]") break;
        const msg = JSON.parse(data);
        if (msg.error) throw new Error(msg.error.message);
        if (msg.usage) usage = msg.usage;
        const choice = msg.choices && msg.choices[0];
        if (!choice) continue;
        if (choice.finish_reason === null || choice.finish_reason === undefined) {
          steps.push(choice.text);
          continue;
        }
        final = choice.text;
        finalAt = performance.now();
        ext = msg.dfill || null;
        if (steps.length === 0 || steps[steps.length - 1] !== final) steps.push(final);
      }
    } finally {
      ended = true;
    }
    if (final === null) throw new Error("the stream ended without an answer");
    await shown;
    record.final = final;
    record.dfill = ext;
    summarize(final, steps.length, usage, ext, (finalAt - start) / 1000);
    setStatus("Replaying left to right…");
    await replay(ext ? ext.tokens : Array.from(final));
    setStatus(`Done: ${steps.length} diffusion steps against ${ext ? ext.tokens.length : Array.from(final).length} left to right.`);
    record.state = "done";
  } catch (err) {
    record.state = "error";
    record.error = String(err.message || err);
    setStatus(`Fill failed: ${record.error}`, true);
  } finally {
    button.disabled = false;
  }
}

// replay writes the answer's tokens one per step, the rest masked.
async function replay(tokens) {
  for (let i = 0; i <= tokens.length; i++) {
    ltr.show(tokens.slice(0, i).join("") + MASK.repeat(tokens.length - i), i, tokens.length);
    if (!reducedMotion()) await sleep(STEP_MS / 2);
  }
}

function summarize(final, steps, usage, ext, seconds) {
  const tokens = usage ? usage.completion_tokens : ext ? ext.tokens.length : Array.from(final).length;
  $("sum-steps").textContent = String(steps);
  $("sum-tokens").textContent = String(tokens);
  $("sum-per-step").textContent = (tokens / Math.max(steps, 1)).toFixed(2);
  $("sum-rate").textContent = seconds > 0 ? `${(tokens / seconds).toFixed(0)} (${(seconds * 1000).toFixed(0)} ms on the server and the wire)` : "—";
  const v = ext ? ext.validation : "not checked (no language)";
  $("sum-validation").textContent = ext && ext.validation === "trimmed" ? `trimmed to ${JSON.stringify(ext.validated)}` : v;
  $("summary").hidden = false;
}

const diffusion = new Lane("diffusion", "diffusion-list", "diffusion-step", "rendered");
const ltr = new Lane("ltr", "ltr-list", "ltr-step", "ltrRendered");

document.addEventListener("DOMContentLoaded", () => {
  const area = $("code");
  area.value = SAMPLE;
  $("apikey").value = sessionStorage.getItem(KEY_ITEM) || "";
  $("controls").addEventListener("submit", (e) => {
    e.preventDefault();
    fill();
  });
  area.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      fill();
    }
  });
});
