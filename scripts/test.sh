#!/usr/bin/env bash
# The whole test suite: quality gates, then every test against real servers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff (lint)";            ruff check .
echo "== ruff (format)";          ruff format --check .
echo "== mypy (strict on the pure core)"; mypy contracts pacing device_profiles edge_agent simulators broker_config cloud potr
echo "== import-linter";          lint-imports
echo "== pytest"
# Two workers, a file each at a time (README "Tests"); a later -n (e.g. -n 0) overrides.
exec pytest -q -p no:cacheprovider -n 2 --dist loadfile "$@"
