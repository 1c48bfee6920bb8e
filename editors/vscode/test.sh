#!/usr/bin/env bash
# The VS Code extension's tests: unit tests of its pure parts, then the
# end-to-end test in code-server + chromium against $DFILL.
#   DFILL      the dfill binary (default: <repo>/bin/dfill, what `make build` writes)
#   ARTIFACTS  screenshots, buffer dumps and logs go to $ARTIFACTS/vscode (emptied first;
#              default: a new temp dir)
# Run deps.sh first. Exits non-zero on any failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
export DFILL=${DFILL:-$root/bin/dfill}
if [[ -n ${ARTIFACTS:-} ]]; then
  ARTIFACTS=$ARTIFACTS/vscode
  rm -rf "$ARTIFACTS"
else
  ARTIFACTS=$(mktemp -d "${TMPDIR:-/tmp}/dfill-vscode-artifacts.XXXXXX")
fi
export ARTIFACTS
mkdir -p "$ARTIFACTS"
echo "vscode: artifacts in $ARTIFACTS"

if [[ ! -x $DFILL ]]; then
  echo "vscode: no dfill binary at $DFILL (run 'make build' or set DFILL)" >&2
  exit 1
fi
for d in "$here/node_modules" "$here/e2e/node_modules/code-server"; do
  if [[ ! -d $d ]]; then
    echo "vscode: $d is missing: run editors/vscode/deps.sh first" >&2
    exit 1
  fi
done

pgid_file=$(mktemp "${TMPDIR:-/tmp}/dfill-vscode-e2e.XXXXXX")
# Last resort should run.mjs itself be killed: its code-server process group.
cleanup() {
  local pgid
  pgid=$(cat "$pgid_file" 2>/dev/null || true)
  # Members of the group that are still running (zombies are only waiting to be reaped).
  if [[ -n $pgid ]] && ps -eo pgid=,stat= | awk -v g="$pgid" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'; then
    echo "vscode: killing code-server's process group $pgid" >&2
    kill -TERM -- "-$pgid" 2>/dev/null || true
    sleep 2
    kill -KILL -- "-$pgid" 2>/dev/null || true
  fi
  rm -f "$pgid_file"
}
trap cleanup EXIT

cd "$here"
echo "vscode: unit tests"
timeout 120 npm test --silent
echo "vscode: packaging"
timeout 180 npm run --silent package >"$ARTIFACTS/package.log" 2>&1 || { cat "$ARTIFACTS/package.log" >&2; exit 1; }
export VSIX=$here/dist/dfill.vsix
echo "vscode: end-to-end test in code-server ($("$DFILL" version))"
E2E_PGID_FILE=$pgid_file timeout -k 10 300 node "$here/e2e/run.mjs"
