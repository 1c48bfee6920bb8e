// The status bar item: what the server is doing, its model, the last
// completion's latency, and errors. Clicking it opens the command menu.

import * as vscode from "vscode";

/** The dfill/stats answer. */
export interface Stats {
  count: number;
  cancelled: number;
  cacheHits: number;
  totalMs: number;
  modelMs: number;
  ownP50Ms: number;
  ownP95Ms: number;
  ownMaxMs: number;
  lastMs?: number; // the last answered request, end to end in the server
  pid?: number;
  model?: string;
  modelError?: string;
}

/** The state the item shows. */
export interface StatusState {
  phase: "starting" | "loading" | "ready" | "stopped" | "failed";
  enabled: boolean;
  version?: string;
  binary?: string;
  model?: string;
  error?: string; // why the server is not running, or the model's load error
  lastMs?: number; // round trip of the last completion that showed text
  stats?: Stats;
}

/** Status shows a StatusState in the status bar. */
export class Status implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private state: StatusState = { phase: "starting", enabled: true };
  private visibleFlag = false;

  constructor() {
    this.item = vscode.window.createStatusBarItem("dfill.status", vscode.StatusBarAlignment.Right, 100);
    this.item.name = "dfill";
    this.item.command = "dfill.showMenu";
    this.render();
  }

  /** update merges fields into the state and redraws. */
  update(change: Partial<StatusState>): void {
    this.state = { ...this.state, ...change };
    this.render();
  }

  get current(): Readonly<StatusState> {
    return this.state;
  }

  /** setVisible shows the item while an editor of a dfill language is active. */
  setVisible(visible: boolean): void {
    this.visibleFlag = visible;
    if (visible) {
      this.item.show();
    } else {
      this.item.hide();
    }
  }

  get visible(): boolean {
    return this.visibleFlag;
  }

  private render(): void {
    const s = this.state;
    const modelError = s.stats?.modelError;
    let text: string;
    let bg: vscode.ThemeColor | undefined;
    if (s.phase === "failed") {
      text = "$(error) dfill";
      bg = new vscode.ThemeColor("statusBarItem.errorBackground");
    } else if (modelError) {
      text = "$(warning) dfill: no model";
      bg = new vscode.ThemeColor("statusBarItem.warningBackground");
    } else if (s.phase === "starting" || s.phase === "loading") {
      text = s.phase === "loading" ? "$(loading~spin) dfill: loading model" : "$(loading~spin) dfill";
    } else if (s.phase === "stopped") {
      text = "$(debug-stop) dfill";
    } else if (!s.enabled) {
      text = "$(circle-slash) dfill off";
    } else {
      text = `$(sparkle) ${s.model ?? s.stats?.model ?? "dfill"}`;
      if (s.lastMs !== undefined) {
        text += ` ${Math.round(s.lastMs)} ms`;
      }
    }
    this.item.text = text;
    this.item.backgroundColor = bg;
    this.item.tooltip = tooltip(s);
    this.item.accessibilityInformation = { label: text.replace(/\$\([^)]*\)\s*/g, "") };
  }

  dispose(): void {
    this.item.dispose();
  }
}

function tooltip(s: StatusState): vscode.MarkdownString {
  const lines: string[] = [];
  lines.push(`**dfill**${s.version ? ` ${s.version}` : ""} — completions ${s.enabled ? "on" : "off"}`);
  if (s.phase === "failed" && s.error) {
    lines.push(`$(error) ${s.error}`);
  }
  if (s.stats?.modelError) {
    lines.push(`$(warning) model failed to load: ${s.stats.modelError}`);
  }
  const model = s.model ?? s.stats?.model;
  if (model) {
    lines.push(`model: ${model}`);
  }
  if (s.lastMs !== undefined) {
    lines.push(`last completion: ${Math.round(s.lastMs)} ms`);
  }
  const st = s.stats;
  if (st && st.count > 0) {
    lines.push(
      `${st.count} completions (${st.cacheHits} from cache, ${st.cancelled} cancelled); model ${Math.round(st.modelMs / st.count)} ms on average; server's own time p50 ${st.ownP50Ms.toFixed(1)} ms, p95 ${st.ownP95Ms.toFixed(1)} ms`,
    );
  }
  if (st?.lastMs) {
    lines.push(`last request in the server: ${st.lastMs.toFixed(1)} ms`);
  }
  if (s.binary) {
    lines.push(`binary: \`${s.binary}\`${st?.pid ? ` (pid ${st.pid})` : ""}`);
  }
  lines.push("", "Click for dfill's commands.");
  const md = new vscode.MarkdownString(lines.join("  \n"), true);
  return md;
}
