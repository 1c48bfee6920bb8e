// "Show diffusion": a webview that plays the denoising steps of the last
// completion, masked positions turning into code step by step.

import * as crypto from "crypto";
import * as vscode from "vscode";
import { frames, type Recording } from "./diffusion";

/** What the view's script receives (media/diffusion.js reads it). */
export interface ViewData {
  file: string;
  line: number; // 1-based, as shown
  character: number; // 1-based
  answer?: string;
  context?: { before: string; after: string };
  complete: boolean;
  frames: ReturnType<typeof frames>;
}

/** viewData prepares a recording for the view. */
export function viewData(rec: Recording): ViewData {
  const uri = vscode.Uri.parse(rec.uri);
  return {
    file: uri.scheme === "file" ? vscode.workspace.asRelativePath(uri) : rec.uri,
    line: rec.position.line + 1,
    character: rec.position.character + 1,
    answer: rec.answer,
    context: rec.context,
    complete: rec.complete,
    frames: frames(rec),
  };
}

/** DiffusionPanel is the one "dfill: diffusion" webview panel. */
export class DiffusionPanel implements vscode.Disposable {
  static readonly viewType = "dfill.diffusion";
  private static current?: DiffusionPanel;

  private readonly disposables: vscode.Disposable[] = [];
  private data?: ViewData;

  /** show opens the panel (or brings it forward) and plays rec. */
  static show(extensionUri: vscode.Uri, rec: Recording | undefined): DiffusionPanel {
    let p = DiffusionPanel.current;
    if (p) {
      p.panel.reveal(undefined, true);
    } else {
      const panel = vscode.window.createWebviewPanel(
        DiffusionPanel.viewType,
        "dfill: diffusion",
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
        {
          enableScripts: true,
          localResourceRoots: [vscode.Uri.joinPath(extensionUri, "media")],
        },
      );
      p = new DiffusionPanel(panel, extensionUri);
      DiffusionPanel.current = p;
    }
    p.play(rec);
    return p;
  }

  /** updateIfOpen plays rec in the panel when the panel is open and showing that document. */
  static updateIfOpen(rec: Recording): void {
    const p = DiffusionPanel.current;
    if (p && (p.data === undefined || p.showsUri === rec.uri)) {
      p.play(rec);
    }
  }

  private showsUri?: string;

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
  ) {
    panel.webview.html = html(panel.webview, extensionUri);
    panel.onDidDispose(() => this.dispose(), null, this.disposables);
    panel.webview.onDidReceiveMessage(
      (m: { type?: string }) => {
        if (m?.type === "ready") {
          this.post();
        }
      },
      null,
      this.disposables,
    );
  }

  private play(rec: Recording | undefined): void {
    this.showsUri = rec?.uri;
    this.data = rec ? viewData(rec) : undefined;
    this.post();
  }

  private post(): void {
    void this.panel.webview.postMessage({ type: "recording", data: this.data ?? null });
  }

  dispose(): void {
    if (DiffusionPanel.current === this) {
      DiffusionPanel.current = undefined;
    }
    this.panel.dispose();
    for (const d of this.disposables.splice(0)) {
      d.dispose();
    }
  }
}

/** html is the view's page: a strict CSP, local files only, the script by nonce. */
function html(webview: vscode.Webview, extensionUri: vscode.Uri): string {
  const nonce = crypto.randomBytes(18).toString("base64");
  const media = (f: string) => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, "media", f));
  const csp = [
    "default-src 'none'",
    `style-src ${webview.cspSource}`,
    `img-src ${webview.cspSource}`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join("; ");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${media("diffusion.css")}">
<title>dfill: diffusion</title>
</head>
<body>
<header>
  <h1>Diffusion of the last completion</h1>
  <p id="where" class="where"></p>
</header>
<div class="controls">
  <button id="play" type="button">Play</button>
  <button id="replay" type="button">Replay</button>
  <input id="scrub" type="range" min="1" max="1" value="1" aria-label="step">
  <span id="counter" class="counter" aria-live="polite">step 0 / 0</span>
</div>
<p class="legend"><span class="mask">\u2591</span> masked <span class="new">fixed in this step</span> <span class="old">fixed before</span> <span class="answer">the answer</span></p>
<pre id="canvas" class="canvas"></pre>
<p id="answer" class="answer" hidden></p>
<ol id="timeline" class="timeline"></ol>
<p id="empty" class="empty" hidden>No completion has been denoised yet in this editor. Type in a Go, Python, JavaScript, TypeScript, Rust, C, C++ or Java file until dfill shows a suggestion, then run <b>dfill: Show Diffusion</b> again.</p>
<script nonce="${nonce}" src="${media("diffusion.js")}"></script>
</body>
</html>`;
}
