"""The base model's scores on every test set, those of domains imported into the work folder included,
and its result record (p = 0 of standard fine-tuning; mbasr/study/results.py's schema)."""

from __future__ import annotations

import json
from pathlib import Path

from mbasr.data import domains
from mbasr.data.corpus import Corpus
from mbasr.model.cache import encode_cached
from mbasr.model.decode import SlotInputs, evaluate
from mbasr.runs.base import base_model, load_base
from mbasr.runs.ids import base_run_id, preset_label
from mbasr.study.results import eval_entry, make_record, write_record


def base_record(
    preset: str = "tiny",
    work_dir: str | Path = "runs",
    seed: int = 0,
    scale: str = "default",
    source_domain: str = "source",
    base_steps: int | None = None,
    overrides: dict | None = None,
    stage0: str | Path | None = None,
    results_dir: str | Path | None = None,
    notebook: str = "03_base_model.ipynb",
    executed_notebook: str | None = None,
    progress: bool = True,
) -> dict:
    """The base model's result record (p = 0 of standard fine-tuning: every test set), written to
    `results_dir`; trains the base model first if needed."""
    res = base_model(
        preset, work_dir, seed, scale, source_domain, base_steps, overrides, stage0, progress=progress
    )
    r = res.result
    # every test set of the corpus and of the domains imported into the work folder (a replaced name once)
    imported = [d for d in domains.imported_domains(work_dir) if domains.has_test_audio(work_dir, d)]
    entries = [eval_entry(d, "test", *base_eval(res, d)) for d in dict.fromkeys([*r["test_sets"], *imported])]
    record = make_record(
        run_id=base_run_id(preset, scale, seed, source_domain, base_steps),
        experiment="base",
        notebook=notebook,
        executed_notebook=executed_notebook,
        preset=preset_label(preset),
        scale=scale,
        seed=seed,
        source_domain=source_domain,
        target_domain=None,
        p=0.0,
        tau=None,
        tau_t=None,
        steps=r["train"]["steps"],
        lr=r["config"]["stage1"]["lr"],
        params=r["params"],
        config=r["config"],
        code_version=r["code_version"],
        seconds={"train": r["train"]["seconds"]},
        model_path=r["paths"]["model"],
        eval=entries,
    )
    write_record(record, Path(results_dir) if results_dir else Path(work_dir) / "results")
    return record


def base_eval(base, domain: str, device: str | None = None, progress: bool = False) -> tuple[dict, Path]:
    """The base model's WER summary on `domain`'s test set and its alignments file: the base run's own for
    a corpus domain; for an imported one, decoded once into the base run's `eval/imported/`, named by the
    domain's content (a re-import is decoded again)."""
    r = base.result
    work_dir = Path(r["params"]["work_dir"])
    tag = domains.fingerprint(work_dir, domain)
    if tag is None:
        return r["wer"][domain], Path(r["paths"]["alignments"][domain])
    out = base.run_dir / "eval" / "imported" / f"{domain}-{tag}_test.jsonl"
    if not out.with_suffix(".json").exists():
        params = r["params"]
        kw = {
            k: params[k] for k in ("preset", "seed", "scale", "source_domain", "steps", "overrides", "stage0")
        }
        model, cfg, _ = load_base(**kw, work_dir=work_dir, device=device, progress=progress)
        corpus = Corpus(Path(r["corpus"]["root"]), r["corpus"]["params"])
        utts = domains.load(corpus, work_dir, domain, "test", audio_only=True)
        slots = SlotInputs(model, encode_cached(model.encoder, utts, work_dir / "cache", progress=progress))
        evaluate(model, utts, slots, cfg.decoding, out_path=out, seed=cfg.seed, precision=cfg.precision,
                 progress=progress)  # fmt: skip
    return json.loads(out.with_suffix(".json").read_text()), out
