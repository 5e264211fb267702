#!/usr/bin/env bash
# Bootstrap a fresh Debian machine for PoTR: system packages (when root), then .venv.
# Usage: scripts/bootstrap.sh [demo|test]
set -euo pipefail
cd "$(dirname "$0")/.."
purpose="${1:-test}"

need_debs=()
have() { command -v "$1" >/dev/null 2>&1; }
pg_bin_present() {
  have pg_config && [ -x "$(pg_config --bindir)/initdb" ] && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || need_debs+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_debs+=(python3-venv)
have mosquitto || [ -x /usr/sbin/mosquitto ] || need_debs+=(mosquitto)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need_debs+=(rabbitmq-server)
have socat || need_debs+=(socat)
have nginx || [ -x /usr/sbin/nginx ] || need_debs+=(nginx-light)
pg_bin_present || need_debs+=(postgresql)
have runuser || need_debs+=(util-linux)
# the browser tests drive this Chromium through Playwright (never `playwright install`)
if [ "$purpose" = "test" ]; then [ -x /usr/bin/chromium ] || need_debs+=(chromium); fi

if [ "${#need_debs[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "bootstrap: installing ${need_debs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_debs[@]}" >/dev/null
  else
    echo "bootstrap: missing system packages; run: sudo apt-get install -y ${need_debs[*]}" >&2
    exit 1
  fi
fi

# Node packages for the tests: PGlite with TimescaleDB (tools/pglite, the TimescaleDB tests'
# server) and axe-core (tools/portal-assets, the browser tests' accessibility checks; the
# portal's own JS is vendored and committed, see scripts/vendor_portal_assets.sh). Best
# effort: when they cannot be installed the rest still runs, and those tests fail naming
# what is missing (they never skip: both are part of the test command).
npm_warn() { echo "bootstrap: WARNING: $* — the tests needing it will fail" >&2; }
ensure_node() {
  have node && have npm && return 0
  if [ "$(id -u)" -ne 0 ]; then
    npm_warn "node/npm missing; run: sudo apt-get install -y nodejs npm"
    return 1
  fi
  echo "bootstrap: installing nodejs npm"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm \
    >/dev/null; }; then
    npm_warn "apt-get could not install nodejs npm"
    return 1
  fi
}
# npm ci in $1 unless its node_modules already matches the lock (a digest stamp)
install_npm_dir() {
  local dir="$1" what="$2" lock_digest
  lock_digest="$(cat "$dir/package.json" "$dir/package-lock.json" "$dir/.npmrc" | sha256sum | cut -d' ' -f1)"
  if [ -f "$dir/node_modules/.potr-installed" ] &&
    [ "$(cat "$dir/node_modules/.potr-installed")" = "$lock_digest" ]; then
    return 0
  fi
  echo "bootstrap: installing $what (npm ci in $dir)"
  if (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
    echo "$lock_digest" > "$dir/node_modules/.potr-installed"
  else
    npm_warn "npm ci failed in $dir"
  fi
}
if [ "$purpose" = "test" ] && ensure_node; then
  install_npm_dir tools/pglite "PGlite with TimescaleDB"
  install_npm_dir tools/portal-assets "axe-core for the browser tests"
fi

extras="dev"
[ "$purpose" = "demo" ] && extras="edge,sim,cloud"
stamp=".venv/.potr-installed-${extras}"
digest="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  echo "bootstrap: installing Python packages (.[${extras}]) into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[${extras}]"
  echo "$digest" > "$stamp"
fi
