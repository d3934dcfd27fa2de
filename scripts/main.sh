#!/usr/bin/env bash
# The main job on the tiny default: sets up what is missing (see setup_env.sh), then builds the corpus
# and executes its notebook headless. Arguments: KEY=VALUE notebook parameters (e.g. scale=micro).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
WORK_DIR="${WORK_DIR:-runs}"
params=(-p work_dir "$WORK_DIR")
for kv in "$@"; do params+=(-p "${kv%%=*}" "${kv#*=}"); done
mkdir -p "$WORK_DIR/notebooks"
start=$(date +%s)
papermill notebooks/01_data_prep.ipynb "$WORK_DIR/notebooks/01_data_prep.ipynb" -k python3 "${params[@]}"
echo "[main] done in $(( $(date +%s) - start )) s; executed notebook: $WORK_DIR/notebooks/01_data_prep.ipynb"
