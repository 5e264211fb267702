#!/usr/bin/env bash
# The demo on embedded defaults: bootstrap, then `potr demo` (options pass through).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh demo
exec .venv/bin/potr demo "$@"
