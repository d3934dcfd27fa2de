"""The experiment grid of the workflow (workflow/Snakefile): a grid config (workflow/grids/*.yaml) expanded
into named notebook jobs, each with its notebook, its papermill parameters and the jobs it waits for.

    jobs = expand_grid(yaml.safe_load(open("workflow/grids/default.yaml")))
    jobs["tiny-default-s0-mixed-banking-p0.2-tau0.5"].notebook   # "06_mixed_batch.ipynb"

Run jobs are named by their result record's run id (mbasr/runs/ids.py), so a record in
`<work_dir>/results/` and a job of the grid always mean the same run.

Stage-2 learning rates: a grid with `lr: 0.0` (or none) gives each strategy the lr chosen on dev sets by
the learning-rate search (mbasr/study/search.py), read from `LR_FILE` (`stage2_lr_file` in the grid config, empty
for none), from the entry made on the grid's preset, scale, source domain, steps and base steps; a strategy
without one keeps the preset's lr, and a note says so. A nonzero `lr` is every strategy's. Run ids name the
lr only where it differs from the preset's (`-lr0.003`), so runs at the preset's lr keep their ids.

A grid config is checked against a JSON schema (mbasr/study/grid_schema.py) before any work: an unknown key or a value of the wrong
type fails naming the file and line it came from (`check_grid`; the Snakefile passes the config files it
merged).

Targets may be domains imported into the grid's work_dir (`mbasr import`, mbasr.data.domains; example:
workflow/grids/your_domain.yaml): their manifests are inputs of their runs and of the base model's job
(whose record scores every imported test set), so a re-import reruns them. An unknown target fails the
expansion, listing the synthetic and the imported domains.
"""

from __future__ import annotations

import functools
import math
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mbasr.runs.ids import adapt_run_id, base_run_id, id_number
from mbasr.study.grid_schema import check_grid
from mbasr.vocab import NOTEBOOKS, STRATEGIES

ROOT = Path(__file__).resolve().parents[2]
LR_FILE = "workflow/grids/stage2_lr.yaml"  # the chosen stage-2 lrs (python -m mbasr search apply writes it)
LR_MATCH = ("preset", "scale", "source_domain", "steps", "base_steps")  # what an entry of LR_FILE applies to


@dataclass
class Job:
    name: str
    notebook: str  # file name under notebooks/
    params: dict[str, Any]  # papermill parameters (work_dir and executed_notebook are added at run time)
    after: list[str] = field(default_factory=list)  # names of the jobs it needs
    record: bool = False  # writes a result record (<work_dir>/results/<name>.json)
    files: list[str] = field(default_factory=list)  # input files: a newer one reruns the job and all after it

    def papermill_args(self, work_dir: str, executed: str) -> str:
        params = {**self.params, "work_dir": work_dir}
        if "executed_notebook" in notebook_parameters(self.notebook):  # the notebooks that write a record
            params["executed_notebook"] = executed
        if unknown := sorted(set(params) - set(notebook_parameters(self.notebook))):
            raise ValueError(
                f"job {self.name}: notebooks/{self.notebook} has no parameter {', '.join(unknown)}"
            )
        return " ".join(f"-p {k} {shlex.quote(str(v))}" for k, v in params.items())


@functools.cache
def notebook_parameters(notebook: str) -> tuple[str, ...]:
    """The parameters a notebook declares (`name: type = value` lines of its cell tagged `parameters`):
    a job passes no other, as the notebook refuses unknown ones (mbasr.runs.params)."""
    import json

    nb = json.loads((ROOT / "notebooks" / notebook).read_text())
    cell = next(c for c in nb["cells"] if "parameters" in (c.get("metadata") or {}).get("tags", []))
    lines = "".join(cell["source"]).splitlines()
    return tuple(line.split(":")[0].strip() for line in lines if re.match(r"^[A-Za-z_]\w*\s*:", line))


def base_inputs(preset: str) -> list[str]:
    """What the base model is made from besides the corpus: its preset file and, for a preset with a
    stage 0 (tiny), the shipped stage-0 checkpoint. A new stage0.pt (git pull) or preset edit makes the
    workflow retrain the base model and, after it, every run (Snakemake's mtime trigger)."""
    from mbasr.config import DEFAULT_STAGE0, preset_path

    path = preset_path(preset).resolve()
    files = [str(path)]
    if (yaml.safe_load(path.read_text()) or {}).get("stage0") is not None:
        files.append(str(DEFAULT_STAGE0))
    return files


def base_job_name(
    preset: str, scale: str, seed: int, source_domain: str = "source", base_steps: int = 0
) -> str:
    return base_run_id(preset, scale, seed, source_domain, base_steps)


@functools.cache
def preset_lr(preset: str) -> float:
    """The preset's stage-2 learning rate (what `lr: 0.0` stands for)."""
    from mbasr.config import load_preset

    return float(load_preset(preset).stage2.lr)


def run_job(strategy, target, p, tau, seed, run_common, base, eval_source=False, files=()) -> Job:
    """One adaptation run (notebook 04, 05 or 06), named by its run id; `run_common` holds preset, scale,
    seed, source_domain, steps, lr (0: the preset's), base_steps."""
    params = dict(run_common, target_domain=target, eval_source=eval_source)
    if strategy == "text_only":
        params["tau_t"] = tau
    elif strategy == "asr":
        params["p"] = p
    else:
        params.update(p=p, tau=tau)
    pc = run_common
    default = preset_lr(pc["preset"]) if pc.get("lr") else 0.0
    name = adapt_run_id(
        strategy, pc["preset"], pc["scale"], seed, target, p, tau,
        pc["source_domain"], pc["steps"], pc.get("lr") or 0.0, default, pc["base_steps"],
    )  # fmt: skip
    return Job(name, NOTEBOOKS[strategy], params, [base], record=True, files=list(files))


def positive_number(v: Any) -> bool:
    """A finite number above 0 (a learning rate, an audio share); not a bool."""
    return not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v) and v > 0


def _note(msg: str) -> None:
    print(f"[grid] {msg}", file=sys.stderr)


def lr_file_path(config: dict[str, Any]) -> Path | None:
    """The grid's `stage2_lr_file` (default `LR_FILE`; a relative path is taken from the current folder if
    it exists there, else from the repository root), or None when set empty."""
    name = config.get("stage2_lr_file", LR_FILE)
    if not name:
        return None
    path = Path(name)
    return path if path.is_absolute() or path.exists() else ROOT / path


def read_lr_file(path: str | Path) -> list[dict[str, Any]]:
    """The entries of a stage-2 lr file (see `LR_FILE`), checked; a bad file fails naming the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: invalid YAML: {e}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("entries"), list):
        raise ValueError(f"{path}: needs a list `entries` (written by python -m mbasr search apply)")
    for i, e in enumerate(raw["entries"]):
        where = f"{path}: entries[{i}]"
        if (
            not isinstance(e, dict)
            or not isinstance(e.get("applies_to"), dict)
            or not isinstance(e.get("lr"), dict)
        ):
            raise ValueError(f"{where}: needs the mappings `applies_to` and `lr`")
        missing = [k for k in LR_MATCH if k not in e["applies_to"]]
        if missing:
            raise ValueError(f"{where}.applies_to: missing {missing}")
        for s, v in e["lr"].items():
            if s not in STRATEGIES:
                raise ValueError(f"{where}.lr.{s}: not a strategy; choose among {list(STRATEGIES)}")
            if not positive_number(v):
                raise ValueError(f"{where}.lr.{s}: {v!r} is not a positive learning rate")
    return raw["entries"]


def _applies_to(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "preset": config["preset"],
        "scale": config["scale"],
        "source_domain": config["source_domain"],
        "steps": int(config.get("steps") or 0),
        "base_steps": int(config.get("base_steps") or 0),
    }


def stage2_lrs(config: dict[str, Any], quiet: bool = False) -> dict[str, float]:
    """Each strategy's stage-2 lr for the grid's runs (0.0: the preset's): the grid's `lr` when nonzero,
    else the dev-set search's choice from the lr file's matching entry, else the preset's (with a note)."""
    lr = float(config.get("lr") or 0)
    if lr:
        return dict.fromkeys(STRATEGIES, lr)
    path = lr_file_path(config)
    want = _applies_to(config)
    entry = None
    if path is not None and path.exists():
        entry = next((e for e in read_lr_file(path) if e["applies_to"] == want), None)
    chosen = (entry or {}).get("lr", {})
    default = preset_lr(config["preset"])
    out = {}
    for s in STRATEGIES:
        v = float(chosen.get(s, 0.0))
        out[s] = 0.0 if not v or math.isclose(v, default, rel_tol=1e-9) else v
    missing = [s for s in STRATEGIES if s not in chosen]
    setting = ", ".join(f"{k}={v}" for k, v in want.items())
    if missing and not quiet:
        where = "no stage2_lr_file" if path is None else f"none in {path}" if path.exists() else f"no {path}"
        _note(
            f"stage-2 lr of {', '.join(missing)}: the preset's ({default:g}); no dev-set search result for "
            f"{setting} ({where}); run the search to choose it (README, 'The learning-rate search')"
        )
    if chosen and not quiet:
        got = ", ".join(f"{s} {chosen[s]:g}" for s in STRATEGIES if s in chosen)
        _note(f"stage-2 lr chosen on dev sets for {setting} ({path}): {got}")
    return out


def _target_files(work_dir: str, targets: list[str | None]) -> dict[str, list[str]]:
    """Each named target's imported manifests (none for a synthetic domain); an unknown name fails."""
    from mbasr.data import domains

    out = {}
    for t in filter(None, targets):
        domains.check_domain(work_dir, t, "grid config: target")
        out[t] = [str(p) for p in sorted(domains.store_dir(work_dir).glob(f"{t}_*.jsonl"))]
    return out


def expand_grid(config: dict[str, Any], sources: list[str | Path] | tuple = ()) -> dict[str, Job]:
    """All jobs of a grid config, in a valid running order; a bad config fails naming the key, and the
    file and line among `sources` (the config files it was merged from) that set it (`check_grid`)."""
    check_grid(config, sources)
    preset, scale, src, tau = config["preset"], config["scale"], config["source_domain"], float(config["tau"])
    steps, lr, base_steps = (
        int(config.get("steps") or 0),
        float(config.get("lr") or 0),
        int(config.get("base_steps") or 0),
    )
    forget = config.get("forgetting") or {}
    sweep = config.get("tau_t_sweep") or {}
    gap = config.get("modality_gap") or {}
    target_files = _target_files(
        config["work_dir"], [*config["targets"], *(x.get("target") for x in (forget, sweep, gap))]
    )
    lrs = stage2_lrs(config)  # per strategy (0.0: the preset's)

    def lr_params(strategies) -> dict[str, float]:  # 07 and 08: the lrs of their runs, where per strategy
        return {f"lr_{s}": lrs[s] for s in strategies if lrs[s] and lrs[s] != lr}

    jobs: dict[str, Job] = {}

    def add(job: Job) -> Job:
        jobs.setdefault(job.name, job)
        return jobs[job.name]

    for seed in config["seeds"]:
        seed = int(seed)
        common = {"preset": preset, "seed": seed, "scale": scale}
        data = add(Job(f"01_data_prep-{scale}-s{seed}", "01_data_prep.ipynb", {"seed": seed, "scale": scale}))
        add(
            Job(
                f"02_corruption-{scale}-s{seed}",
                "02_corruption.ipynb",
                {"seed": seed, "scale": scale},
                [data.name],
            )
        )
        base = add(
            Job(
                base_job_name(preset, scale, seed, src, base_steps),
                "03_base_model.ipynb",
                dict(common, source_domain=src, steps=base_steps),
                [data.name],
                record=True,
                files=base_inputs(preset) + sorted({f for fs in target_files.values() for f in fs}),
            )
        )
        run_common = dict(common, source_domain=src, steps=steps, lr=lr, base_steps=base_steps)

        def run(strategy, target, p, tau_, seed=seed, base=base, common_=run_common):
            common_ = dict(common_, lr=lrs[strategy])
            return add(
                run_job(
                    strategy,
                    target,
                    float(p),
                    tau_,
                    seed,
                    common_,
                    base.name,
                    target == forget.get("target"),
                    target_files[target],
                )
            )

        for target in config["targets"]:
            if config.get("text_only", True):
                run("text_only", target, 0.0, tau)
            for p in config["p"]:
                run("mixed", target, p, tau)
                run("asr", target, p, None)
        if sweep:
            for t in sweep.get("values", []):
                run("text_only", sweep["target"], 0.0, float(t))
        if forget:
            t, p = forget["target"], float(forget["p"])
            needs = [
                run("text_only", t, 0.0, tau).name,
                run("mixed", t, p, tau).name,
                run("asr", t, p, None).name,
            ]
            add(
                Job(
                    f"07_forgetting-{t}-p{id_number(p)}-s{seed}",
                    "07_forgetting.ipynb",
                    dict(run_common, target_domain=t, p=p, tau=tau) | lr_params(STRATEGIES),
                    needs,
                )
            )
        if gap:
            t, p = gap["target"], float(gap["p"])
            needs = [run("text_only", t, 0.0, tau).name, run("mixed", t, p, tau).name]
            add(
                Job(
                    f"08_modality_gap-{t}-p{id_number(p)}-s{seed}",
                    "08_modality_gap.ipynb",
                    dict(common, target_domain=t, p=p, tau=tau, steps=steps, lr=lr, base_steps=base_steps)
                    | lr_params(("text_only", "mixed")),
                    needs,
                )
            )
    return jobs
