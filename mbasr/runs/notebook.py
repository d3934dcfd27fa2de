"""What the adaptation notebooks (04 text-only, 05 standard fine-tuning, 06 mixed batch) share: their
parameters' check, the run (the base model and stage 2, trained or found) and what they show of it.

    nb = adaptation_setup("mixed", globals())   # every parameter checked, nothing built yet
    nb.run()                                    # adapt (or find the run); a summary of it
    fig = nb.loss_figure()
    table = nb.wer_table()                      # against the base model (None for a dev-only run)
    fig = nb.wer_figure(table)
    nb.transcripts()

Each notebook declares its parameters in its `parameters` cell: the shared ones (`SHARED`) and its
strategy's (`OWN`); mbasr/runs/params.py checks them, an unknown one included, before anything is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mbasr.runs.params import ParamError, check_adapt, check_base, json_param, notebook_params
from mbasr.vocab import NOTEBOOKS

TITLES = {"text_only": "text-only", "asr": "standard fine-tuning", "mixed": "mixed batch"}
SHARED = (
    "preset", "work_dir", "seed", "scale", "source_domain", "target_domain", "steps", "lr", "eval_source",
    "eval_dev", "eval_test", "base_steps", "stage0", "overrides", "results_dir", "executed_notebook",
    "n_examples",
)  # fmt: skip
OWN = {"text_only": ("tau_t",), "asr": ("p",), "mixed": ("p", "tau")}
PCT = {"wer": "{:.1%}", "ci_low": "{:.1%}", "ci_high": "{:.1%}"}


@dataclass
class Adaptation:
    """One adaptation notebook's run: its checked arguments, then its result and the base model's."""

    strategy: str
    values: dict[str, Any]  # the notebook's parameters
    base_args: dict[str, Any]  # for mbasr.runs.base.base_model
    adapt_args: dict[str, Any]  # for mbasr.runs.adapt.adapt
    res: Any = None  # AdaptResult, once run
    base: Any = None  # BaseResult, once run

    def run(self):
        """Adapt (or find the run) and find the base model; a summary of the run (Markdown)."""
        from IPython.display import Markdown

        from mbasr.runs.adapt import adapt
        from mbasr.runs.base import base_model

        self.res = adapt(**self.adapt_args)
        self.base = base_model(**self.base_args)
        r, v = self.res.record, self.values
        sub = r["audio_subset"]
        what = TITLES[self.strategy]
        return Markdown(
            f"Run `{r['run_id']}` in `{self.res.run_dir}`; preset **{r['preset']}**, seed {r['seed']}, "
            f"code `{r['code_version']}`.  \n"
            f"{what[0].upper() + what[1:]}: {r['steps']} steps of batch {r['config']['stage2']['batch_size']} "
            f"at lr {r['lr']:g}, {r['seconds']['train'] / 60:.1f} min of training; target audio used: "
            f"{sub['utterances']} utterances ({sub['hours']:.2f} h).  \n"
            f"Result record: `{v['results_dir'] or v['work_dir'] + '/results'}/{r['run_id']}.json`."
        )

    def loss_figure(self):
        from mbasr.report.plots import plot_loss

        return plot_loss(self.res.log_path)

    def wer_table(self):
        """WER of the base model and this run on the target (and source, when scored) test sets, shown;
        a learning-rate search run (dev set only: lrs are chosen on dev sets, never on test sets) shows
        its dev WER and returns None."""
        from IPython.display import display

        from mbasr.runs.compare import compare

        v = self.values
        if not v["eval_test"]:
            display(self.res.wer_table().style.format(PCT))
            return None
        scored = {e["domain"] for e in self.res.record["eval"]}
        domains = [d for d in (v["target_domain"], v["source_domain"]) if d in scored]
        table = compare({"base": self.base, TITLES[self.strategy]: self.res}, domains)
        display(table.style.format(PCT))
        return table

    def wer_figure(self, table):
        from mbasr.report.plots import plot_systems

        if table is None:
            return None
        v = self.values
        title = f"{v['target_domain']}: {TITLES[self.strategy]} ({v['preset']}, seed {v['seed']})"
        return plot_systems(table, title=title)

    def transcripts(self):
        """The first target test utterances beside the base model's (dev ones for a dev-only run)."""
        from mbasr.runs.compare import side_by_side

        n = self.values["n_examples"]
        if self.values["eval_test"]:
            return side_by_side(self.res, self.base, n)
        return self.res.examples(split="dev", n=n)

    def batch_shares(self):
        """The share of items of each of the five kinds over the run's batches, from its training log."""
        import pandas as pd

        from mbasr.training.loop import read_log

        steps = [r["counts"] for r in read_log(self.res.log_path) if r.get("kind") == "step"]
        counts = pd.DataFrame(steps).fillna(0)
        return (
            (counts.sum() / counts.to_numpy().sum())
            .rename("share of items")
            .to_frame()
            .style.format("{:.1%}")
        )


def adaptation_setup(strategy: str, namespace: dict[str, Any]) -> Adaptation:
    """Check an adaptation notebook's parameters (its kernel namespace, `globals()`) and make its run's
    arguments; nothing is built here. Fails on a bad value or an unknown parameter, naming it."""
    if strategy not in NOTEBOOKS:
        raise ParamError(f"strategy={strategy!r}: choose one of {', '.join(NOTEBOOKS)}")
    nb = NOTEBOOKS[strategy]
    v = notebook_params(namespace, nb)
    missing = [k for k in (*SHARED, *OWN[strategy]) if k not in v]
    if missing:  # the notebook and this module disagree: a bug of the notebook, not of the user's values
        raise ParamError(f"{nb}: its parameters cell lacks {', '.join(missing)}")
    if v["n_examples"] < 0:
        raise ParamError(f"n_examples={v['n_examples']}: must be >= 0")
    common = {
        "preset": v["preset"],
        "work_dir": v["work_dir"],
        "seed": v["seed"],
        "scale": v["scale"],
        "source_domain": v["source_domain"],
        "stage0": v["stage0"] or None,
        "overrides": json_param("overrides", v["overrides"]),
    }
    p = {"text_only": 0.0, "asr": v.get("p"), "mixed": v.get("p")}[strategy]
    tau = {"text_only": v.get("tau_t"), "asr": None, "mixed": v.get("tau")}[strategy]
    # 0 stands for "the preset's" in the notebooks' parameters, as None does in the API; a negative
    # value is kept, so the check names it
    steps, lr, base_steps = (None if v[k] == 0 else v[k] for k in ("steps", "lr", "base_steps"))
    check_base(**common, steps=base_steps, steps_name="base_steps")
    check_adapt(strategy, p, tau, v["target_domain"], v["source_domain"], v["work_dir"], steps, lr,
                v["eval_source"], v["eval_dev"], v["eval_test"], v["results_dir"] or None, nb,
                v["executed_notebook"] or None, tau_name="tau_t" if strategy == "text_only" else "tau")  # fmt: skip
    run = dict(
        common,
        base_steps=base_steps,
        target_domain=v["target_domain"],
        strategy=strategy,
        p=p,
        steps=steps,
        lr=lr,
        eval_source=v["eval_source"],
        eval_dev=v["eval_dev"],
        eval_test=v["eval_test"],
        results_dir=v["results_dir"] or None,
        executed_notebook=v["executed_notebook"] or None,
        notebook=nb,
    )
    if tau is not None:
        run["tau"] = tau
    return Adaptation(strategy, v, dict(common, steps=base_steps), run)
