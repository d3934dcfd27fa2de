"""One builder per figure (mbasr/report/figures.py); notebook 07 draws Figure 3 with the site's drawing."""

from __future__ import annotations

import pandas as pd
import pytest

from mbasr.report import figures

SYSTEMS = {"base": "base", "text-only": "text_only", "mixed batch": "mixed", "standard fine-tuning": "asr"}


def _compare_table(target: str) -> pd.DataFrame:
    """What `mbasr.runs.adapt.compare` returns for notebook 07's four systems (fractions)."""
    rows = []
    for j, name in enumerate(SYSTEMS):
        for k, domain in enumerate((target, "source")):
            wer = 0.2 + 0.05 * j + 0.1 * k
            rows.append(
                {"system": name, "domain": domain, "wer": wer, "ci_low": wer - 0.02, "ci_high": wer + 0.03}
            )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("target", "p", "with_paper"),
    [("banking", 0.2, True), ("banking", 0.1, False), ("agriculture", 0.2, False)],
)
def test_notebook_figure_3_is_the_site_drawing_with_paper_points_only_for_the_papers_run(
    target, p, with_paper
):
    fig, drawn = figures.figure_3_from_runs(_compare_table(target), SYSTEMS, "source", target, p, "tiny")
    assert list(drawn["system"]) == list(SYSTEMS)
    assert list(drawn["method"]) == ["base", "text_only", "mb", "asr"]
    mb = drawn.set_index("system").loc["mixed batch"]
    assert mb["target_ours_wer"] == pytest.approx(30.0) and mb["source_ours_wer"] == pytest.approx(40.0)
    assert mb["target_ours_ci_low"] == pytest.approx(28.0) and mb["target_ours_seeds"] == 1
    assert mb["p"] == p and drawn.set_index("system").loc["text-only", "p"] == 0.0
    assert drawn["target_paper_wer"].notna().all() == with_paper
    if with_paper:  # the paper's Figure 3 values (data/paper/published_results.csv)
        assert mb["target_paper_wer"] == 4.5 and mb["source_paper_wer"] == 11.3
    labels = {label for ax in fig.axes for label in ax.get_legend_handles_labels()[1]}
    assert "mixed batch, ours" in labels
    assert ("mixed batch, paper" in labels) == with_paper  # no legend entry for a point not drawn


def test_each_figure_has_its_own_builder():
    for n in range(1, 6):
        builder = getattr(figures, f"figure_{n}")
        assert f"Figure {n}" in builder.__doc__
