"""The experiment grid of the workflow (workflow/Snakefile): a grid config (workflow/grids/*.yaml) expanded
into named notebook jobs, each with its notebook, its papermill parameters and the jobs it waits for.

    jobs = expand_grid(yaml.safe_load(open("workflow/grids/default.yaml")))
    jobs["tiny-default-s0-mixed-banking-p0.2-tau0.5"].notebook   # "06_mixed_batch.ipynb"

Run jobs are named by their result record's run id (mbasr.results.run_id_for), so a record in
`<work_dir>/results/` and a job of the grid always mean the same run.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from mbasr.results import run_id_for

REQUIRED = ("preset", "scale", "work_dir", "seeds", "source_domain", "targets", "tau", "p")


@dataclass
class Job:
    name: str
    notebook: str  # file name under notebooks/
    params: dict[str, Any]  # papermill parameters (work_dir and executed_notebook are added at run time)
    after: list[str] = field(default_factory=list)  # names of the jobs it needs
    record: bool = False  # writes a result record (<work_dir>/results/<name>.json)

    def papermill_args(self, work_dir: str, executed: str) -> str:
        params = {**self.params, "work_dir": work_dir, "executed_notebook": executed}
        return " ".join(f"-p {k} {shlex.quote(str(v))}" for k, v in params.items())


def _num(x: float) -> str:
    return f"{x:g}"


NOTEBOOKS = {
    "text_only": "04_text_only.ipynb",
    "asr": "05_asr_finetune.ipynb",
    "mixed": "06_mixed_batch.ipynb",
}


def _run_job(strategy, target, p, tau, seed, extra, base, run_common, forget) -> Job:
    params = dict(run_common, target_domain=target, eval_source=target == forget.get("target"))
    if strategy == "text_only":
        params["tau_t"] = tau
    elif strategy == "asr":
        params["p"] = p
    else:
        params.update(p=p, tau=tau)
    pc = run_common
    name = run_id_for(strategy, pc["preset"], pc["scale"], seed, target, p, tau, extra)
    return Job(name, NOTEBOOKS[strategy], params, [base], record=True)


def expand_grid(config: dict[str, Any]) -> dict[str, Job]:
    """All jobs of a grid config, in a valid running order; a bad config fails naming the key."""
    missing = [k for k in REQUIRED if k not in config]
    if missing:
        raise ValueError(f"grid config: missing {missing} (see workflow/grids/default.yaml)")
    for key in ("seeds", "targets", "p"):
        if not isinstance(config[key], list) or not config[key]:
            raise ValueError(f"grid config: {key} must be a non-empty list, got {config[key]!r}")
    bad_p = [p for p in config["p"] if not 0 < float(p) <= 1]
    if bad_p:
        raise ValueError(f"grid config: p values {bad_p} outside (0, 1] (p = 0 is the base / text-only run)")
    preset, scale, src, tau = config["preset"], config["scale"], config["source_domain"], float(config["tau"])
    steps, lr, base_steps = (
        int(config.get("steps") or 0),
        float(config.get("lr") or 0),
        int(config.get("base_steps") or 0),
    )
    forget = config.get("forgetting") or {}
    sweep = config.get("tau_t_sweep") or {}
    gap = config.get("modality_gap") or {}
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
        extra_base = (f"base{base_steps}",) if base_steps else ()
        base = add(
            Job(
                run_id_for("base", preset, scale, seed, extra=extra_base),
                "03_base_model.ipynb",
                dict(common, source_domain=src, steps=base_steps),
                [data.name],
                record=True,
            )
        )
        run_common = dict(common, source_domain=src, steps=steps, lr=lr, base_steps=base_steps)
        extra = tuple(
            x
            for x, on in ((f"steps{steps}", steps), (f"lr{_num(lr)}", lr), (f"base{base_steps}", base_steps))
            if on
        )

        def run(strategy, target, p, tau_, seed=seed, extra=extra, base=base, common_=run_common):
            return add(_run_job(strategy, target, float(p), tau_, seed, extra, base.name, common_, forget))

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
                    f"07_forgetting-{t}-p{_num(p)}-s{seed}",
                    "07_forgetting.ipynb",
                    dict(run_common, target_domain=t, p=p, tau=tau),
                    needs,
                )
            )
        if gap:
            t, p = gap["target"], float(gap["p"])
            needs = [run("text_only", t, 0.0, tau).name, run("mixed", t, p, tau).name]
            add(
                Job(
                    f"08_modality_gap-{t}-p{_num(p)}-s{seed}",
                    "08_modality_gap.ipynb",
                    dict(common, target_domain=t, p=p, tau=tau, steps=steps, lr=lr, base_steps=base_steps),
                    needs,
                )
            )
    return jobs
