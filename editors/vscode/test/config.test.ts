import { test } from "node:test";
import * as assert from "node:assert/strict";
import { serverSection } from "../src/config";

// get returns a Get over a plain object of dfill.* settings (without the prefix).
const get = (o: Record<string, unknown>) => (k: string) => o[k];

test("serverSection: nothing set sends every key with the server's defaults", () => {
  assert.deepEqual(serverSection(get({})), {
    model: "",
    backend: "",
    steps: 0,
    algorithm: "",
    threshold: 0,
    maxTokens: 0,
    contextTokens: 0,
    debounceMs: 0,
    languages: [],
    denoiseNotifications: true,
    logLevel: "",
    minScore: null,
  });
});

test("serverSection: user settings map key by key", () => {
  const s = serverSection(
    get({
      model: "/models/dream.gguf",
      backend: "cpu",
      steps: 8,
      algorithm: "margin",
      threshold: 0.9,
      maxTokens: 48,
      contextTokens: 2048,
      debounceMs: 75,
      languages: ["go", "rust"],
      logLevel: "debug",
      minScore: 0.3,
      recordDiffusion: false,
      path: "/usr/local/bin/dfill",
      enable: false,
    }),
  );
  assert.deepEqual(s, {
    model: "/models/dream.gguf",
    backend: "cpu",
    steps: 8,
    algorithm: "margin",
    threshold: 0.9,
    maxTokens: 48,
    contextTokens: 2048,
    debounceMs: 75,
    languages: ["go", "rust"],
    denoiseNotifications: false,
    logLevel: "debug",
    minScore: 0.3,
  });
  // The extension's own settings stay in the extension.
  assert.ok(!("path" in s) && !("enable" in s) && !("recordDiffusion" in s));
});

test("serverSection: a null (reset) value becomes the default, a malformed one passes through", () => {
  const s = serverSection(get({ steps: null, maxTokens: "lots", languages: null }));
  assert.equal(s.steps, 0);
  assert.equal(s.maxTokens as unknown, "lots"); // the server's message names the key
  assert.deepEqual(s.languages, []);
});

test("serverSection: an empty logLevel follows the output channel's level", () => {
  assert.equal(serverSection(get({}), "debug").logLevel, "debug");
  assert.equal(serverSection(get({ logLevel: "" }), "warn").logLevel, "warn");
  assert.equal(serverSection(get({ logLevel: "error" }), "debug").logLevel, "error");
});
