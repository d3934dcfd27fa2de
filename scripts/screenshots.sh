#!/usr/bin/env bash
# Screenshots of the rendered report (Home, Figure 2, the modality gap) for README.md, so a reader sees the
# report before rendering it. Renders the site from the committed results/ first, then photographs it
# with headless Chromium (Debian's `chromium`):
#     bash scripts/screenshots.sh            # writes site/screenshots/*.png
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" -m mbasr report results >/dev/null
"$(dirname "$PY")/smalldocs" render >/dev/null
mkdir -p site/screenshots
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
for page in index site/figure-2 site/modality-gap; do
    out="site/screenshots/$(basename "$page" | sed 's/^index$/home/').png"
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$profile" \
        --window-size=1280,1600 --screenshot="$PWD/$out" "file://$PWD/_site/$page.html" 2>/dev/null
    echo "[screenshots] $out"
done
