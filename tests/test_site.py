"""The Quarto project renders offline with smalldocs (no Quarto on this machine)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_site_renders_offline(tmp_path):
    smalldocs = shutil.which("smalldocs", path=str(Path(sys.executable).parent))
    if smalldocs is None:
        pytest.skip("smalldocs is not installed (pip install -e .[site])")
    for name in ("_quarto.yml", "index.qmd"):
        shutil.copy(ROOT / name, tmp_path / name)
    subprocess.run([smalldocs, "render"], cwd=tmp_path, check=True, capture_output=True, timeout=120)
    check = subprocess.run([smalldocs, "check"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    html = (tmp_path / "_site" / "index.html").read_text()
    assert "Closing the speech-text gap" in html and "mixed batch" in html
