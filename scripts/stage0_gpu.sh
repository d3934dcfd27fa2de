#!/usr/bin/env bash
# Stage 0 of the tiny preset on a GPU machine (how mbasr/assets/tiny/stage0.pt was made; see RECORD.md).
# Runs in a checkout; expects the TTS engines installed (or their .deb files in .debs/, unpacked here) and
# the Python packages of pyproject.toml (or wheels in .whl/) and weights/whisper-tiny.en. Writes the LM part
# (lm.pt) and the stage-0 checkpoint (stage0.pt: the LM continued on general speech with a projector) to
# $OUT (default: out/). Usage: bash scripts/stage0_gpu.sh [SCALE] [MAX_MINUTES] [--set K=V ...]
# LM_INIT=mbasr/assets/tiny/stage0.pt skips the LM part and continues the shipped LM.
set -euo pipefail
SCALE="${1:-default}"; MAXMIN="${2:-6}"; OUT="${OUT:-out}"; WORK="${WORK:-/tmp/mbasr-runs}"
mkdir -p "$OUT"
if [ -d .debs ] && ! { espeak-ng --version && flite -voice slt -t a -o /dev/null; } >/dev/null 2>&1; then
  # A private prefix (not /): the engines' libraries must not replace the machine's own.
  P="${TTS_PREFIX:-/opt/tts}"; mkdir -p "$P/bin"
  for f in .debs/*.deb; do dpkg -x "$f" "$P"; done
  L="$P/usr/lib/x86_64-linux-gnu:$P/usr/lib/x86_64-linux-gnu/pulseaudio:$P/lib/x86_64-linux-gnu"
  for b in espeak-ng flite; do
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%s ESPEAK_DATA_PATH=%s exec %s "$@"\n' "$L" "$P/usr/lib/x86_64-linux-gnu" "$P/usr/bin/$b" > "$P/bin/$b"
    chmod +x "$P/bin/$b"
  done
  export PATH="$P/bin:$PATH" WNSEARCHDIR="$P/usr/share/wordnet"
fi
if [ -d .whl ] && [ -z "${SKIP_WHL:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
fi
export PYTHONUNBUFFERED=1
espeak-ng --version; (flite --version || true) | head -1; python3 -c "import mbasr.training.stage0, transformers; print(\"transformers\", transformers.__version__)"
start=$(date +%s)
python3 -m mbasr pretrain corpus --scale "$SCALE" --work-dir "$WORK" 2>&1 | grep -v "it/s]" | tail -3
echo "[stage0] corpus ready after $(( $(date +%s) - start )) s"
if [ -z "${LM_INIT:-}" ]; then
  OMP_NUM_THREADS=12 python3 -m mbasr pretrain lm --scale "$SCALE" --work-dir "$WORK" --out "$OUT/lm.pt" --max-minutes "$MAXMIN" "${@:3}" > "$OUT/lm.log" 2>&1
  grep -v "it/s]" "$OUT/lm.log" | tail -25
fi
OMP_NUM_THREADS=12 python3 -m mbasr pretrain speech --scale "$SCALE" --work-dir "$WORK" --init "${LM_INIT:-$OUT/lm.pt}" --out "$OUT/stage0.pt" --max-minutes "$MAXMIN" "${@:3}" > "$OUT/speech.log" 2>&1
grep -v "it/s]" "$OUT/speech.log" | tail -25
echo "[stage0] done after $(( $(date +%s) - start )) s"
