"""The stage-2 learning-rate search (mbasr/study/search.py): its runs (the grid's runs at the candidate lrs, dev set
only), the selection rule, search.json, the lr file the grid reads, and the Snakemake target."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml
from conftest import needs_tts, needs_whisper
from test_adapt import MICRO_RUN
from test_train import _random_stage0
from test_workflow import _snakemake

import mbasr.io
from mbasr.runs.adapt import _extra, adapt
from mbasr.study.grid import expand_grid, read_lr_file, stage2_lrs
from mbasr.study.lr_file import apply, render_lr_file
from mbasr.study.results import make_record, read_records, validate_record, write_record
from mbasr.study.search import (
    SCHEMA_ID,
    choose,
    load_config,
    main,
    read_search,
    search_jobs,
    search_path,
    search_spec,
    select,
    write_search,
)
from mbasr.vocab import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[1]
STRATEGY_OF = {nb: s for s, nb in NOTEBOOKS.items()}


def _config(tmp_path: Path | None = None, **over) -> dict:
    cfg = load_config(["workflow/grids/default.yaml", "workflow/grids/search.yaml"])
    if tmp_path is not None:
        cfg["work_dir"] = str(tmp_path / "w")
    return cfg | over


def _default_grid(**over) -> dict:
    return yaml.safe_load((ROOT / "workflow/grids/default.yaml").read_text()) | over


# --- the selection rule -------------------------------------------------------------------------------


def test_choose_takes_the_lowest_dev_wer_and_a_tie_goes_to_the_smaller_lr():
    c = [{"lr": 3e-3, "dev_wer": 0.20}, {"lr": 1e-3, "dev_wer": 0.18}, {"lr": 3e-4, "dev_wer": 0.25}]
    assert choose(c)["lr"] == 1e-3
    tie = [{"lr": 3e-3, "dev_wer": 0.18}, {"lr": 1e-3, "dev_wer": 0.18 + 1e-12}, {"lr": 3e-4, "dev_wer": 0.3}]
    assert choose(tie)["lr"] == 1e-3
    assert choose(list(reversed(tie)))["lr"] == 1e-3
    with pytest.raises(ValueError, match="no candidate"):
        choose([])


# --- the search's config and runs ---------------------------------------------------------------------


def test_search_runs_are_the_grids_runs_at_the_candidate_lrs(tmp_path):
    spec = search_spec(_config(tmp_path))
    assert (
        spec["lrs"] == [3e-4, 1e-3, 3e-3, 1e-2, 3e-2]
        and spec["targets"] == ["agriculture"]
        and spec["p"] == [0.1]
    )
    assert (spec["seed"], spec["steps"], spec["preset_lr"]) == (0, 0, 1e-3)
    jobs = search_jobs(spec)
    assert len(jobs) == 15  # 3 strategies x 5 lrs, one dev set
    grid = expand_grid(_default_grid(work_dir=str(tmp_path / "w"), stage2_lr_file=""))
    # the candidate at the preset's lr IS the default grid's run: same name (run id), same settings
    shared = [n for n in jobs if n in grid]
    assert shared == [
        "tiny-default-s0-text_only-agriculture-p0-tau0.5",
        "tiny-default-s0-mixed-agriculture-p0.1-tau0.5",
        "tiny-default-s0-asr-agriculture-p0.1",
    ]
    for name in shared:
        assert {
            k: v for k, v in jobs[name].params.items() if k not in ("eval_dev", "eval_test", "results_dir")
        } == (grid[name].params)
    assert "tiny-default-s0-mixed-agriculture-p0.1-tau0.5-lr0.003" in jobs
    for job in jobs.values():  # dev set only, records beside the search, after the grid's base model
        assert (job.params["eval_dev"], job.params["eval_test"], job.params["eval_source"]) == (
            True,
            False,
            False,
        )
        assert job.params["results_dir"] == str(tmp_path / "w" / "search" / "records")
        assert job.after == ["tiny-default-s0-base"] and job.after[0] in grid
    # the same steps for every strategy: the grid's (here 0: the preset's)
    assert {j.params["steps"] for j in jobs.values()} == {0}


@pytest.mark.parametrize(
    "search, over, key",
    [
        ({"lr": [1e-3]}, {}, "search.lr"),
        ({"lrs": [1e-3, -1.0]}, {}, "search.lrs"),
        ({"lrs": []}, {}, "search.lrs"),
        ({"lrs": [1e-3, 1e-3]}, {}, "search.lrs"),
        ({"strategies": ["mixed", "base"]}, {}, "search.strategies"),
        ({"targets": ["source"]}, {}, "search.targets"),
        ({"p": [0.0]}, {}, "search.p"),
        ({"p": 1.5}, {}, "search.p"),
        ({}, {"preset": None}, "preset"),
    ],
)
def test_a_bad_search_config_fails_naming_the_key(search, over, key):
    cfg = _config()
    cfg["search"] = cfg["search"] | search
    cfg = {k: v for k, v in (cfg | over).items() if v is not None}
    with pytest.raises(ValueError, match=rf"search config: .*{re.escape(key)}"):
        search_spec(cfg)
    missing = _config()
    del missing["search"]["targets"]
    with pytest.raises(ValueError, match=r"missing \['search\.targets'\]"):
        search_spec(missing)
    with pytest.raises(ValueError, match="needs a `search:` mapping"):
        search_spec(_default_grid())


# --- select: records -> search.json -------------------------------------------------------------------

WERS = {  # (strategy, lr) -> dev WER: text_only ties at 1e-3 and 3e-3, mixed is best at 3e-3
    ("text_only", 3e-4): 0.30,
    ("text_only", 1e-3): 0.25,
    ("text_only", 3e-3): 0.25,
    ("mixed", 3e-4): 0.20,
    ("mixed", 1e-3): 0.18,
    ("mixed", 3e-3): 0.15,
    ("asr", 3e-4): 0.40,
    ("asr", 1e-3): 0.22,
    ("asr", 3e-3): 0.35,
    **{(s, lr): 0.5 for s in ("text_only", "mixed", "asr") for lr in (1e-2, 3e-2)},
}


def _dev_entry(domain: str, wer: float) -> dict:
    return {
        "domain": domain,
        "split": "dev",
        "wer": wer,
        "ci_low": wer - 0.01,
        "ci_high": wer + 0.02,
        "n_utts": 300,
        "n_words": 4000,
        "alignments": None,
    }


def _fake_records(spec: dict, wers: dict = WERS, skip: tuple[str, ...] = ()) -> Path:
    """One dev-only record per search run, as the search's notebooks write them."""
    out = Path(spec["work_dir"]) / "search" / "records"
    for name, job in search_jobs(spec).items():
        if name in skip:
            continue
        s, q = STRATEGY_OF[job.notebook], job.params
        lr = q["lr"] or spec["preset_lr"]
        p = q.get("p", 0.0)
        tau = None if s == "asr" else q.get("tau", q.get("tau_t"))
        rec = make_record(
            run_id=name,
            experiment=s,
            notebook=job.notebook,
            executed_notebook=None,
            preset=spec["preset"],
            scale=spec["scale"],
            seed=spec["seed"],
            source_domain=spec["source_domain"],
            target_domain=q["target_domain"],
            p=p,
            tau=tau,
            steps=240,
            lr=lr,
            params=q,
            config=None,
            seconds={"train": 100.0},
            model_path=None,
            eval=[_dev_entry(q["target_domain"], wers[(s, lr)])],
            base_run="w/base/tiny-default-s0-base-abc",
        )
        write_record(rec, out)
    return out


def test_dev_only_records_are_valid_and_search_json_is_not_a_record(tmp_path):
    spec = search_spec(_config(tmp_path))
    records = _fake_records(spec)
    recs = read_records(records)
    assert len(recs) == 15 and all([e["split"] for e in r["eval"]] == ["dev"] for r in recs)
    for r in recs:
        validate_record(r)
    write_record(recs[0], tmp_path / "results")
    (tmp_path / "results" / "search.json").write_text(json.dumps({"schema": SCHEMA_ID}))
    assert len(read_records(tmp_path / "results")) == 1


def test_select_picks_each_strategys_lr_and_writes_search_json_atomically(tmp_path, monkeypatch):
    spec = search_spec(_config(tmp_path))
    _fake_records(spec)
    result = select(spec)
    chosen = {s: v["chosen_lr"] for s, v in result["strategies"].items()}
    assert chosen == {"text_only": 1e-3, "mixed": 3e-3, "asr": 1e-3}  # text_only: a tie -> the smaller
    assert [s["at_edge"] for s in result["strategies"].values()] == [False, False, False]
    # a best lr at an end of the candidates is flagged (the range must widen): mixed's 3e-3 tops a narrower one
    narrow = {**search_spec(_config(tmp_path / "narrow")), "lrs": [3e-4, 1e-3, 3e-3]}
    _fake_records(narrow)
    edges = {s: v["at_edge"] for s, v in select(narrow)["strategies"].items()}
    assert edges == {"text_only": False, "mixed": True, "asr": False}
    mixed = result["strategies"]["mixed"]
    assert [c["lr"] for c in mixed["candidates"]] == [3e-4, 1e-3, 3e-3, 1e-2, 3e-2]
    best = mixed["candidates"][2]
    assert (best["dev_wer"], best["ci_low"], best["ci_high"]) == (0.15, 0.15 - 0.01, 0.15 + 0.02)
    assert best["runs"][0]["run_id"] == "tiny-default-s0-mixed-agriculture-p0.1-tau0.5-lr0.003"
    assert result["config"] == spec and result["steps"] == 240 and result["code_version"]
    assert result["dev_sets"] == [{"domain": "agriculture", "split": "dev"}]
    path = write_search(result)
    assert path == tmp_path / "w" / "results" / "search.json"
    assert read_search(path) == json.loads(json.dumps(result))
    assert [p.name for p in path.parent.iterdir()] == ["search.json"]

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(mbasr.io.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_search({**result, "rule": "other"})
    assert [p.name for p in path.parent.iterdir()] == ["search.json"]  # the old one, whole
    assert read_search(path)["rule"] == result["rule"]


def test_select_fails_naming_missing_or_dev_less_runs(tmp_path):
    spec = search_spec(_config(tmp_path))
    gone = "tiny-default-s0-asr-agriculture-p0.1-lr0.0003"
    _fake_records(spec, skip=(gone,))
    with pytest.raises(FileNotFoundError, match=gone):
        select(spec)
    rec = json.loads(
        (Path(spec["work_dir"]) / "search/records/tiny-default-s0-asr-agriculture-p0.1.json").read_text()
    )
    rec = rec | {"run_id": gone, "lr": 3e-4, "eval": [{**rec["eval"][0], "split": "test"}]}
    write_record(rec, Path(spec["work_dir"]) / "search" / "records")
    with pytest.raises(ValueError, match=f"{gone}.json: no evaluation on the agriculture dev set"):
        select(spec)


# --- apply: search.json -> the lr file -> the grid ----------------------------------------------------


def test_apply_and_the_grid_use_the_chosen_lrs_and_keep_unchanged_run_ids(tmp_path, capsys):
    spec = search_spec(_config(tmp_path))
    _fake_records(spec)
    src = write_search(select(spec))
    lr_file = tmp_path / "stage2_lr.yaml"
    entry = apply(read_search(src), lr_file, src)
    text = lr_file.read_text()
    assert text.startswith("# Stage-2 learning rates chosen on dev sets")
    assert "agriculture dev" in text and "mixed 0.003" in text and entry["search"]["created"] in text
    assert read_lr_file(lr_file) == [entry]
    assert entry["applies_to"] == {
        "preset": "tiny",
        "scale": "default",
        "source_domain": "source",
        "steps": 0,
        "base_steps": 0,
    }
    before = expand_grid(_default_grid(stage2_lr_file=""))
    capsys.readouterr()
    after = expand_grid(_default_grid(stage2_lr_file=str(lr_file)))
    assert "stage-2 lr chosen on dev sets" in capsys.readouterr().err
    # text_only and asr keep the preset's lr: the same jobs, ids and params; mixed runs get -lr0.003
    mixed = {n for n in before if "-mixed-" in n}
    assert set(after) == (set(before) - mixed) | {f"{n}-lr0.003" for n in mixed}
    assert all(after[n].params == before[n].params for n in set(before) - mixed if after[n].record)
    assert after["tiny-default-s0-mixed-banking-p0.1-tau0.5-lr0.003"].params["lr"] == 3e-3
    # the grid's run at the chosen lr is the search's run: its test set is all that is left to decode
    assert "tiny-default-s0-mixed-agriculture-p0.1-tau0.5-lr0.003" in search_jobs(spec)
    # 07 and 08 find each strategy's run
    assert after["07_forgetting-banking-p0.1-s0"].params["lr_mixed"] == 3e-3
    assert "lr_text_only" not in after["07_forgetting-banking-p0.1-s0"].params
    assert after["07_forgetting-banking-p0.1-s0"].after[1].endswith("-lr0.003")
    assert after["08_modality_gap-banking-p0.1-s0"].params["lr_mixed"] == 3e-3
    # another setting (scale) has no entry: the preset's lr, with a note
    capsys.readouterr()
    micro = expand_grid(_default_grid(scale="micro", stage2_lr_file=str(lr_file)))
    assert "the preset's (0.001)" in capsys.readouterr().err
    assert not any("-lr" in n for n in micro)
    # a strategy missing from the entry falls back to the preset's lr, with a note naming it
    data = yaml.safe_load(text)
    del data["entries"][0]["lr"]["mixed"]
    lr_file.write_text(render_lr_file(data["entries"]))
    assert stage2_lrs(_default_grid(stage2_lr_file=str(lr_file))) == {
        "text_only": 0.0,
        "mixed": 0.0,
        "asr": 0.0,
    }
    assert "stage-2 lr of mixed: the preset's" in capsys.readouterr().err
    # applying again replaces the entry of the same setting and keeps the others
    other = read_search(src)
    other["config"] = other["config"] | {"scale": "large"}
    apply(other, lr_file)
    apply(read_search(src), lr_file, src)
    assert [e["applies_to"]["scale"] for e in read_lr_file(lr_file)] == ["large", "default"]


def test_a_bad_lr_file_fails_naming_the_key(tmp_path):
    path = tmp_path / "lr.yaml"
    path.write_text(yaml.safe_dump({"entries": [{"applies_to": {}, "lr": {}}]}))
    with pytest.raises(ValueError, match=r"entries\[0\]\.applies_to: missing"):
        expand_grid(_default_grid(stage2_lr_file=str(path)))
    applies = {"preset": "tiny", "scale": "default", "source_domain": "source", "steps": 0, "base_steps": 0}
    path.write_text(yaml.safe_dump({"entries": [{"applies_to": applies, "lr": {"mixed": -1}}]}))
    with pytest.raises(ValueError, match=r"entries\[0\]\.lr\.mixed: -1 is not a positive"):
        expand_grid(_default_grid(stage2_lr_file=str(path)))


def test_the_committed_lr_file_is_valid():
    read_lr_file(ROOT / "workflow/grids/stage2_lr.yaml")


def test_run_ids_name_the_lr_only_where_it_differs_from_the_presets():
    plain = set(expand_grid(_default_grid(stage2_lr_file="")))
    assert set(expand_grid(_default_grid(lr=1e-3, stage2_lr_file=""))) == plain
    other = set(expand_grid(_default_grid(lr=3e-3, stage2_lr_file="")))
    assert "tiny-default-s0-asr-banking-p1-lr0.003" in other and "tiny-default-s0-base" in other
    assert _extra({"lr": 1e-3}, 1e-3) == () and _extra({"lr": 3e-3}, 1e-3) == ("lr0.003",)
    assert _extra({"lr": None}, 1e-3) == () and _extra({"lr": 3e-3, "steps": 5}, 1e-3) == (
        "steps5",
        "lr0.003",
    )


def test_adapt_needs_something_to_evaluate():
    with pytest.raises(ValueError, match="nothing would be evaluated"):
        adapt(strategy="mixed", p=0.1, eval_test=False)


def test_cli_select_and_apply(tmp_path, capsys):
    spec = search_spec(_config(tmp_path))
    assert main(["select", "--work-dir", spec["work_dir"]]) == 1
    assert "no record of the search runs" in capsys.readouterr().err
    _fake_records(spec)
    assert main(["select", "--work-dir", spec["work_dir"]]) == 0
    assert "<- chosen" in capsys.readouterr().out
    assert search_path(spec["work_dir"]).exists()
    assert main(["select", "--spec", json.dumps(spec)]) == 0
    out = tmp_path / "lr.yaml"
    assert main(["apply", "--work-dir", spec["work_dir"], "--out", str(out)]) == 0
    assert "mixed     0.003 (run ids of mixed runs now end in -lr0.003)" in capsys.readouterr().out
    assert read_lr_file(out)[0]["lr"] == {"text_only": 1e-3, "mixed": 3e-3, "asr": 1e-3}


def test_snakemake_dry_run_lists_the_search(tmp_path):
    out = _snakemake(
        "-n",
        "--quiet",
        "rules",
        "--configfile",
        "workflow/grids/search.yaml",
        "--config",
        f"work_dir={tmp_path / 'w'}",
        f"publish_to={tmp_path / 'r'}",
        "--",
        "search",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout + out.stderr
    assert re.search(r"search_run\s+15\b", text) and re.search(r"\bsearch\s+1\b", text)


# --- the search through the API, at micro scale --------------------------------------------------------


def _run(job, **extra):
    """What notebooks 04-06 do with a job's parameters."""
    q = dict(job.params)
    s = STRATEGY_OF[job.notebook]
    tau = q.pop("tau_t", q.pop("tau", 0.5))
    kw = {k: q[k] for k in ("preset", "seed", "scale", "source_domain", "target_domain", "eval_source")}
    kw |= {k: q[k] for k in ("eval_dev", "eval_test", "results_dir") if k in q}
    kw |= {"steps": q["steps"] or None, "lr": q["lr"] or None, "base_steps": q["base_steps"] or None}
    return adapt(**kw, **extra, strategy=s, p=q.get("p", 0.0), tau=tau, progress=False)


@needs_tts
@needs_whisper
@pytest.mark.slow
def test_search_at_micro_scale(micro, micro_work_dir, tmp_path):
    """Random stage 0, 2 base steps, 2 stage-2 steps per run; 2 strategies x 2 lrs on the banking dev set."""
    stage0 = _random_stage0(tmp_path)
    over = {k: v for k, v in MICRO_RUN.items() if k != "stage2.steps"}
    extra = {"work_dir": micro_work_dir, "stage0": stage0, "overrides": over}
    cfg = _default_grid(scale="micro", work_dir=str(micro_work_dir), steps=2, base_steps=2, stage2_lr_file="")
    cfg |= {"targets": ["banking"], "p": [0.5], "tau_t_sweep": None, "forgetting": None, "modality_gap": None}
    cfg["search"] = {"strategies": ["mixed", "asr"], "lrs": [1e-3, 3e-3], "targets": ["banking"], "p": [0.5]}
    spec = search_spec(cfg)
    jobs = search_jobs(spec)
    assert len(jobs) == 4
    for job in jobs.values():
        res = _run(job, **extra)
        assert [(e["domain"], e["split"]) for e in res.record["eval"]] == [("banking", "dev")]
        assert not (res.run_dir / "eval" / "banking_test.json").exists()  # no test decode
        assert res.record["run_id"] == job.name and math.isclose(res.record["lr"], job.params["lr"] or 1e-3)
        validate_record(res.record)
    result = select(spec)
    assert set(result["strategies"]) == {"mixed", "asr"} and result["steps"] == 2
    write_search(result)
    # the grid's run at the preset's lr is the search's run: found, not retrained; only its test set decoded
    grid = expand_grid(cfg)
    name = "tiny-micro-s0-mixed-banking-p0.5-tau0.5-steps2-base2"
    assert name in jobs and name in grid
    searched = _run(jobs[name], **extra)
    before = (searched.run_dir / "stage2" / "done.json").stat().st_mtime_ns
    full = _run(grid[name], **extra | {"results_dir": tmp_path / "results"})
    assert full.run_dir == searched.run_dir
    assert (full.run_dir / "stage2" / "done.json").stat().st_mtime_ns == before
    assert {(e["domain"], e["split"]) for e in full.record["eval"]} >= {
        ("banking", "test"),
        ("banking", "dev"),
    }
    # applied, the grid's runs are the search's runs at the chosen lr
    lr_file = tmp_path / "lr.yaml"
    apply(result, lr_file)
    chosen = expand_grid(cfg | {"stage2_lr_file": str(lr_file)})
    for s in ("mixed", "asr"):
        n = next(n for n in chosen if f"-{s}-banking-p0.5" in n)
        assert n in jobs, n
