"""Stage 2 on demand (mbasr/runs/adapt.py) and the grid of the workflow (mbasr/study/grid.py)."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from conftest import needs_tts, needs_whisper
from test_train import _random_stage0

from mbasr.runs.adapt import adapt, base_record, compare, side_by_side, stage2_config
from mbasr.runs.base import base_model
from mbasr.study.grid import expand_grid
from mbasr.study.results import gather, read_records, validate_record

GRID = "workflow/grids/default.yaml"


def _grid(**over):
    from pathlib import Path

    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / GRID).read_text())
    # the preset's stage-2 lr for every strategy: these tests pin run names, not the committed lr search
    return cfg | {"stage2_lr_file": ""} | over


def test_default_grid_has_every_run_of_the_issue():
    jobs = expand_grid(_grid())
    runs = [j for j in jobs.values() if j.record]
    # base + 3 targets x (text-only + 2 p x {mixed, asr}) + 2 extra tau_t points
    assert len(runs) == 1 + 3 * 5 + 2
    names = set(jobs)
    assert "tiny-default-s0-mixed-agriculture-p0.1-tau0.5" in names
    assert "tiny-default-s0-asr-musical_instruments-p1" in names
    assert "tiny-default-s0-text_only-banking-p0-tau0.2" in names
    # every job waits only for jobs that come before it
    order = list(jobs)
    for i, job in enumerate(jobs.values()):
        assert all(order.index(a) < i for a in job.after), job.name
    # the forgetting runs score the source test set too; the others do not
    assert jobs["tiny-default-s0-asr-banking-p0.1"].params["eval_source"] is True
    assert jobs["tiny-default-s0-asr-agriculture-p0.1"].params["eval_source"] is False
    assert jobs["07_forgetting-banking-p0.1-s0"].after == [
        "tiny-default-s0-text_only-banking-p0-tau0.5",
        "tiny-default-s0-mixed-banking-p0.1-tau0.5",
        "tiny-default-s0-asr-banking-p0.1",
    ]


def test_seeds_grid_triples_the_runs_and_bad_configs_name_the_key():
    seeds = expand_grid(_grid(seeds=[0, 1, 2]))
    assert len([j for j in seeds.values() if j.record]) == 3 * (1 + 3 * 5 + 2)
    with pytest.raises(ValueError, match=r"p\.0: 0\.0 is less than or equal to the minimum of 0"):
        expand_grid(_grid(p=[0.0, 0.5]))
    with pytest.raises(ValueError, match="'targets' is a required property"):
        expand_grid({k: v for k, v in _grid().items() if k != "targets"})
    args = expand_grid(_grid())["tiny-default-s0-mixed-banking-p0.1-tau0.5"].papermill_args(
        "w d", "out.ipynb"
    )
    assert "-p p 0.1" in args and "-p work_dir 'w d'" in args and "-p executed_notebook out.ipynb" in args


def test_base_model_job_reruns_when_its_stage0_checkpoint_or_preset_changes():
    """The base job's input files (Snakemake reruns it, and every run after it, when one is newer)."""
    jobs = expand_grid(_grid())
    (base,) = [j for j in jobs.values() if j.notebook == "03_base_model.ipynb"]
    assert [f.split("/")[-1] for f in base.files] == ["tiny.yaml", "stage0.pt"]
    assert all(os.path.exists(f) for f in base.files)
    assert all(not j.files for j in jobs.values() if j is not base)
    (small,) = [j for j in expand_grid(_grid(preset="small")).values() if j.notebook == "03_base_model.ipynb"]
    assert [f.split("/")[-1] for f in small.files] == ["small.yaml"]  # pretrained weights, no stage 0


def test_stage2_config_applies_steps_and_lr():
    cfg = stage2_config({"preset": "tiny", "seed": 3, "steps": 7, "lr": 1e-3, "overrides": {}})
    assert (cfg.seed, cfg.stage2.steps, cfg.stage2.lr) == (3, 7, 1e-3)
    with pytest.raises(ValueError, match="p=0.5: text-only adaptation uses no target audio"):
        adapt(strategy="text_only", p=0.5)
    with pytest.raises(ValueError, match="strategy="):
        adapt(strategy="base", p=0.0)


MICRO_RUN = {
    "stage2.batch_size": 4,
    "stage2.warmup_steps": 1,
    "stage2.steps": 2,
}


@needs_tts
@needs_whisper
@pytest.mark.slow
def test_adapt_runs_each_strategy_records_and_reuses(micro, micro_work_dir, tmp_path):
    """Micro corpus, random stage 0, 2 base steps and 2 stage-2 steps per strategy: the plumbing."""
    stage0 = _random_stage0(tmp_path)
    common = dict(
        preset="tiny", work_dir=micro_work_dir, seed=0, scale="micro", stage0=stage0, progress=False
    )
    results = tmp_path / "results"
    kw = dict(common, base_steps=2, overrides=MICRO_RUN, results_dir=results, target_domain="banking")
    text = adapt(**kw, strategy="text_only", p=0.0)
    mixed = adapt(**kw, strategy="mixed", p=0.5, eval_source=True)
    asr = adapt(**kw, strategy="asr", p=0.5)
    base = base_record(**common, base_steps=2, overrides=MICRO_RUN, results_dir=results)
    for res in (text, mixed, asr):
        validate_record(res.record)
        assert res.record["steps"] == 2 and res.record["target_domain"] == "banking"
    assert [(e["domain"], e["split"]) for e in mixed.record["eval"]] == [
        ("banking", "test"),
        ("source", "test"),
    ]
    assert mixed.record["audio_subset"]["utterances"] == 16  # half of the 32 micro banking utterances
    assert text.record["audio_subset"]["utterances"] == 0 and text.record["tau_t"] == 0.5
    assert {e["domain"] for e in base["eval"]} == {"source", "banking", "agriculture", "musical_instruments"}
    # the table gathers every record: base (4 test sets) + 3 runs (1 + 2 + 1 sets)
    table = gather(results)
    assert len(table) == 4 + 4 and set(table["experiment"]) == {"base", "text_only", "mixed", "asr"}
    assert len(read_records(results)) == 4
    # a second call finds the run: same record, nothing retrained
    before = (mixed.run_dir / "stage2" / "done.json").stat().st_mtime_ns
    again = adapt(**kw, strategy="mixed", p=0.5, eval_source=True)
    assert again.record == mixed.record
    assert (mixed.run_dir / "stage2" / "done.json").stat().st_mtime_ns == before
    # asking for another set later only adds that evaluation
    more = adapt(**kw, strategy="asr", p=0.5, eval_source=True)
    assert [e["domain"] for e in more.record["eval"]] == ["banking", "source"]
    assert json.loads((results / f"{more.record['run_id']}.json").read_text())["eval"] == more.record["eval"]
    # the adapted model loads, with its LoRA
    model, cfg = mixed.load_model()
    assert cfg.stage2.steps == 2 and not model.training
    b = base_model(**common, steps=2, overrides=MICRO_RUN)
    assert (
        list(compare({"base": b, "mixed": mixed}, ["banking", "source"])["system"])
        == ["base"] * 2 + ["mixed"] * 2
    )
    assert len(side_by_side(mixed, b, n=3)) == 3
    # other LoRA targets change stage 2 only: the same base model, not retrained, loaded under them
    stage1_done = b.run_dir / "stage1" / "done.json"
    before = stage1_done.stat().st_mtime_ns
    qv = {"q_proj", "v_proj"}
    wide = adapt(**(kw | {"overrides": MICRO_RUN | {"lora.target_modules": sorted(qv | {"down_proj"})}}),
                 strategy="asr", p=0.5)  # fmt: skip
    assert wide.record["base_run"] == asr.record["base_run"] and wide.run_dir != asr.run_dir
    assert stage1_done.stat().st_mtime_ns == before
    wide_model, _ = wide.load_model()
    adapted = {
        n.split(".lora_")[0].rsplit(".", 1)[-1] for n, _ in wide_model.llm.named_parameters() if ".lora_" in n
    }
    assert adapted == qv | {"down_proj"}
