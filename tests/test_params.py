"""Parameter checks before any work (mbasr/runs/params.py): the API entry points and the adaptation
notebooks fail in seconds on a bad value or an unknown parameter, naming it; run ids and run folders
of a preset given as a file stay inside the work folder (mbasr/runs/ids.py)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from conftest import needs_tts, needs_whisper

from mbasr.config import PRESET_DIR
from mbasr.runs.adapt import adapt
from mbasr.runs.base import base_model, load_base
from mbasr.runs.ids import adapt_run_id, base_dir_name, base_run_id, preset_label
from mbasr.runs.notebook import OWN, SHARED
from mbasr.runs.params import ParamError, notebook_params

ROOT = Path(__file__).resolve().parents[1]
ADAPT_CASES = [
    ({"target_domain": "nonexistent"}, r"target_domain='nonexistent': no such domain; synthetic: source"),
    ({"steps": -5}, r"steps=-5: must be >= 0"),
    ({"seed": "abc"}, r"seed='abc': must be an integer"),
    ({"base_steps": 2.5}, r"base_steps=2.5: must be an integer"),
    ({"lr": -1.0}, r"lr=-1.0: must lie in \(0, inf\]"),
    ({"strategy": "mixed", "p": 0.0}, r"p=0.0: strategy='mixed' needs a target audio share"),
    ({"tau": 1.0}, r"tau=1.0: must lie in \(0, 1\)"),
    ({"scale": "huge"}, r"scale='huge': choose one of micro, default, large"),
    ({"preset": "nope"}, r"preset='nope': .*no preset named 'nope'"),
    ({"overrides": {"stage2.lrx": 1}}, r"overrides=.*unknown key 'stage2.lrx'"),
    ({"eval_test": "no"}, r"eval_test='no': must be True or False"),
]


@pytest.mark.parametrize(("bad", "message"), ADAPT_CASES, ids=[next(iter(b)) for b, _ in ADAPT_CASES])
def test_adapt_checks_every_parameter_before_any_work(tmp_path, bad, message):
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=message):
        adapt(**{"work_dir": tmp_path, "scale": "micro", "progress": False} | bad)
    print(f"{bad}: failed in {time.perf_counter() - t0:.2f} s")
    assert not any(tmp_path.iterdir())  # no corpus, cache or run folder was started


@pytest.mark.parametrize("entry", [base_model, load_base])
def test_base_entry_points_check_their_parameters(tmp_path, entry):
    for bad, message in [
        ({"seed": "abc"}, "seed='abc'"),
        ({"steps": -1}, "steps=-1: must be >= 0"),
        ({"source_domain": "nowhere"}, "source_domain='nowhere'"),
        ({"overrides": {"seed": 3}}, "overrides=.*conflicts with the parameter seed=0"),
        ({"stage0": tmp_path / "none.pt"}, "stage0=.*no such file"),
    ]:
        with pytest.raises(ValueError, match=message):
            entry(work_dir=tmp_path, scale="micro", progress=False, **bad)
    assert not any(tmp_path.iterdir())


def test_a_preset_file_is_named_by_its_stem_and_stays_in_the_work_dir(tmp_path):
    mine = tmp_path / "elsewhere" / "my preset.yaml"
    mine.parent.mkdir()
    shutil.copy(PRESET_DIR / "tiny.yaml", mine)
    assert preset_label(mine) == "my_preset" and preset_label("tiny") == "tiny"
    work = tmp_path / "w"
    run_dir = work / "base" / base_dir_name(mine, "source", 0, "abc")
    assert run_dir.parent == work / "base" and run_dir.name == "my_preset-source-seed0-abc"
    assert (
        adapt_run_id("mixed", mine, "micro", 0, "banking", 0.2, 0.5)
        == "my_preset-micro-s0-mixed-banking-p0.2-tau0.5"
    )
    # a file named like a shipped preset: the shipped one's name only with the same content
    same = tmp_path / "tiny.yaml"
    shutil.copy(PRESET_DIR / "tiny.yaml", same)
    assert base_run_id(same, "micro", 0) == "tiny-micro-s0-base"
    same.write_text(same.read_text() + "\n# edited\n")
    assert preset_label(same).startswith("tiny_") and base_run_id(same, "micro", 0) != "tiny-micro-s0-base"
    assert preset_label(PRESET_DIR / "tiny.yaml") == "tiny"


def test_notebook_params_check_types_and_unknown_injected_names():
    declared = {"steps": int, "lr": float, "name": str}
    ns = {"__annotations__": declared, "steps": 3, "lr": 0, "name": "x", "In": ["", "steps: int = 0"]}
    assert notebook_params(ns) == {"steps": 3, "lr": 0.0, "name": "x"}
    with pytest.raises(ParamError, match=r"steps='3': must be an integer \(nb declares `steps: int`\)"):
        notebook_params(ns | {"steps": "3"}, "nb")
    with pytest.raises(ParamError, match=r"steps=True"):
        notebook_params(ns | {"steps": True}, "nb")
    injected = ns | {"In": [*ns["In"], "# Parameters\nstpes = 10\nlr = 0.1\n"], "stpes": 10}
    with pytest.raises(
        ParamError, match=r"nb: unknown parameter\(s\) stpes .*its parameters: steps, lr, name"
    ):
        notebook_params(injected, "nb")
    # without module annotations (a newer Python), the declared names come from the cells run
    bare = {k: v for k, v in ns.items() if k != "__annotations__"} | {
        "In": ["", "steps: int = 0\nlr: float = 0.0"]
    }
    assert set(notebook_params(bare)) == {"steps", "lr"}


NOTEBOOKS = {
    "text_only": "04_text_only.ipynb",
    "asr": "05_asr_finetune.ipynb",
    "mixed": "06_mixed_batch.ipynb",
}


@pytest.mark.parametrize("strategy", NOTEBOOKS)
def test_adaptation_notebooks_declare_the_parameters_their_setup_checks(strategy):
    papermill = pytest.importorskip("papermill")
    declared = papermill.inspect_notebook(str(ROOT / "notebooks" / NOTEBOOKS[strategy]))
    assert list(declared) == [*SHARED, *OWN[strategy]]


def _namespace(strategy: str, **values) -> dict:
    """A kernel namespace as the notebook's parameters cell leaves it (its defaults), with `values`."""
    papermill = pytest.importorskip("papermill")
    declared = papermill.inspect_notebook(str(ROOT / "notebooks" / NOTEBOOKS[strategy]))
    types = {"str": str, "int": int, "float": float, "bool": bool}
    ns = {k: eval(v["default"]) for k, v in declared.items()}  # noqa: S307 (the notebook's own literals)
    return ns | {"__annotations__": {k: types[v["inferred_type_name"]] for k, v in declared.items()}} | values


@pytest.mark.parametrize(
    ("strategy", "bad", "message"),
    [
        ("text_only", {"tau_t": 1.5}, r"tau_t=1.5: must lie in \(0, 1\)"),
        ("asr", {"p": 0}, r"p=0.0: strategy='asr' needs a target audio share"),
        ("mixed", {"tau": 0}, r"tau=0.0: must lie in \(0, 1\)"),
        ("mixed", {"overrides": "{bad"}, r"overrides='\{bad': not JSON"),
        ("mixed", {"lr": -0.1}, r"lr=-0.1: must lie in \(0, inf\]"),
        ("asr", {"n_examples": -1}, r"n_examples=-1: must be >= 0"),
    ],
)
def test_adaptation_setup_checks_each_notebooks_own_parameters(tmp_path, strategy, bad, message):
    from mbasr.runs.notebook import adaptation_setup

    with pytest.raises(ParamError, match=message):
        adaptation_setup(strategy, _namespace(strategy, work_dir=str(tmp_path), **bad))
    nb = adaptation_setup(strategy, _namespace(strategy, work_dir=str(tmp_path), steps=3))
    assert (
        nb.adapt_args["steps"] == 3 and nb.adapt_args["lr"] is None and nb.adapt_args["strategy"] == strategy
    )
    assert not any(tmp_path.iterdir())


NB_CASES = [
    ("04_text_only.ipynb", {"stpes": 10}, r"unknown parameter\(s\) stpes .*its parameters: preset, work_dir"),
    ("04_text_only.ipynb", {"target_domain": "nonexistent"}, r"target_domain='nonexistent': no such domain"),
    ("04_text_only.ipynb", {"steps": -5}, r"steps=-5: must be >= 0"),
    ("04_text_only.ipynb", {"seed": "abc"}, r"seed='abc': must be an integer"),
    ("07_forgetting.ipynb", {"steps": -5}, r"steps=-5: must be >= 0"),
    (
        "07_forgetting.ipynb",
        {"stpes": 10},
        r"unknown parameter\(s\) stpes .*its parameters: preset, work_dir",
    ),
    (
        "06_mixed_batch.ipynb",
        {"stpes": 10},
        r"unknown parameter\(s\) stpes .*its parameters: preset, work_dir",
    ),
]


@pytest.mark.notebook
@pytest.mark.parametrize(
    ("name", "bad", "message"), NB_CASES, ids=[f"{n[:2]}-{next(iter(b))}" for n, b, _ in NB_CASES]
)
def test_adaptation_notebooks_fail_fast_naming_the_parameter(tmp_path, name, bad, message):
    papermill = pytest.importorskip("papermill")
    work = tmp_path / "w"
    t0 = time.perf_counter()
    with pytest.raises(papermill.PapermillExecutionError, match=message):
        papermill.execute_notebook(
            str(ROOT / "notebooks" / name),
            str(tmp_path / name),
            parameters={"work_dir": str(work), "scale": "micro", **bad},
            kernel_name="python3",
            progress_bar=False,
        )
    print(f"{name} {bad}: failed in {time.perf_counter() - t0:.1f} s (kernel start included)")
    assert not work.exists()  # nothing was built


@needs_whisper
@needs_tts
@pytest.mark.slow
def test_a_preset_file_trains_inside_the_work_dir(micro, micro_work_dir, tmp_path):
    """A preset given as a path outside the work folder: the base run and its record stay inside it."""
    from test_train import _random_stage0

    from mbasr.runs.adapt import base_record

    preset = tmp_path / "presets" / "mytiny.yaml"
    preset.parent.mkdir()
    shutil.copy(PRESET_DIR / "tiny.yaml", preset)
    run = dict(preset=str(preset), work_dir=micro_work_dir, scale="micro", stage0=_random_stage0(tmp_path))
    res = base_model(**run, steps=2, progress=False)
    assert res.run_dir.parent == micro_work_dir / "base" and res.run_dir.name.startswith(
        "mytiny-source-seed0-"
    )
    rec = base_record(**run, base_steps=2, results_dir=tmp_path / "results", progress=False)
    assert rec["run_id"] == "mytiny-micro-s0-base-base2" and rec["preset"] == "mytiny"
