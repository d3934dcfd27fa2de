"""The experiment workflow end to end at micro scale: Snakemake runs a shortened default grid
(one target, one p, 2 training steps), gathers one table, judges the claims, publishes and reports; a
second run does nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import needs_tts

from mbasr.study.results import COLUMNS, read_records, read_table

ROOT = Path(__file__).resolve().parents[1]


def _snakemake(*args, cwd=ROOT, timeout=900):
    exe = shutil.which("snakemake", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("snakemake is not installed (pip install -e .[workflow])")
    return subprocess.run(
        [exe, "-s", "workflow/Snakefile", "--cores", "2", "--rerun-triggers", "mtime", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _micro_grid(tmp_path: Path) -> Path:
    cfg = yaml.safe_load((ROOT / "workflow/grids/default.yaml").read_text())
    cfg.update(
        scale="micro",
        work_dir=str(tmp_path / "w"),
        publish_to=str(tmp_path / "results"),
        targets=["banking"],
        p=[0.5],
        tau_t_sweep=None,
        modality_gap={"target": "banking", "p": 0.5},
        forgetting={"target": "banking", "p": 0.5},
        steps=2,
        base_steps=2,
    )
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_dry_run_lists_the_default_grid(tmp_path):
    # an empty work_dir, so the dry run lists every job whatever this checkout's runs/ holds
    out = _snakemake(
        "-n", "--quiet", "rules", "--config", f"work_dir={tmp_path / 'w'}", f"publish_to={tmp_path / 'r'}"
    )
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout + out.stderr
    assert "notebook" in text and "gather" in text


def test_a_grown_grid_runs_its_new_jobs_after_a_finished_one(tmp_path):
    """A finished seed-0 grid (markers and tables present, made by hand), then the same grid with seeds 0 and
    1 (as `bash scripts/main.sh --configfile workflow/grids/seeds.yaml` after the main job): the dry run
    lists seed 1's jobs and the tables again; the finished grid alone has nothing to do."""
    from mbasr.study.grid import expand_grid

    one = _micro_grid(tmp_path)
    two = tmp_path / "grid2.yaml"
    two.write_text(yaml.safe_dump(yaml.safe_load(one.read_text()) | {"seeds": [0, 1]}))
    work = tmp_path / "w"
    (work / "done").mkdir(parents=True)
    (work / "results").mkdir()
    for name in expand_grid(yaml.safe_load(one.read_text()) | {"stage2_lr_file": ""}):
        (work / "done" / f"{name}.done").write_text("x")
    for path in ("results/results.csv", "results/claims.json", "done/report.done"):
        (work / path).write_text("x")
    done = _snakemake("-n", "--configfile", str(one))
    assert done.returncode == 0 and "Nothing to be done" in done.stdout + done.stderr, done.stderr[-2000:]
    grown = _snakemake("-n", "--configfile", str(two))
    text = grown.stdout + grown.stderr
    assert grown.returncode == 0, text[-2000:]
    jobs = {line.split("job=")[1].strip() for line in text.splitlines() if "wildcards: job=" in line}
    assert "tiny-micro-s1-base-base2" in jobs and "rule gather" in text
    assert not [j for j in jobs if "-s0" in j], jobs  # seed 0's jobs stay done


@needs_tts
@pytest.mark.slow
@pytest.mark.notebook
def test_micro_grid_runs_end_to_end_and_resumes(tmp_path):
    grid = _micro_grid(tmp_path)
    out = _snakemake("--configfile", str(grid))
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    work = tmp_path / "w"
    records = read_records(work / "results")
    assert {r["experiment"] for r in records} == {"base", "text_only", "mixed", "asr"}
    for r in records:  # every record points to the executed notebook that made it, which exists
        assert Path(r["executed_notebook"]).exists(), r["run_id"]
    table = read_table(work / "results" / "results.csv")
    assert list(table.columns) == list(COLUMNS)
    # banking runs (the forgetting target) also score the source test set
    mixed = table[table["experiment"] == "mixed"]
    assert set(mixed["eval_domain"]) == {"banking", "source"}
    claims = json.loads((work / "results" / "claims.json").read_text())
    assert [c["claim"] for c in claims] == [1, 2, 3, 4, 5]
    assert all(c["verdict"] in ("held", "not held", "inconclusive") for c in claims)
    published = tmp_path / "results"
    assert (published / "notebooks" / "01_data_prep.ipynb").exists()
    assert (published / "notebooks" / "07_forgetting.ipynb").exists()
    assert (published / "notebooks" / "08_modality_gap.ipynb").exists()
    assert len(list((published / "records").glob("*.json"))) == len(records)
    assert list((published / "figures").glob("*.svg")) or list((published / "figures").glob("*.png"))
    # nothing changed: nothing to do
    again = _snakemake("--configfile", str(grid), "-n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


def test_a_bad_grid_file_fails_naming_its_line(tmp_path):
    grid = tmp_path / "grid.yaml"
    text = (ROOT / "workflow/grids/default.yaml").read_text().replace("base_steps: 0", "base_stpes: 0")
    grid.write_text(text)
    line = [ln.startswith("base_stpes") for ln in text.splitlines()].index(True) + 1
    out = _snakemake("-n", "--configfile", str(grid), "--config", f"work_dir={tmp_path / 'w'}")
    assert out.returncode != 0
    assert f"{grid}:{line}: base_stpes: unknown key" in out.stdout + out.stderr


@pytest.mark.parametrize("grid", ["default.yaml", "paper.yaml", "seeds.yaml", "your_domain.yaml"])
def test_every_job_passes_only_parameters_its_notebook_declares(grid, tmp_path):
    """The notebooks refuse unknown parameters, so a job must not pass one (notebook 01 has no
    `executed_notebook`: passing it failed the whole grid)."""
    from mbasr.study.grid import expand_grid, notebook_parameters

    cfg = yaml.safe_load((ROOT / "workflow" / "grids" / grid).read_text())
    if grid == "your_domain.yaml":  # its target is imported first
        pytest.skip("needs an imported domain (tests/test_domains.py covers it)")
    cfg["work_dir"] = str(tmp_path / "w")
    for job in expand_grid(cfg).values():
        args = job.papermill_args(str(tmp_path / "w"), str(tmp_path / "nb.ipynb"))
        passed = {a.split()[0] for a in args.split("-p ")[1:]}
        assert passed <= set(notebook_parameters(job.notebook)), job.name
        assert ("executed_notebook" in passed) == ("executed_notebook" in notebook_parameters(job.notebook))
