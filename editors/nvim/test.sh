#!/usr/bin/env bash
# End-to-end test of the dfill Neovim plugin in real Neovim (Debian's nvim,
# 0.7.2 on bookworm): a headless Neovim drives a Neovim with the plugin from
# this folder and the real `dfill serve`, types on the blank line inside
# `if err != nil {`, checks the ghost text, accepts it, writes the file and
# checks its bytes. Exits non-zero on any failure.
#
#   DFILL     the dfill binary (default: <repo>/bin/dfill, what `make build` writes)
#   NVIM_BIN  the Neovim to test with (default: nvim)
#   ARTIFACTS where screens, logs and written files go (default: a temp dir)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dfill="${DFILL:-$root/bin/dfill}"
nvim_bin="${NVIM_BIN:-nvim}"

case "$dfill" in /*) ;; *) dfill="$PWD/$dfill" ;; esac
if [ ! -x "$dfill" ]; then
  echo "nvim test: $dfill is not executable (run make build, or set DFILL)" >&2
  exit 1
fi
if ! command -v "$nvim_bin" >/dev/null; then
  echo "nvim test: $nvim_bin not found (run editors/nvim/deps.sh)" >&2
  exit 1
fi

if [ -n "${ARTIFACTS:-}" ]; then
  art="$ARTIFACTS/nvim"
  rm -rf "$art"
  mkdir -p "$art"
else
  art="$(mktemp -d "${TMPDIR:-/tmp}/dfill-nvim-test.XXXXXX")"
fi
art="$(cd "$art" && pwd)"
echo "nvim test: $("$nvim_bin" --version | head -1), artifacts in $art"

# Every process the test starts: the driver's process group, plus the
# Neovim under test and the servers, whose ids the driver writes to $art/pids
# (a terminal job gets a session of its own).
driver=""
cleanup() {
  if [ -n "$driver" ]; then
    kill -TERM -- "-$driver" 2>/dev/null || true
  fi
  if [ -f "$art/pids" ]; then
    while read -r pid; do
      kill -TERM "$pid" 2>/dev/null || true
    done <"$art/pids"
  fi
}
trap cleanup EXIT

export DFILL="$dfill" DFILL_PLUGIN="$here" DFILL_ARTIFACTS="$art" NVIM_BIN="$nvim_bin"
export DFILL_SAMPLE="${DFILL_SAMPLE:-$root/cmd/dfill/testdata/sample.go}"
unset NVIM NVIM_LISTEN_ADDRESS

# setsid: the driver leads a process group of its own, which cleanup ends.
setsid timeout -k 5 240 "$nvim_bin" --headless -u NONE -i NONE -n \
  -c "luafile $here/test/driver.lua" </dev/null >"$art/driver.out" 2>&1 &
driver=$!
rc=0
wait "$driver" || rc=$?
cat "$art/driver.out"
if [ "$rc" -ne 0 ]; then
  echo "nvim test: FAIL (exit $rc); server logs: $art/*/server.log" >&2
  exit "$rc"
fi
echo "nvim test: ok"
