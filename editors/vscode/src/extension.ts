// The dfill extension: starts `dfill serve` for the languages dfill
// validates and lets vscode-languageclient bring its inline completions to
// the editor; adds settings, a status bar item, commands and the
// "Show diffusion" view.

import * as cp from "child_process";
import * as fs from "fs";
import * as readline from "readline";
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  RevealOutputChannelOn,
  State,
  type LanguageClientOptions,
  type ServerOptions,
} from "vscode-languageclient/node";
import { findBinary } from "./binary";
import { LANGUAGES, RESTART_KEYS, serverSection, type ServerSection } from "./config";
import { contextAround, Recorder, type DenoiseParams, type Position } from "./diffusion";
import { Status, type Stats } from "./status";
import { parseLogLine, serverLevel } from "./serverlog";
import { checkVersion } from "./version";
import { DiffusionPanel } from "./webview";

/** How often the status bar asks the server for dfill/stats while it is shown. */
const STATS_EVERY_MS = 5000;

let controller: Controller | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  controller = new Controller(context);
  context.subscriptions.push(controller);
  await controller.restart();
}

export async function deactivate(): Promise<void> {
  await controller?.stopClient();
}

/** Controller owns the client, the status bar item and the commands. */
class Controller implements vscode.Disposable {
  private readonly log = vscode.window.createOutputChannel("dfill", { log: true });
  private readonly status = new Status();
  private readonly recorder = new Recorder();
  private readonly disposables: vscode.Disposable[] = [];
  private client?: LanguageClient;
  private stopping = false;
  private enabled: boolean;
  private statsTimer?: NodeJS.Timeout;
  private statsSoon?: NodeJS.Timeout;
  private restartSoon?: NodeJS.Timeout;
  // Starts and stops run one after the other, in the order asked.
  private lifecycle: Promise<void> = Promise.resolve();

  constructor(private readonly context: vscode.ExtensionContext) {
    this.enabled = settings().get<boolean>("enable", true);
    this.status.update({ enabled: this.enabled });
    this.disposables.push(
      this.log,
      this.status,
      vscode.commands.registerCommand("dfill.restart", () => {
        this.log.info("restarting the server");
        return this.restart();
      }),
      vscode.commands.registerCommand("dfill.showLog", () => this.log.show(true)),
      vscode.commands.registerCommand("dfill.toggle", () => this.toggle()),
      vscode.commands.registerCommand("dfill.showDiffusion", () => this.showDiffusion()),
      vscode.commands.registerCommand("dfill.showMenu", () => this.showMenu()),
      vscode.workspace.onDidChangeConfiguration((e) => this.onConfiguration(e)),
      vscode.window.onDidChangeActiveTextEditor(() => this.updateVisibility()),
      vscode.workspace.onDidCloseTextDocument((d) => this.recorder.forget(d.uri.toString())),
      // An empty dfill.logLevel follows the channel's level.
      this.log.onDidChangeLogLevel(() => {
        if (!settings().get<string>("logLevel")) {
          void this.pushSection();
        }
      }),
    );
    this.statsTimer = setInterval(() => {
      if (this.status.visible && vscode.window.state.focused) {
        void this.pollStats();
      }
    }, STATS_EVERY_MS);
    this.updateVisibility();
  }

  /** restart stops the server, if one runs, and starts it again (finding dfill anew). */
  restart(): Promise<void> {
    this.lifecycle = this.lifecycle.then(async () => {
      await this.stop();
      await this.start();
    });
    return this.lifecycle;
  }

  /** stopClient stops the server, if one runs. */
  stopClient(): Promise<void> {
    this.lifecycle = this.lifecycle.then(() => this.stop());
    return this.lifecycle;
  }

  /** start finds dfill, checks its version and starts the language client. */
  private async start(): Promise<void> {
    const found = findBinary(settings().get<string>("path", ""), process.env.PATH, isExecutable);
    if (!found.ok) {
      this.fail(found.message, `${found.message} Install dfill, then put it on PATH or set dfill.path.`);
      return;
    }
    const bin = found.path;
    this.status.update({ phase: "starting", binary: bin, error: undefined, stats: undefined, model: undefined, lastMs: undefined });
    let out: string;
    try {
      out = await run(bin, ["version", "--json"], 10_000);
    } catch (err) {
      this.fail(`${bin} version --json failed: ${errorText(err)}`, `Cannot run ${bin}: ${errorText(err)}. Check dfill.path.`);
      return;
    }
    const v = checkVersion(bin, out);
    if (!v.ok) {
      this.fail(v.message, v.reason === "old" ? `${v.message} Update dfill.` : v.message);
      return;
    }
    this.log.info(`starting ${bin} serve (dfill ${v.version}, from ${found.from})`);
    this.status.update({ version: v.version });

    const serverOptions: ServerOptions = { command: bin, args: ["serve"] };
    const clientOptions: LanguageClientOptions = {
      documentSelector: LANGUAGES.map((language) => ({ scheme: "file", language })),
      outputChannel: this.log,
      traceOutputChannel: this.log,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      stdioOptions: {
        stdout: (input, channel) => lines(input, (l) => channel.info(l)),
        // The server logs to stderr at its levels; the channel keeps them.
        stderr: (input, channel) =>
          lines(input, (l) => {
            const { level, text } = parseLogLine(l);
            channel[level](text);
          }),
      },
      initializationOptions: () => this.section(),
      synchronize: { configurationSection: "dfill" },
      middleware: {
        provideInlineCompletionItems: async (document, position, ctx, token, next) => {
          if (!this.enabled) {
            return null;
          }
          const t0 = performance.now();
          const res = await next(document, position, ctx, token);
          const items = Array.isArray(res) ? res : (res?.items ?? []);
          if (!token.isCancellationRequested && items.length > 0) {
            const ms = performance.now() - t0;
            this.status.update({ lastMs: ms });
            this.log.debug(`inline completion at ${position.line + 1}:${position.character + 1}: ${items.length} item(s) in ${ms.toFixed(1)} ms`);
            const first = items[0].insertText;
            const uri = document.uri.toString();
            const at: Position = { line: position.line, character: position.character };
            this.recorder.answer(uri, at, typeof first === "string" ? first : first.value);
            const rec = this.recorder.last(uri);
            if (rec?.complete && rec.position.line === at.line && rec.position.character === at.character) {
              DiffusionPanel.updateIfOpen(rec);
            }
          }
          this.pollStatsSoon();
          return res;
        },
        provideCompletionItem: (document, position, ctx, token, next) => (this.enabled ? next(document, position, ctx, token) : null),
        handleWorkDoneProgress: (token, params, next) => {
          if (params.kind === "begin" && /model/.test(params.title)) {
            this.status.update({ phase: "loading" });
          } else if (params.kind === "end") {
            const m = /^loaded (.+)$/.exec(params.message ?? "");
            this.status.update({ phase: "ready", model: m?.[1] });
            void this.pollStats();
          }
          next(token, params);
        },
        workspace: {
          // What the server receives is its own section, mapped from the
          // user's settings (see serverSection), whether it pulls ...
          configuration: (params, token, next) => {
            const items = params.items;
            if (!items.some((it) => it.section === "dfill")) {
              return next(params, token);
            }
            return items.map((it) => (it.section === "dfill" ? this.section(it.scopeUri) : null));
          },
          // ... or is told on a change.
          didChangeConfiguration: () => this.pushSection(),
        },
      },
    };

    const client = new LanguageClient("dfill", "dfill", serverOptions, clientOptions);
    this.client = client;
    this.stopping = false;
    client.onDidChangeState((e) => {
      if (this.client !== client) {
        return;
      }
      if (e.newState === State.Running) {
        this.status.update({ phase: this.status.current.model ? "ready" : "loading", error: undefined });
      } else if (e.newState === State.Stopped && !this.stopping) {
        this.status.update({ phase: "failed", error: "the dfill server stopped; see the log, or restart it" });
      }
    });
    client.onNotification("dfill/denoise", (p: DenoiseParams) => {
      this.recorder.add(p, (uri, at) => {
        const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri);
        return doc ? contextAround(doc.getText(), at) : undefined;
      });
    });
    try {
      await client.start();
    } catch (err) {
      if (this.client === client) {
        this.fail(`starting ${bin} serve failed: ${errorText(err)}`, `dfill could not start: ${errorText(err)}`);
      }
      return;
    }
    void this.pollStats();
  }

  /** section is the server's settings section for a resource (the scopeUri of workspace/configuration). */
  private section(scopeUri?: string): ServerSection {
    const cfg = settings(scopeUri ? vscode.Uri.parse(scopeUri) : undefined);
    const s = serverSection((key) => cfg.get(key), serverLevel(this.log.logLevel));
    this.log.info(`settings for the server: ${JSON.stringify(s)}`);
    return s;
  }

  /** pushSection sends the server its section with workspace/didChangeConfiguration. */
  private async pushSection(): Promise<void> {
    const client = this.client;
    if (client?.isRunning()) {
      await client.sendNotification(DidChangeConfigurationNotification.type, { settings: { dfill: this.section() } });
    }
  }

  /** stop shuts the server down (shutdown, exit) and drops the client. */
  private async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) {
      return;
    }
    this.stopping = true;
    try {
      await client.dispose(3000);
    } catch (err) {
      this.log.warn(`stopping the server: ${errorText(err)}`);
    }
    this.status.update({ phase: "stopped" });
  }

  private toggle(): void {
    this.enabled = !this.enabled;
    this.status.update({ enabled: this.enabled });
    if (!this.enabled) {
      void vscode.commands.executeCommand("editor.action.inlineSuggest.hide");
    }
    void vscode.window.setStatusBarMessage(`dfill: completions ${this.enabled ? "on" : "off"}`, 2000);
  }

  private showDiffusion(): void {
    const editor = vscode.window.activeTextEditor;
    const rec = (editor && this.recorder.last(editor.document.uri.toString())) ?? this.recorder.latest();
    if (!settings().get<boolean>("recordDiffusion", true)) {
      void vscode.window.showInformationMessage("dfill: the setting dfill.recordDiffusion is off, so no steps are recorded.");
    }
    DiffusionPanel.show(this.context.extensionUri, rec);
  }

  private async showMenu(): Promise<void> {
    type Item = vscode.QuickPickItem & { command: string; args?: unknown[] };
    const s = this.status.current;
    const items: Item[] = [
      {
        label: this.enabled ? "$(circle-slash) Turn completions off" : "$(check) Turn completions on",
        command: "dfill.toggle",
      },
      { label: "$(play) Show diffusion", description: "the denoising steps of the last completion", command: "dfill.showDiffusion" },
      { label: "$(debug-restart) Restart the server", command: "dfill.restart" },
      { label: "$(output) Show log", command: "dfill.showLog" },
      { label: "$(gear) Settings", command: "workbench.action.openSettings", args: ["@ext:dfill.dfill"] },
    ];
    const pick = await vscode.window.showQuickPick(items, {
      title: `dfill${s.version ? ` ${s.version}` : ""}${s.model ? ` — ${s.model}` : ""}`,
      placeHolder: s.error ?? s.stats?.modelError ?? "dfill",
    });
    if (pick) {
      await vscode.commands.executeCommand(pick.command, ...(pick.args ?? []));
    }
  }

  private onConfiguration(e: vscode.ConfigurationChangeEvent): void {
    if (e.affectsConfiguration("dfill.enable")) {
      this.enabled = settings().get<boolean>("enable", true);
      this.status.update({ enabled: this.enabled });
    }
    if (RESTART_KEYS.some((k) => e.affectsConfiguration(k))) {
      // One restart for a burst of changes (a settings file written twice).
      clearTimeout(this.restartSoon);
      this.restartSoon = setTimeout(() => {
        this.log.info(`dfill.path is now ${JSON.stringify(settings().get<string>("path", ""))}: restarting the server`);
        void this.restart();
      }, 300);
    }
    // The other keys reach the running server through the client's
    // configuration synchronisation (the middleware above).
  }

  private updateVisibility(): void {
    const doc = vscode.window.activeTextEditor?.document;
    const ours = doc !== undefined && (LANGUAGES as readonly string[]).includes(doc.languageId);
    this.status.setVisible(ours || this.status.current.phase === "failed");
    if (ours) {
      void this.pollStats();
    }
  }

  /** pollStats asks the server for dfill/stats and shows the answer. */
  private async pollStats(): Promise<void> {
    const client = this.client;
    if (!client || !client.isRunning()) {
      return;
    }
    try {
      const st = await client.sendRequest<Stats>("dfill/stats");
      if (this.client === client && st) {
        const phase = this.status.current.phase;
        this.status.update({
          stats: st,
          model: st.model || this.status.current.model,
          // A server that reports no progress is ready once it names its model.
          phase: st.model && (phase === "starting" || phase === "loading") ? "ready" : phase,
        });
      }
    } catch (err) {
      this.log.debug(`dfill/stats: ${errorText(err)}`);
    }
  }

  /** pollStatsSoon polls once, shortly after a burst of completions. */
  private pollStatsSoon(): void {
    if (this.statsSoon === undefined) {
      this.statsSoon = setTimeout(() => {
        this.statsSoon = undefined;
        void this.pollStats();
      }, 500);
    }
  }

  /** fail shows why dfill is not running: in the status bar, the log and a notification. */
  private fail(logLine: string, message: string): void {
    this.log.error(logLine);
    this.status.update({ phase: "failed", error: message });
    this.updateVisibility();
    void vscode.window.showErrorMessage(`dfill: ${message}`, "Install Guide", "Open Settings", "Show Log").then((choice) => {
      if (choice === "Install Guide") {
        // vsce packs README.md as readme.md.
        const readme = ["README.md", "readme.md"].map((f) => vscode.Uri.joinPath(this.context.extensionUri, f)).find((u) => fs.existsSync(u.fsPath));
        void vscode.commands.executeCommand("markdown.showPreview", readme);
      } else if (choice === "Open Settings") {
        void vscode.commands.executeCommand("workbench.action.openSettings", "dfill.path");
      } else if (choice === "Show Log") {
        this.log.show(true);
      }
    });
  }

  dispose(): void {
    clearInterval(this.statsTimer);
    clearTimeout(this.statsSoon);
    clearTimeout(this.restartSoon);
    void this.stopClient();
    for (const d of this.disposables.splice(0)) {
      d.dispose();
    }
  }
}

function settings(scope?: vscode.ConfigurationScope): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration("dfill", scope);
}

function lines(input: NodeJS.ReadableStream, each: (line: string) => void): void {
  readline.createInterface({ input, crlfDelay: Infinity, terminal: false, historySize: 0 }).on("line", each);
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** run runs a short command and returns its stdout. */
function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    cp.execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`${err.message}${stderr ? `: ${stderr.trim()}` : ""}`));
      } else {
        resolve(stdout);
      }
    });
  });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
