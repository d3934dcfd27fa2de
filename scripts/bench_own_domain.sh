#!/usr/bin/env bash
# Times README's "Your own domain" steps, as written there, on a made-up maintenance domain (200 train
# lines, 30 test lines, text only) in a fresh work folder: the figure README.md quotes.
#   bash scripts/bench_own_domain.sh [WORK_DIR]      (default: a new folder under /tmp)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH"
W="${1:-$(mktemp -d /tmp/mbasr-own-domain-XXXX)}"
mkdir -p "$W"
python - "$W" <<'PY'
import itertools, json, random, sys
from pathlib import Path
w = Path(sys.argv[1])
verbs = ["check", "replace", "tighten", "clean", "inspect", "lubricate", "adjust", "test"]
parts = ["the hydraulic pump", "the drive belt", "the pressure valve", "the gearbox", "the coolant hose",
         "the air filter", "the conveyor chain", "the spindle bearing", "the brake pad", "the fuel injector"]
whens = ["before the next shift", "on line {n}", "after {n} hours of running", "every {n} days", "today"]
lines = [f"{v} {p} {w_.format(n=n)}" for v, p, w_, n in itertools.product(verbs, parts, whens, (2, 3, 7, 12))]
random.Random(0).shuffle(lines)
for name, chunk in (("my_train.jsonl", lines[:200]), ("my_test.jsonl", lines[200:230])):
    (w / name).write_text("".join(json.dumps({"text": t}) + "\n" for t in chunk))
PY
echo "[bench] work folder $W; load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
t0=$(date +%s)
TIMEFORMAT="[bench] 1a import train: %R s wall, %U s user"; time mbasr import "$W/my_train.jsonl" --domain my_domain --split train --synthesize --work-dir "$W" >/dev/null
TIMEFORMAT="[bench] 1b import test: %R s wall, %U s user"; time mbasr import "$W/my_test.jsonl" --domain my_domain --split test --synthesize --work-dir "$W" >/dev/null
TIMEFORMAT="[bench] 2 notebook 06: %R s wall, %U s user"; time papermill notebooks/06_mixed_batch.ipynb "$W/06.ipynb" -p work_dir "$W" -p scale micro \
    -p target_domain my_domain -p p 0.2 -p base_steps 200 -p steps 60 --no-progress-bar >/dev/null 2>"$W/06.log"
TIMEFORMAT="[bench] 3 site: %R s wall, %U s user"; time bash -c "mbasr site '$W' >/dev/null && smalldocs render -q '$W/site'"
echo "[bench] all three steps: $(( $(date +%s) - t0 )) s; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python - "$W" <<'PY'
import json, sys
from pathlib import Path
for rec in sorted(Path(sys.argv[1], "results").glob("*.json")):
    r = json.loads(rec.read_text())
    if not isinstance(r, dict) or "run_id" not in r:  # claims.json, premises.json
        continue
    for e in r.get("eval", []):
        if e["domain"] == "my_domain":
            print(f"[bench] {r['experiment']}: my_domain test WER {100 * e['wer']:.1f}% ({e['n_utts']} utterances)")
PY
