// The dfill binary's version, from `dfill version --json`, and the check
// against the oldest server this extension speaks to. No vscode import.

/** The oldest dfill this extension works with. */
export const MIN_VERSION = "0.2.0";

/** What a version check found. */
export type VersionCheck =
  | { ok: true; version: string }
  | { ok: false; reason: "old"; version: string; message: string }
  | { ok: false; reason: "unknown"; message: string };

/**
 * parseVersion reads the version from what `dfill version --json` printed
 * ({"version":"0.2.0",...}); for a build too old to know --json it falls
 * back to the plain line "dfill 0.2.0 (go1.26.8, linux/amd64)".
 * It returns undefined when neither form holds a version.
 */
export function parseVersion(stdout: string): string | undefined {
  const text = stdout.trim();
  try {
    const v = JSON.parse(text) as { version?: unknown };
    if (v && typeof v.version === "string" && v.version !== "") {
      return v.version;
    }
  } catch {
    // not JSON: the plain form below
  }
  const m = /^dfill\s+v?(\d+\.\d+\.\d+\S*)/m.exec(text);
  return m?.[1];
}

/**
 * compareVersions compares the numeric cores (major.minor.patch) of two
 * versions, with or without a leading "v": negative when a < b, 0 when
 * equal, positive when a > b. A pre-release or build suffix ("0.2.0-dev",
 * "0.2.0+abc") counts as its core: a development build of 0.2.0 speaks
 * 0.2.0's protocol. It returns undefined when either is not a version.
 */
export function compareVersions(a: string, b: string): number | undefined {
  const pa = core(a);
  const pb = core(b);
  if (!pa || !pb) {
    return undefined;
  }
  for (let i = 0; i < 3; i++) {
    if (pa[i] !== pb[i]) {
      return pa[i] - pb[i];
    }
  }
  return 0;
}

function core(v: string): number[] | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/.exec(v.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** checkVersion judges the output of `dfill version --json` of the binary at path. */
export function checkVersion(path: string, stdout: string, min = MIN_VERSION): VersionCheck {
  const version = parseVersion(stdout);
  if (version === undefined) {
    return {
      ok: false,
      reason: "unknown",
      message: `${path} did not report its version ("dfill version --json" printed ${JSON.stringify(stdout.trim().slice(0, 80))}); it may not be dfill, or older than ${min}.`,
    };
  }
  const cmp = compareVersions(version, min);
  if (cmp === undefined) {
    return {
      ok: false,
      reason: "unknown",
      message: `${path} reports version ${JSON.stringify(version)}, which is not a version this extension can compare with ${min}.`,
    };
  }
  if (cmp < 0) {
    return {
      ok: false,
      reason: "old",
      version,
      message: `${path} is dfill ${version}; this extension needs dfill ${min} or newer.`,
    };
  }
  return { ok: true, version };
}
