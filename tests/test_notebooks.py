"""The notebooks run headless through papermill at scale "micro", on the session's micro corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import needs_tts, needs_whisper

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


MICRO_RUN = json.dumps({"stage2.batch_size": 4, "stage2.warmup_steps": 1})


@needs_whisper
@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "params", "shows"),
    [
        ("04_text_only.ipynb", {}, ["Text-only: 2 steps", "base errors"]),
        ("05_asr_finetune.ipynb", {"p": 0.5}, ["Standard fine-tuning: 2 steps", "base errors"]),
        ("06_mixed_batch.ipynb", {"p": 0.5, "eval_source": True}, ["Mixed batch: 2 steps", "share of items"]),
    ],
)
def test_adaptation_notebooks(micro, micro_work_dir, tmp_path, name, params, shows):
    """Notebooks 04-06 through their shared setup (mbasr/runs/notebook.py): 2 base and 2 stage-2 steps."""
    common = {"scale": "micro", "work_dir": str(micro_work_dir), "steps": 2, "base_steps": 2}
    text = _run(
        name, tmp_path, **common, overrides=MICRO_RUN, results_dir=str(tmp_path / "results"), **params
    )
    assert text.count("image/png") == 2 and "Traceback" not in text  # the loss curve and the WER bars
    assert all(s in text for s in shows), [s for s in shows if s not in text]
    assert len(list((tmp_path / "results").glob("*.json"))) == 1
    if params.get("eval_source"):
        assert "source" in text.split("WER against the base model")[1]
