#!/usr/bin/env bash
# Installs what editors/nvim/test.sh needs: Debian's neovim (and setsid,
# timeout from util-linux and coreutils). Idempotent, quiet on success.
set -euo pipefail

missing=()
command -v nvim >/dev/null || missing+=(neovim)
command -v setsid >/dev/null || missing+=(util-linux)
command -v timeout >/dev/null || missing+=(coreutils)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "nvim deps: installing ${missing[*]} failed" >&2
  exit 1
fi
