#!/usr/bin/env bash
# The main job on the tiny default: sets up what is missing (see setup_env.sh), runs the default grid of
# the experiment workflow (workflow/Snakefile, workflow/grids/default.yaml: corpus, base model, every
# adaptation run, the results table, the claims, the report's figures), publishes the results to
# results/ and renders the report site with Quarto when it is installed, else offline with smalldocs.
# Arguments: extra Snakemake options, e.g. `--config scale=micro work_dir=/tmp/w`, `-n` (dry run) or
# `--configfile workflow/grids/seeds.yaml`. Whatever is done is skipped: a second run takes seconds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
CORES="${CORES:-2}"
start=$(date +%s)
snakemake -s workflow/Snakefile --cores "$CORES" --keep-going --rerun-triggers mtime \
  --printshellcmds --show-failed-logs "$@"
echo "[main] workflow done in $(( $(date +%s) - start )) s"
for arg in "$@"; do [ "$arg" = "-n" ] || [ "$arg" = "--dry-run" ] && exit 0; done
t0=$(date +%s)
if command -v quarto >/dev/null 2>&1; then
  renderer=quarto; quarto render >/dev/null
else
  renderer=smalldocs; smalldocs render >/dev/null
fi
echo "[main] site rendered with $renderer in $(( $(date +%s) - t0 )) s: open _site/index.html"
echo "[main] all done in $(( $(date +%s) - start )) s"
