#!/usr/bin/env bash
# End-to-end test of the Emacs client: byte-compiles dfill.el (warnings are
# errors), then drives Emacs (--batch), Eglot and the real "dfill serve"
# ($DFILL, default <repo>/bin/dfill) through test.el.  Artifacts (server log,
# Eglot's JSON-RPC events, buffer dumps) go to $ARTIFACTS, else a temp dir.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
DFILL=${DFILL:-$root/bin/dfill}
case $DFILL in /*) ;; *) DFILL=$PWD/$DFILL ;; esac

if [ ! -x "$DFILL" ]; then
  echo "emacs test: no dfill binary at $DFILL (run 'make build' or set DFILL)" >&2
  exit 1
fi
for tool in emacs tmux; do
  if ! command -v "$tool" >/dev/null; then
    echo "emacs test: $tool not found (run editors/emacs/deps.sh)" >&2
    exit 1
  fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/dfill-emacs-test.XXXXXX")
if [ -n "${ARTIFACTS:-}" ]; then
  art=$ARTIFACTS/emacs
else
  art=$(mktemp -d "${TMPDIR:-/tmp}/dfill-emacs-artifacts.XXXXXX")
fi
mkdir -p "$art" "$work/lisp" "$work/home"
emacs_pid=
tmux_sock=$work/tmux.sock

kill_pid_file() { # FILE: kill the process whose pid FILE holds, if alive
  [ -s "$1" ] || return 0
  local pid
  pid=$(cat "$1")
  if kill -0 "$pid" 2>/dev/null; then
    echo "emacs test: process $pid ($1) was still running; killing it" >&2
    kill -9 "$pid" 2>/dev/null || true
    return 1
  fi
}

cleanup() {
  local rc=$?
  if [ -S "$tmux_sock" ]; then
    tmux -S "$tmux_sock" kill-server 2>/dev/null || true
    sleep 0.5
  fi
  if [ -n "$emacs_pid" ] && kill -0 "$emacs_pid" 2>/dev/null; then
    kill "$emacs_pid" 2>/dev/null || true
    sleep 1
    kill -9 "$emacs_pid" 2>/dev/null || true
  fi
  kill_pid_file "$art/dfill.pid" || rc=1
  kill_pid_file "$art/tty-dfill.pid" || rc=1
  rm -rf "$work"
  echo "emacs test: artifacts in $art"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Keep the user's Emacs configuration and ~/.emacs.d out of the test.
export HOME=$work/home

cp "$here/dfill.el" "$work/lisp/"
if ! timeout 120 emacs --batch -L "$work/lisp" \
    --eval '(setq byte-compile-error-on-warn t)' \
    -f batch-byte-compile "$work/lisp/dfill.el" >"$art/byte-compile.log" 2>&1; then
  echo "emacs test: dfill.el does not byte-compile cleanly:" >&2
  grep -v '^Loading' "$art/byte-compile.log" >&2 || true
  exit 1
fi
echo "ok   dfill.el byte-compiles without warnings ($(emacs --version | head -1))"

DFILL=$DFILL DFILL_TEST_DIR=$work DFILL_TEST_ARTIFACTS=$art \
DFILL_TEST_SAMPLE=$here/testdata/sample.go \
  timeout -k 5 180 emacs --batch -L "$work/lisp" -l "$here/test.el" \
    > >(tee "$art/test.log") 2>"$art/emacs-stderr.log" &
emacs_pid=$!
status=0
wait "$emacs_pid" || status=$?
emacs_pid=
if [ "$status" -ne 0 ]; then
  echo "emacs test: FAILED (exit $status); Emacs's stderr:" >&2
  grep -v '^Loading' "$art/emacs-stderr.log" | tail -40 >&2 || true
  exit 1
fi

# Part 2: Emacs in a terminal (tmux), typed at as a user would: the idle
# timer asks for the suggestion by itself, and the screen shows it.
tty=$work/tty
mkdir -p "$tty"
cp "$here/testdata/sample.go" "$tty/sample.go"
awk 'NR == 8 { print "\t\treturn err"; next } { print }' "$tty/sample.go" >"$work/expected.go"

wait_for() { # SECONDS COMMAND...: poll COMMAND every 0.1 s until it succeeds
  local tries=$(($1 * 10))
  shift
  for ((i = 0; i < tries; i++)); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}
screen() { tmux -S "$tmux_sock" capture-pane -p -t dfill "$@"; }
screen_has() { screen | grep -qF -- "$1"; }
snap() { # NAME: save the screen as text and with its colours (ANSI)
  screen >"$art/$1.txt"
  screen -e >"$art/$1.ansi"
}
tty_fail() {
  echo "FAIL terminal: $1" >&2
  screen >"$art/tty-failure.txt" 2>/dev/null || true
  cat "$art/tty-failure.txt" >&2 || true
  exit 1
}

tmux -S "$tmux_sock" -f /dev/null new-session -d -s dfill -x 100 -y 24 \
  env HOME="$HOME" TERM=tmux-256color DFILL="$DFILL" \
  DFILL_TEST_FILE="$tty/sample.go" DFILL_TEST_READY="$tty/ready" \
  DFILL_TEST_PID="$art/tty-dfill.pid" DFILL_TEST_LOG="$art/tty-dfill.log" \
  emacs -nw -q --no-site-file -L "$work/lisp" -l "$here/test-tty.el"
wait_for 30 grep -qx ready "$tty/ready" 2>/dev/null ||
  tty_fail "Emacs did not open the file with dfill: $(cat "$tty/ready" 2>/dev/null)"
wait_for 5 screen_has " dfill" || tty_fail "no dfill lighter in the mode line"
snap tty-1-opened

tmux -S "$tmux_sock" send-keys -t dfill Tab
wait_for 10 screen_has "return err" || tty_fail "no suggestion on the screen after TAB"
snap tty-2-suggestion
cmp -s "$tty/sample.go" "$here/testdata/sample.go" || tty_fail "showing the suggestion changed the file"
echo "ok   terminal: typing TAB on the blank line shows the suggestion (screen: $art/tty-2-suggestion.txt)"

tmux -S "$tmux_sock" send-keys -t dfill M-Enter C-x C-s
wait_for 10 cmp -s "$tty/sample.go" "$work/expected.go" ||
  tty_fail "after M-RET and C-x C-s the file is not as expected: $(diff "$work/expected.go" "$tty/sample.go")"
snap tty-3-accepted
echo "ok   terminal: M-RET accepts it, C-x C-s saves the expected bytes"

tmux -S "$tmux_sock" send-keys -t dfill C-x C-c
wait_for 10 bash -c '! tmux -S "$1" has-session -t dfill 2>/dev/null' _ "$tmux_sock" ||
  tty_fail "Emacs did not exit on C-x C-c"
wait_for 5 bash -c '! kill -0 "$(cat "$1")" 2>/dev/null' _ "$art/tty-dfill.pid" ||
  tty_fail "the dfill server outlived Emacs"
echo "ok   terminal: C-x C-c quits Emacs and its dfill server"

echo "emacs test: passed"
