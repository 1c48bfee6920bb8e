import { test } from "node:test";
import * as assert from "node:assert/strict";
import { parseLogLine, serverLevel } from "../src/serverlog";

test("parseLogLine", async (t) => {
  const cases = [
    {
      name: "info line",
      line: '2026-12-06T04:20:24.657Z\tinfo\tlsp\tlsp/lifecycle.go:31\tinitialize\t{"client": "code-server 1.100.3"}',
      want: { level: "info", text: 'lsp  lsp/lifecycle.go:31  initialize  {"client": "code-server 1.100.3"}' },
    },
    { name: "debug", line: "2026-12-06T04:20:24.657Z\tdebug\tlsp\tx.go:1\trequest", want: { level: "debug", text: "lsp  x.go:1  request" } },
    { name: "warn", line: "2026-12-06T04:20:24.657Z\twarn\tlsp\tx.go:1\tslow", want: { level: "warn", text: "lsp  x.go:1  slow" } },
    { name: "capital ERROR", line: "2026-12-06T04:20:24.657+0100\tERROR\tengine\tx.go:9\tboom", want: { level: "error", text: "engine  x.go:9  boom" } },
    { name: "panic from the runtime", line: "panic: runtime error: index out of range", want: { level: "error", text: "panic: runtime error: index out of range" } },
    { name: "goroutine trace", line: "goroutine 1 [running]:", want: { level: "info", text: "goroutine 1 [running]:" } },
    { name: "unknown level keeps the line", line: "2026-12-06T04:20:24.657Z\tloud\tx", want: { level: "info", text: "2026-12-06T04:20:24.657Z\tloud\tx" } },
  ];
  for (const c of cases) {
    await t.test(c.name, () => assert.deepEqual(parseLogLine(c.line), c.want));
  }
});

test("serverLevel: the server logs what the channel shows", () => {
  // vscode.LogLevel: Off 0, Trace 1, Debug 2, Info 3, Warning 4, Error 5.
  assert.deepEqual([0, 1, 2, 3, 4, 5].map(serverLevel), ["error", "debug", "debug", "info", "warn", "error"]);
});
