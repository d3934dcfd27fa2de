"""mbasr.report.publish: the records, tables, lr search and executed notebooks of a work dir -> results/."""

from __future__ import annotations

import shutil
from pathlib import Path

from mbasr.report.publish import publish

RESULTS = Path(__file__).resolve().parents[1] / "results"


def test_publish_copies_the_runs_notebooks_but_not_those_of_runs_without_a_record(tmp_path):
    work = tmp_path / "w"
    (work / "results").mkdir(parents=True)
    records = sorted((RESULTS / "records").glob("*.json"))[:3]
    for rec in records:
        shutil.copy2(rec, work / "results" / rec.name)
    for name in ("results.csv", "claims.json"):
        shutil.copy2(RESULTS / name, work / "results" / name)
    (work / "results" / "search.json").write_text('{"candidates": []}')  # a search beside the records
    nbs = work / "notebooks"
    nbs.mkdir()
    kept = [f"{records[0].stem}.ipynb", "07_forgetting-banking-p0.2-s0.ipynb"]
    for name in [*kept, "tiny-default-s0-asr-nowhere-p0.1.ipynb"]:  # the last: a run id with no record
        (nbs / name).write_text('{"cells": [], "metadata": {}}')
    dest = tmp_path / "results"
    counts = publish(work, dest)
    assert counts == {"records": 3, "notebooks": 2}
    assert sorted(p.name for p in (dest / "notebooks").iterdir()) == sorted([kept[0], "07_forgetting.ipynb"])
    assert (dest / "search.json").exists()
    (work / "results" / "search.json").unlink()
    publish(work, dest)
    assert not (dest / "search.json").exists()  # a search of another base model is not left behind
