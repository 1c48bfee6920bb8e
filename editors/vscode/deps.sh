#!/usr/bin/env bash
# Installs what editors/vscode's build and tests need: Debian packages
# (chromium, ripgrep, a C++ toolchain and Kerberos headers for code-server's
# native modules) when missing, and the npm packages of the extension and of
# its end-to-end test (code-server 4.100.3, playwright-core) with `npm ci`
# from the lockfiles. Idempotent: a second run checks and does nothing.
# Quiet on success; on failure it prints the log of the step that failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/dfill-vscode-deps.XXXXXX")
trap 'rm -rf "$work"' EXIT

# step NAME CMD...: runs CMD with its output in a log, shown only on failure.
step() {
  local name=$1
  shift
  if ! "$@" >"$work/log" 2>&1; then
    echo "vscode deps: $name failed:" >&2
    tail -n 60 "$work/log" >&2
    exit 1
  fi
}

# Debian packages.
packages=(chromium ripgrep libkrb5-dev g++ make python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=()
  if [[ $(id -u) != 0 ]]; then
    sudo=(sudo)
  fi
  apt=(apt-get -o DPkg::Lock::Timeout=600) # another install may hold the lock for a while
  step "apt-get update" "${sudo[@]}" "${apt[@]}" update -qq
  step "apt-get install ${missing[*]}" "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}"
fi

# node_modules are installed with `npm ci` from the lockfile, then kept in
# a cache folder of this machine keyed by the lockfile's hash (and node's
# version): a fresh clone on the same machine (CI) copies them from there
# instead of building code-server's native modules again.
cache=${XDG_CACHE_HOME:-$HOME/.cache}/dfill/editors-vscode
key() { echo "$(node --version)-$(uname -m)-$(sha256sum "$1/package-lock.json" | cut -c1-16)"; }

# install DIR NAME [ENV...]: makes DIR/node_modules what DIR/package-lock.json asks for.
install() {
  local dir=$1 name=$2
  shift 2
  local k
  k=$(key "$dir")
  if [[ -f $dir/node_modules/.dfill-deps && $(cat "$dir/node_modules/.dfill-deps") == "$k" ]]; then
    return
  fi
  local saved=$cache/$name-$k
  if [[ -f $saved/.complete ]]; then
    rm -rf "$dir/node_modules"
    cp -a "$saved/node_modules" "$dir/node_modules"
  else
    step "npm ci ($name)" env "$@" bash -c 'cd "$1" && npm ci --prefer-offline --no-audit --no-fund' _ "$dir"
    rm -rf "$cache/$name-"*
    mkdir -p "$saved"
    cp -a "$dir/node_modules" "$saved/node_modules"
    touch "$saved/.complete"
  fi
  echo "$k" >"$dir/node_modules/.dfill-deps"
}

# The extension: vscode-languageclient, TypeScript, esbuild, @vscode/vsce.
install "$here" extension

# The end-to-end test: code-server, whose postinstall runs `npm install` in
# its lib/vscode (VS Code's own modules: native ones are built with
# node-gyp, ripgrep is downloaded), and playwright-core (no browser: the
# test drives Debian's chromium).
e2e=$here/e2e
# @vscode/ripgrep's postinstall downloads rg from GitHub unless its cache
# folder under os.tmpdir() holds the release tarball: give it Debian's rg.
# The names are @vscode/ripgrep's version in code-server 4.100.3's
# lib/vscode/npm-shrinkwrap.json and the VERSION in its lib/postinstall.js.
case $(uname -m) in
  x86_64) target=x86_64-unknown-linux-musl ;;
  aarch64) target=aarch64-unknown-linux-musl ;;
  *) echo "vscode deps: no ripgrep target for $(uname -m)" >&2; exit 1 ;;
esac
mkdir -p "$work/rg" "$work/vscode-ripgrep-cache-1.15.11"
cp "$(command -v rg)" "$work/rg/rg"
tar -czf "$work/vscode-ripgrep-cache-1.15.11/ripgrep-v13.0.0-10-$target.tar.gz" -C "$work/rg" rg
env=(
  TMPDIR="$work"
  npm_config_yes=true         # node-pty's install runs `npx node-gyp`
  npm_config_unsafe_perm=true # code-server's postinstall refuses root without it
  # for the `npm install`s code-server's postinstall runs:
  npm_config_prefer_offline=true npm_config_audit=false npm_config_fund=false
)
# node-gyp builds against the local node's headers instead of downloading them.
node_prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
if [[ -z ${npm_config_nodedir:-} && -f $node_prefix/include/node/node.h ]]; then
  env+=(npm_config_nodedir="$node_prefix")
fi
install "$e2e" e2e "${env[@]}"
if [[ ! -x $e2e/node_modules/code-server/lib/vscode/node_modules/@vscode/ripgrep/bin/rg ]]; then
  echo "vscode deps: code-server's install left no ripgrep in lib/vscode; remove $e2e/node_modules and run again" >&2
  exit 1
fi
