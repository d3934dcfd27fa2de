"""The notebooks run headless through papermill at scale "micro", on the session's micro corpus."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import needs_tts

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [needs_tts, pytest.mark.notebook]


def _run(name: str, tmp_path: Path, **params) -> str:
    papermill = pytest.importorskip("papermill")
    out = tmp_path / name
    papermill.execute_notebook(
        str(ROOT / "notebooks" / name), str(out), parameters=params, kernel_name="python3", progress_bar=False
    )
    return out.read_text()


def test_01_data_prep(micro, micro_work_dir, tmp_path):
    text = _run("01_data_prep.ipynb", tmp_path, scale="micro", work_dir=str(micro_work_dir))
    assert "nothing to do" in text  # the session's corpus was found, not rebuilt
    assert "oov_share_vs_source" in text and "image/png" in text and "<audio" in text


def test_02_corruption(micro, micro_work_dir, tmp_path):
    text = _run("02_corruption.ipynb", tmp_path, scale="micro", work_dir=str(micro_work_dir))
    assert "image/png" in text and "target_audio" in text
