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

# The TimescaleDB tests' server: PGlite with TimescaleDB on Node (tools/pglite). Best
# effort: when it cannot be installed the rest still runs, and those tests fail naming
# what is missing (they never skip: the TimescaleDB path is part of the test command).
pglite_warn() { echo "bootstrap: WARNING: $* — the TimescaleDB tests will fail" >&2; }
install_pglite() {
  if ! have node || ! have npm; then
    if [ "$(id -u)" -ne 0 ]; then
      pglite_warn "node/npm missing; run: sudo apt-get install -y nodejs npm"
      return 0
    fi
    echo "bootstrap: installing nodejs npm"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm \
      >/dev/null; }; then
      pglite_warn "apt-get could not install nodejs npm"
      return 0
    fi
  fi
  local dir=tools/pglite lock_digest
  lock_digest="$(cat "$dir/package.json" "$dir/package-lock.json" "$dir/.npmrc" | sha256sum | cut -d' ' -f1)"
  if [ -f "$dir/node_modules/.potr-installed" ] &&
    [ "$(cat "$dir/node_modules/.potr-installed")" = "$lock_digest" ]; then
    return 0
  fi
  echo "bootstrap: installing PGlite with TimescaleDB (npm ci in $dir)"
  if (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
    echo "$lock_digest" > "$dir/node_modules/.potr-installed"
  else
    pglite_warn "npm ci failed in $dir"
  fi
}
if [ "$purpose" = "test" ]; then install_pglite; fi

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
