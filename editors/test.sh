#!/usr/bin/env bash
# Runs each editor's end-to-end test against the dfill binary in $DFILL
# (default: bin/dfill, which `make build` writes). Artifacts (screenshots,
# buffers, logs) go under $ARTIFACTS when it is set.
set -euo pipefail
cd "$(dirname "$0")"
export DFILL="${DFILL:-$(cd .. && pwd)/bin/dfill}"

failed=()
for editor in nvim emacs vscode; do
  echo "== editors/$editor"
  start=$(date +%s)
  if "./$editor/test.sh"; then
    echo "== editors/$editor: passed in $(( $(date +%s) - start ))s"
  else
    echo "== editors/$editor: FAILED after $(( $(date +%s) - start ))s"
    failed+=("$editor")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "editor tests failed: ${failed[*]}" >&2
  exit 1
fi
