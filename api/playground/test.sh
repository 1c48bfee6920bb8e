#!/usr/bin/env bash
# End-to-end test of dfill http's /playground in Debian's chromium, driven
# by playwright-core from npm (no browser download): installs what it
# needs when missing (chromium with apt, sudo when not root; the npm
# package with `npm ci`, kept in a cache folder keyed by the lockfile),
# starts the dfill binary in $DFILL (default: bin/dfill) as `dfill http` on
# a free loopback port with the embedded model and an API key (the page
# must ask for it), and runs e2e/run.mjs against it. Screenshots and the server's log go under $ARTIFACTS (default:
# a new temporary folder), named in the output.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DFILL=${DFILL:-$(cd "$here/../.." && pwd)/bin/dfill}
ARTIFACTS=${ARTIFACTS:-$(mktemp -d "${TMPDIR:-/tmp}/dfill-playground.XXXXXX")}
mkdir -p "$ARTIFACTS"
export ARTIFACTS

if ! command -v chromium >/dev/null; then
  sudo=()
  [[ $(id -u) == 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium >/dev/null
fi

# playwright-core from the lockfile, cached per lockfile and node version.
e2e=$here/e2e
key="$(node --version)-$(sha256sum "$e2e/package-lock.json" | cut -c1-16)"
cache=${XDG_CACHE_HOME:-$HOME/.cache}/dfill/playground-e2e-$key
if [[ ! -f $e2e/node_modules/.dfill-deps || $(cat "$e2e/node_modules/.dfill-deps") != "$key" ]]; then
  if [[ -f $cache/.complete ]]; then
    rm -rf "$e2e/node_modules"
    cp -a "$cache/node_modules" "$e2e/node_modules"
  else
    (cd "$e2e" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefer-offline --no-audit --no-fund >"$ARTIFACTS/npm.log" 2>&1) ||
      { tail -n 40 "$ARTIFACTS/npm.log" >&2; exit 1; }
    rm -rf "$cache"
    mkdir -p "$cache"
    cp -a "$e2e/node_modules" "$cache/node_modules"
    touch "$cache/.complete"
  fi
  echo "$key" >"$e2e/node_modules/.dfill-deps"
fi

# dfill http on a free port; it prints its address first on stdout.
out=$ARTIFACTS/http.out
DFILL_PLAYGROUND_KEY=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
export DFILL_PLAYGROUND_KEY
"$DFILL" http --addr 127.0.0.1:0 --api-key-env DFILL_PLAYGROUND_KEY --log-file "$ARTIFACTS/http.log" --log-level debug >"$out" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
url=""
for _ in $(seq 200); do
  url=$(sed -n 's/^dfill http: listening on //p' "$out" | head -n1)
  [[ -n $url ]] && curl -sf "$url/healthz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { echo "playground test: dfill http exited; log: $ARTIFACTS/http.log" >&2; exit 1; }
  sleep 0.05
done
[[ -n $url ]] || { echo "playground test: dfill http gave no address" >&2; exit 1; }
echo "playground test: dfill http at $url, artifacts in $ARTIFACTS"
node "$e2e/run.mjs" "$url"
