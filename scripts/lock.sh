#!/usr/bin/env bash
# Regenerates requirements.lock: every package (with its version) that scripts/setup_env.sh installs for
# the extras it installs by default (dev, workflow, site), resolved for Linux x86_64 and Python 3.11 with
# the CPU build of torch. Run it after changing the dependencies in pyproject.toml; commit the result.
#   bash scripts/lock.sh              # keep the current pins that still fit, resolve what changed
#   bash scripts/lock.sh --upgrade    # every package at its newest version that fits
# Needs uv (taken from PATH, else installed from PyPI into a temporary virtual environment).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

UV="$(command -v uv || true)"
if [ -z "$UV" ]; then
  tmp="$(mktemp -d)"
  python3 -m venv "$tmp/venv"
  "$tmp/venv/bin/python" -m pip install -q uv
  UV="$tmp/venv/bin/uv"
fi

TORCH="$(sed -n 's/^ *"torch==\([^"]*\)".*/\1/p' pyproject.toml)"
[ -n "$TORCH" ] || { echo "lock.sh: no torch==<version> pin in pyproject.toml" >&2; exit 1; }
# The CPU build of torch: from a local wheel folder when one is configured, else from PyPI (pyproject's
# pin) and PyTorch's CPU index, whose +cpu build wins as the higher version.
if ls "${PIP_FIND_LINKS:-/nonexistent}/torch-$TORCH+cpu"* >/dev/null 2>&1; then
  torch_source=(--find-links "$PIP_FIND_LINKS")
else
  torch_source=(--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
fi

# uv keeps the pins of the file it writes to: start from the current lock, torch named as its CPU build
work="$(mktemp)"
trap 'rm -rf "$work" ${tmp:+"$tmp"}' EXIT
if [ -f requirements.lock ]; then
  sed "s/^torch==$TORCH\$/torch==$TORCH+cpu/" requirements.lock >"$work"
fi
"$UV" pip compile pyproject.toml --extra dev --extra workflow --extra site \
  --python-version 3.11 --python-platform x86_64-manylinux_2_28 "${torch_source[@]}" \
  --no-header --quiet -o "$work" "$@"
grep -q "^torch==$TORCH+cpu\$" "$work" || {
  echo "lock.sh: the resolution holds no torch==$TORCH+cpu (PyPI's CUDA build instead?); check the torch source" >&2
  exit 1
}
# The lock names torch's release, not its build: setup_env.sh installs the CPU build before the lock, and
# the lock then finds torch in place (a `+cpu` pin would fail where only PyPI's build can be had).
{
  echo "# Every package scripts/setup_env.sh installs (extras dev, workflow, site), pinned: Linux x86_64,"
  echo "# Python 3.11. torch is the CPU build, which setup_env.sh installs first. Made by bash scripts/lock.sh"
  echo "# from pyproject.toml: do not edit by hand."
  sed "s/^torch==$TORCH+cpu\$/torch==$TORCH/" "$work"
} >requirements.lock
echo "requirements.lock: $(grep -c '^[a-z0-9]' requirements.lock) packages"
