// Settings: the extension's `dfill.*` settings and the server's "dfill"
// section they map to. No vscode import: the mapping is unit-tested.

/** The languages dfill validates with tree-sitter (LSP language ids). */
export const LANGUAGES = [
  "go",
  "python",
  "javascript",
  "typescript",
  "typescriptreact",
  "rust",
  "c",
  "cpp",
  "java",
] as const;

/** The server's settings section (dfill's lsp.Config), as sent to it. */
export interface ServerSection {
  model: string;
  backend: string;
  steps: number;
  algorithm: string;
  threshold: number;
  maxTokens: number;
  contextTokens: number;
  debounceMs: number;
  languages: string[];
  denoiseNotifications: boolean;
  logLevel: string;
  /** null: the model's calibrated threshold. */
  minScore: number | null;
}

/** Reads one setting of the `dfill` section (vscode's WorkspaceConfiguration.get). */
export type Get = (key: string) => unknown;

/**
 * serverSection builds the section the server receives from the user's
 * settings. The server overlays what it receives on its current settings
 * field by field, so every key is sent, with the server's "default" zero
 * value ("" or 0 or [], null for minScore) where the user set nothing: resetting a setting
 * then resets it in the server too. Values are passed as they are, so a
 * malformed one reaches the server, whose message names the key.
 * Settings of the extension alone (path, enable) are not sent;
 * recordDiffusion becomes denoiseNotifications. An empty logLevel follows
 * the level of the extension's output channel (channelLevel).
 */
export function serverSection(get: Get, channelLevel = ""): ServerSection {
  const or = <T>(key: string, zero: T): T => {
    const v = get(key);
    return v === undefined || v === null ? zero : (v as T);
  };
  return {
    model: or("model", ""),
    backend: or("backend", ""),
    steps: or("steps", 0),
    algorithm: or("algorithm", ""),
    threshold: or("threshold", 0),
    maxTokens: or("maxTokens", 0),
    contextTokens: or("contextTokens", 0),
    debounceMs: or("debounceMs", 0),
    languages: or<string[]>("languages", []),
    denoiseNotifications: or("recordDiffusion", true),
    logLevel: or("logLevel", "") || channelLevel,
    minScore: or<number | null>("minScore", null),
  };
}

/** Settings whose change needs a new server process rather than a message. */
export const RESTART_KEYS = ["dfill.path"];
