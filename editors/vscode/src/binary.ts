// Finding the dfill binary: the dfill.path setting, then PATH. No vscode
// import: the search is unit-tested with a fake file system.

import * as os from "os";
import * as path from "path";

/** Where the binary was found, or why it was not. */
export type Found =
  | { ok: true; path: string; from: "setting" | "PATH" }
  | { ok: false; message: string };

/** Reports whether a file at p exists and is executable. */
export type IsExecutable = (p: string) => boolean;

/**
 * findBinary returns the dfill to start: the dfill.path setting when it is
 * set (with a leading ~ for the home folder), else the first executable
 * "dfill" in the PATH directories.
 */
export function findBinary(
  setting: string,
  envPath: string | undefined,
  isExecutable: IsExecutable,
  platform: NodeJS.Platform = process.platform,
  home: string = os.homedir(),
): Found {
  const configured = setting.trim();
  if (configured !== "") {
    const p = configured === "~" || configured.startsWith("~/") ? path.join(home, configured.slice(1)) : configured;
    if (isExecutable(p)) {
      return { ok: true, path: p, from: "setting" };
    }
    return { ok: false, message: `The setting dfill.path is ${JSON.stringify(configured)}, but there is no executable file there.` };
  }
  const names = platform === "win32" ? ["dfill.exe", "dfill"] : ["dfill"];
  const sep = platform === "win32" ? ";" : ":";
  for (const dir of (envPath ?? "").split(sep)) {
    if (dir === "") {
      continue;
    }
    for (const name of names) {
      const p = path.join(dir, name);
      if (isExecutable(p)) {
        return { ok: true, path: p, from: "PATH" };
      }
    }
  }
  return { ok: false, message: "dfill was not found: the setting dfill.path is empty and there is no dfill on PATH." };
}
