#!/usr/bin/env bash
# The test command: sets up what is missing (see setup_env.sh), then lint and tests.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m slow`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
ruff check .
ruff format --check .
python -m pytest -m "slow or not slow" "$@"
