"""Stage 2 on demand (docs/paper.md "System", stage 2; "Mixed batch"): adapt the base model's LoRA to a target
domain with one strategy, evaluate it, and write its result record. What notebooks 04-08 call.

    res = adapt("tiny", target_domain="banking", strategy="mixed", p=0.2)   # trains or finds the run
    res.wer_table()                  # WER with its CI on every evaluated set
    model, cfg = res.load_model()    # the adapted SpeechLLM (eval mode)

Strategies (mbasr/method/mixed_batch.py): "text_only" (p = 0: corrupted target text + the three source
components), "mixed" (0 < p <= 1: a share p of the target items served as audio), "asr" (standard LoRA
fine-tuning on the share p of the target audio only). The base model is the one of `mbasr.runs.base` with the
same preset, seed, scale and source domain: built first when missing. The target is a domain of the
synthetic corpus or one imported into `work_dir` (`mbasr import`, mbasr/data/domains.py), checked before
any heavy work.

A run lives in `work_dir/adapt/<run_id>-<hash>/` (the hash covers the base model, the stage-2 config and
the strategy): `stage2/` (log, checkpoint, model; mbasr/training/loop.py: killed runs resume), `eval/<domain>_<split>
.jsonl|.json` (per utterance and summary; each evaluation is skipped when it exists, so asking later for
the source test set as well only decodes that; the learning-rate search, mbasr/study/search.py, decodes only the
dev set), `record.json`. The record is also written to
`results_dir` (default `work_dir/results/`) as `<run_id>.json` (mbasr/study/results.py's schema).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mbasr.config import Config, load_preset
from mbasr.data import domains
from mbasr.data.corpus import Corpus
from mbasr.io import atomic_write_json, code_version, stable_hash
from mbasr.method.mixed_batch import MixedBatchSampler
from mbasr.model import SpeechLLM, load_trainable
from mbasr.model.cache import encode_cached
from mbasr.model.decode import SlotInputs, evaluate
from mbasr.runs.base import base_model, load_base
from mbasr.runs.base_scores import base_record  # noqa: F401 (the API notebooks import from here)
from mbasr.runs.compare import compare, side_by_side  # noqa: F401 (idem)
from mbasr.runs.ids import adapt_run_id, preset_label, run_extra
from mbasr.runs.params import check_adapt, check_base
from mbasr.runs.run import RunResult
from mbasr.study.results import eval_entry, make_record, write_record
from mbasr.training.loop import MODEL, train_stage
from mbasr.vocab import MB_TAU, NOTEBOOKS

RECORD = "record.json"


@dataclass
class AdaptResult(RunResult):
    """An adaptation run: its folder and its result record."""

    record: dict[str, Any] = field(default_factory=dict)
    STAGE: ClassVar[str] = "stage2"

    def wer(self, domain: str, split: str = "test") -> dict[str, Any]:
        for e in self.record["eval"]:
            if e["domain"] == domain and e["split"] == split:
                return e
        have = [(e["domain"], e["split"]) for e in self.record["eval"]]
        raise KeyError(f"{self.run_dir}: no evaluation on {domain} {split}; have {have}")

    def wer_table(self):
        """One row per evaluated set: WER, its 95% CI and sizes, as fractions."""
        import pandas as pd

        cols = ["domain", "split", "wer", "ci_low", "ci_high", "n_utts", "n_words"]
        return pd.DataFrame(self.record["eval"])[cols].set_index(["domain", "split"])

    def examples(self, domain: str | None = None, split: str = "test", n: int = 5):
        """The first `n` utterances of a set (default: the target test set): reference and hypothesis."""
        return self.example_rows(self.wer(domain or self.record["target_domain"], split)["alignments"], n)

    def load_model(self, device: str | None = None) -> tuple[SpeechLLM, Config]:
        """The adapted model (base model + this run's LoRA), frozen, in eval mode, and its config."""
        rec = self.record
        model, _, _ = load_base(**_base_kwargs(rec["params"]), device=device, progress=False)
        cfg = stage2_config(rec["params"])
        load_trainable(model, self.model_path, cfg)
        model.set_trainable(())
        return model.eval(), cfg


def _base_kwargs(params: dict) -> dict:
    return {
        k: params[k]
        for k in ("preset", "work_dir", "seed", "scale", "source_domain", "overrides", "stage0")
        if k in params
    } | {"steps": params.get("base_steps")}


def stage2_config(params: dict) -> Config:
    """The preset with the run's overrides, seed, and stage-2 `steps` / `lr` when given."""
    over = dict(params.get("overrides") or {}) | {"seed": params["seed"]}
    if params.get("steps"):
        over.update({"stage2.steps": int(params["steps"]), "stage2.epochs": None})
    if params.get("lr"):
        over["stage2.lr"] = float(params["lr"])
    return load_preset(params["preset"], over)


def adapt(
    preset: str = "tiny",
    work_dir: str | Path = "runs",
    seed: int = 0,
    scale: str = "default",
    source_domain: str = "source",
    target_domain: str = "banking",
    strategy: str = "mixed",
    p: float = 0.2,
    tau: float = MB_TAU,
    steps: int | None = None,
    lr: float | None = None,
    eval_source: bool = False,
    eval_dev: bool = False,
    eval_test: bool = True,
    base_steps: int | None = None,
    overrides: dict | None = None,
    stage0: str | Path | None = None,
    results_dir: str | Path | None = None,
    notebook: str = "",
    executed_notebook: str | None = None,
    device: str | None = None,
    progress: bool = True,
) -> AdaptResult:
    """Adapt (or find) and evaluate one run; see the module docstring.

    `p`: share of the target training utterances with audio available as audio (nested subsets, mbasr.data.manifest
    .subset); `tau`: target share of each batch (mixed, text_only; the paper's 0.5), so the target-text
    share is tau_t = (1 - p) * tau; `steps`, `lr`: stage 2's (None: the preset's); `eval_source`: also the
    source test set (forgetting, Figure 3); `eval_dev`: also the target dev set (learning-rate search:
    choose on dev, never on test); `eval_test=False`: skip the target test set (the search's runs score the
    dev set only; a later call with the default decodes it, nothing else); `base_steps`, `overrides`,
    `stage0`: as for the base model. An `lr` equal to the preset's is the preset's run (same run id)."""
    # every parameter, before any heavy work
    check_base(preset, work_dir, seed, scale, source_domain, base_steps, overrides, stage0, device, progress,
               steps_name="base_steps")  # fmt: skip
    check_adapt(strategy, p, tau, target_domain, source_domain, work_dir, steps, lr, eval_source, eval_dev,
                eval_test, results_dir, notebook, executed_notebook)  # fmt: skip
    t_all = time.perf_counter()
    params = {
        "preset": preset,
        "work_dir": str(work_dir),
        "seed": seed,
        "scale": scale,
        "source_domain": source_domain,
        "target_domain": target_domain,
        "strategy": strategy,
        "p": float(p),
        "tau": float(tau) if strategy != "asr" else None,
        "steps": steps,
        "lr": lr,
        "eval_source": eval_source,
        "eval_dev": eval_dev,
        "eval_test": eval_test,
        "base_steps": base_steps,
        "overrides": overrides or {},
        "stage0": None if stage0 is None else str(stage0),
    }
    work_dir = Path(work_dir)
    timings: dict[str, Any] = {}
    t = time.perf_counter()
    base = base_model(**_base_kwargs(params), device=device, progress=progress)  # trained when missing
    timings["base_s"] = round(time.perf_counter() - t, 3)
    imported = domains.fingerprint(work_dir, target_domain)
    if imported is None and target_domain not in base.result["test_sets"]:
        raise ValueError(
            f"target_domain={target_domain!r}: not in this corpus ({base.result['corpus']['root']}); "
            f"{domains.known_domains(work_dir)}"
        )
    cfg = stage2_config(params)
    default_lr = stage2_config(params | {"lr": None}).stage2.lr
    tau_t = None if strategy == "asr" else round((1.0 - p) * tau, 6)
    run_id = adapt_run_id(strategy, preset, scale, seed, target_domain, p, params["tau"], source_domain,
                          steps, lr, default_lr, base_steps)  # fmt: skip
    identity = {
        "base": base.run_dir.name,
        "stage2": cfg.to_dict()["stage2"],
        "lora": cfg.to_dict()["lora"],
        "strategy": strategy,
        "p": float(p),
        "tau": params["tau"],
        "target_domain": target_domain,
    }
    if imported is not None:  # (absent for the corpus's domains, whose run folders keep their names)
        identity["target_data"] = imported
    run_dir = work_dir / "adapt" / f"{run_id}-{stable_hash(identity, 8)}"
    corpus = Corpus(Path(base.result["corpus"]["root"]), base.result["corpus"]["params"])
    source_train = domains.load(corpus, work_dir, source_domain, "train")
    target_train = domains.load(corpus, work_dir, target_domain, "train")
    want = [(target_domain, "test")] if eval_test else []
    want += [(source_domain, "test")] if eval_source else []
    want += [(target_domain, "dev")] if eval_dev else []
    todo = [(d, s) for d, s in want if not (run_dir / "eval" / f"{d}_{s}.json").exists()]
    trained = (run_dir / "stage2" / "done.json").exists()

    results_dir = Path(results_dir) if results_dir else work_dir / "results"
    if trained and not todo and (run_dir / RECORD).exists():  # nothing to do: the record as it was made
        record = json.loads((run_dir / RECORD).read_text())
        if not (results_dir / f"{run_id}.json").exists():
            write_record(record, results_dir)
        return AdaptResult(run_dir, record)
    model, _, _ = load_base(**_base_kwargs(params), device=device, progress=progress)
    slots: SlotInputs | None = None  # made below, once the features of the sampler's audio are known
    sampler = MixedBatchSampler(
        source_train if strategy != "asr" else None,
        target_train,
        strategy,
        p=p,
        tau=tau if strategy != "asr" else 0.5,
        batch_size=cfg.stage2.batch_size,
        seed=seed,
        projector_text=lambda utt: slots.projector_text(utt),
    )
    # what the slot needs: the training audio (source audio and the target's audio subset) unless trained,
    # and every set still to be evaluated
    needed = [] if trained else list(sampler.audio_subset) + (source_train if strategy != "asr" else [])
    evals = {(d, s): domains.load(corpus, work_dir, d, s, audio_only=True) for d, s in todo}
    needed += [u for utts in evals.values() for u in utts]
    t = time.perf_counter()
    feats = encode_cached(model.encoder, needed, work_dir / "cache", progress=progress) if needed else {}
    timings["encode_s"] = round(time.perf_counter() - t, 3)
    slots = SlotInputs(model, feats)

    t = time.perf_counter()
    train = train_stage(
        model,
        cfg,
        cfg.stage2,
        sampler,
        slots,
        run_dir / "stage2",
        progress=progress,
        desc=f"stage 2: {strategy}",
    )
    timings["train_s"] = round(time.perf_counter() - t, 3)
    timings["eval_s"] = {}
    for (d, s), utts in evals.items():
        t = time.perf_counter()
        evaluate(
            model,
            utts,
            slots,
            cfg.decoding,
            out_path=run_dir / "eval" / f"{d}_{s}.jsonl",
            seed=seed,
            precision=cfg.precision,
            progress=progress,
        )
        timings["eval_s"][f"{d}_{s}"] = round(time.perf_counter() - t, 3)

    # every evaluation of this run so far (an earlier call may have made others)
    entries = []
    for summary in sorted((run_dir / "eval").glob("*.json")):
        d, s = summary.stem.rsplit("_", 1)
        entries.append(eval_entry(d, s, json.loads(summary.read_text()), summary.with_suffix(".jsonl")))
    entries.sort(key=lambda e: (e["domain"] != target_domain, e["split"] != "test", e["domain"]))
    timings["total_s"] = round(time.perf_counter() - t_all, 3)
    record = make_record(
        run_id=run_id,
        experiment=strategy,
        notebook=notebook or NOTEBOOKS[strategy],
        executed_notebook=executed_notebook,
        preset=preset_label(preset),
        scale=scale,
        seed=seed,
        source_domain=source_domain,
        target_domain=target_domain,
        p=float(p),
        tau=params["tau"],
        tau_t=tau_t,
        steps=train["steps"],
        lr=cfg.stage2.lr,
        params=params,
        config=cfg.to_dict(),
        code_version=code_version(),
        seconds={"train": train["seconds"], **_flat(timings)},
        model_path=str(run_dir / "stage2" / MODEL),
        eval=entries,
        audio_subset={
            "utterances": len(sampler.audio_subset),
            "hours": round(sum(u.duration for u in sampler.audio_subset) / 3600, 4),
        },
        base_run=str(base.run_dir),
    )
    atomic_write_json(run_dir / RECORD, record)
    write_record(record, results_dir)
    return AdaptResult(run_dir, record)


def _extra(params: dict, default_lr: float = 0.0) -> tuple[str, ...]:
    """Run-id parts for settings away from the defaults (mbasr/runs/ids.py); an `lr` equal to the
    preset's `default_lr` adds none."""
    return run_extra(
        params.get("source_domain", "source"),
        params.get("steps") or 0,
        params.get("lr") or 0.0,
        default_lr,
        params.get("base_steps") or 0,
    )


def _flat(timings: dict[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in timings.items():
        if isinstance(v, dict):
            out.update({f"eval_{kk}": vv for kk, vv in v.items()})
        else:
            out[k.removesuffix("_s")] = v
    return out
