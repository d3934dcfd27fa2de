#!/usr/bin/env bash
# The main job on the tiny default: sets up what is missing (see setup_env.sh), then executes the
# notebooks headless with papermill, in order; each executed copy lands in $WORK_DIR/notebooks/.
# Arguments: KEY=VALUE notebook parameters for every notebook (e.g. scale=micro).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
WORK_DIR="${WORK_DIR:-runs}"
params=(-p work_dir "$WORK_DIR")
for kv in "$@"; do params+=(-p "${kv%%=*}" "${kv#*=}"); done
mkdir -p "$WORK_DIR/notebooks"
start=$(date +%s)
for nb in 01_data_prep 02_corruption; do
  t0=$(date +%s)
  papermill "notebooks/$nb.ipynb" "$WORK_DIR/notebooks/$nb.ipynb" -k python3 "${params[@]}" --progress-bar
  echo "[main] $nb done in $(( $(date +%s) - t0 )) s; executed notebook: $WORK_DIR/notebooks/$nb.ipynb"
done
echo "[main] all done in $(( $(date +%s) - start )) s"
