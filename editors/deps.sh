#!/usr/bin/env bash
# Installs what the tests need beyond Go and gcc, on Debian: Node.js and
# npm (the VS Code protocol test, the VS Code extension), Python 3 (its
# standard library is a corpus of valid code for completion/syntax), g++
# (the CUDA kernels compiled for the CPU's emulation of them), then
# what each editor's own end-to-end test needs (editors/*/deps.sh).
# Idempotent: it installs only what is missing, with sudo when not root.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v python3 >/dev/null || missing+=(python3)
command -v g++ >/dev/null || missing+=(g++) # the CUDA kernels' CPU emulation (make test-cudaemu)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# code-server 4.100.3 (the VS Code test's) runs on Node.js 20; Debian 12's
# nodejs package is 18.
major=$(node --version | sed 's/^v\([0-9]*\).*/\1/')
if [ "$major" -lt 20 ]; then
  echo "editors/deps.sh: Node.js $(node --version) is too old for the VS Code test (code-server needs 20 or newer)" >&2
  exit 1
fi

for editor in nvim emacs vscode; do
  "./$editor/deps.sh"
done
