"""What a base-model run and an adaptation run share: a folder with one training stage (its log and its
trainable weights, mbasr/training/loop.py) and evaluations whose alignments show examples."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from mbasr.evaluation.scoring import read_alignments
from mbasr.training.loop import LOG, MODEL


@dataclass
class RunResult:
    """A run's folder; `STAGE` names its training stage's subfolder."""

    run_dir: Path
    STAGE: ClassVar[str] = ""

    @property
    def log_path(self) -> Path:
        return self.run_dir / self.STAGE / LOG

    @property
    def model_path(self) -> Path:
        return self.run_dir / self.STAGE / MODEL

    @staticmethod
    def example_rows(alignments: str | Path, n: int):
        """The first `n` utterances of an alignments file: reference and hypothesis (raw), and their WER."""
        import pandas as pd

        rows = read_alignments(alignments)[:n]
        cols = ["key", "reference", "hypothesis", "wer"]
        return pd.DataFrame(
            [
                {"key": r["key"], "reference": r["ref_raw"], "hypothesis": r["hyp_raw"], "wer": r["wer"]}
                for r in rows
            ],
            columns=cols,
        )
