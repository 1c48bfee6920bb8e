#!/usr/bin/env bash
# Installs what test.sh needs from Debian: Emacs (nox), Eglot, go-mode, and
# tmux (the terminal the interactive part of the test types into).
# Idempotent and quiet on success.
set -euo pipefail

pkgs=(emacs-nox elpa-eglot elpa-go-mode tmux)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -ne 0 ] && sudo=(sudo)

log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when the packages are not known yet.
if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
fi
if ! "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi
