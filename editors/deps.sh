#!/usr/bin/env bash
# Installs what the tests need beyond Go and gcc, on Debian: Node.js and
# npm (the VS Code protocol test, the VS Code extension), Python 3 (its
# standard library is a corpus of valid code for completion/syntax), then
# what each editor's own end-to-end test needs (editors/*/deps.sh).
# Idempotent: it installs only what is missing, with sudo when not root.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for editor in nvim emacs vscode; do
  "./$editor/deps.sh"
done
