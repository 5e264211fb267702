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
exec pytest -q -p no:cacheprovider "$@"
