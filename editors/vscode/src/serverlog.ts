// The server's log lines (zap's console format, on stderr), sorted into the
// levels of the "dfill" log output channel. No vscode import: unit-tested.

/** A level of vscode's LogOutputChannel. */
export type Level = "trace" | "debug" | "info" | "warn" | "error";

const levels: Record<string, Level> = {
  debug: "debug",
  info: "info",
  warn: "warn",
  warning: "warn",
  error: "error",
  dpanic: "error",
  panic: "error",
  fatal: "error",
};

/**
 * parseLogLine reads one line dfill wrote to stderr:
 * "2026-12-06T04:20:24.657Z\tinfo\tlsp\tlsp/lifecycle.go:31\tinitialize\t{...}".
 * It returns the line's level and its text without the time (the channel
 * writes its own). A line that is not a log line (a Go panic's trace) keeps
 * its text, at level error when it starts a panic and info otherwise.
 */
export function parseLogLine(line: string): { level: Level; text: string } {
  const fields = line.split("\t");
  if (fields.length >= 3 && /^\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-][\d:]+)?$/.test(fields[0])) {
    const level = levels[fields[1].toLowerCase()];
    if (level) {
      return { level, text: fields.slice(2).join("  ") };
    }
  }
  return { level: /^(panic|fatal error):/.test(line) ? "error" : "info", text: line };
}

/**
 * serverLevel is the server's logLevel for a vscode.LogLevel (Off 0, Trace 1,
 * Debug 2, Info 3, Warning 4, Error 5): the least the channel would show.
 */
export function serverLevel(channel: number): string {
  switch (channel) {
    case 1:
    case 2:
      return "debug";
    case 3:
      return "info";
    case 4:
      return "warn";
    default:
      return "error";
  }
}
