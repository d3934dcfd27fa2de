"""The base model (docs/paper.md "System", stage 1: the projector trained on source-domain audio), on demand:
what notebook 03 and stage 2 call.

    res = base_model("tiny", work_dir="runs", seed=0)    # builds / finds corpus, features, model, WERs
    res.wer_table()                                      # WER with its CI on the source and every target
    model, cfg, res = load_base("tiny", work_dir="runs")  # the trained model, for stage 2

Every step is idempotent: the corpus is found when built (`prepare_corpus`), encoder frames come from the
feature cache (`work_dir/cache/<encoder identity>/`), training is skipped when its `done.json` exists and
resumed from its checkpoint otherwise, and each test set's evaluation is skipped when its result file
exists. A run lives in `work_dir/base/<preset>-<source>-seed<seed>-<hash>/`, the hash covering the resolved
config, the corpus and (tiny) the stage-0 weights:
    stage1/         log.jsonl, checkpoint.pt, model/, done.json        (mbasr/training/loop.py)
    eval/           <domain>_test.jsonl (per utterance) and <domain>_test.json (summary)
    result.json     parameters, config, code version, WER and CI per test set, timings, paths
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from mbasr.config import Config, load_preset
from mbasr.data.corpus import Corpus, load_split, prepare_corpus
from mbasr.data.manifest import Utterance
from mbasr.io import atomic_write_json, code_version, file_hash, stable_hash
from mbasr.method.corrupt import PROJECTOR_MODES
from mbasr.method.mixed_batch import MixedBatchSampler
from mbasr.model import SpeechLLM, build_model, load_trainable, untrained_lora
from mbasr.model.cache import encode_cached
from mbasr.model.decode import SlotInputs, evaluate, transcribe
from mbasr.runs.ids import base_dir_name
from mbasr.runs.params import check_base
from mbasr.runs.run import RunResult
from mbasr.study.premises import base_premises, stage0_premises
from mbasr.training.loop import DONE, LOG, MODEL, train_stage
from mbasr.training.stage0_checkpoint import DEFAULT_STAGE0, load_stage0, stage0_record

RESULT = "result.json"


@dataclass
class BaseResult(RunResult):
    """A base-model run: its folder and its `result.json`."""

    result: dict[str, Any] = field(default_factory=dict)
    STAGE: ClassVar[str] = "stage1"

    def alignments_path(self, domain: str) -> Path:
        return self.run_dir / "eval" / f"{domain}_test.jsonl"

    def premises_table(self):
        """The premises of the paper's regime measured on this base model (mbasr/study/premises.py)."""
        import pandas as pd

        rows = self.result.get("premises", [])
        table = pd.DataFrame(rows, columns=["premise", "measured", "bar", "met"])
        table["met"] = table["met"].map({True: "met", False: "NOT met", None: "not measured"})
        return table.set_index("premise")

    def wer_table(self):
        """One row per test set (the source first): WER, its 95% CI and sizes, as fractions."""
        import pandas as pd

        source = self.result["params"]["source_domain"]
        rows = [
            {"domain": d, "role": "source" if d == source else "target", **self.result["wer"][d]}
            for d in self.result["test_sets"]
        ]
        cols = ["domain", "role", "wer", "ci_low", "ci_high", "n_utts", "n_words", "n_guarded"]
        return pd.DataFrame(rows)[cols].set_index("domain")

    def examples(self, domain: str, n: int = 5):
        """The first `n` test utterances of `domain`: reference and hypothesis (raw), and their WER."""
        return self.example_rows(self.alignments_path(domain), n).set_index("key")


def resolve_config(preset: str, seed: int, steps: int | None, overrides: dict | None) -> Config:
    """The preset with `overrides`, the run's seed, and `steps` (None or 0: the preset's) for stage 1."""
    over = dict(overrides or {})
    if "seed" in over and over["seed"] != seed:
        raise ValueError(f"overrides: seed={over['seed']} conflicts with the parameter seed={seed}; set one")
    over["seed"] = seed
    if steps:
        if not isinstance(steps, int) or steps < 0:
            raise ValueError(
                f"steps={steps!r}: a positive number of stage-1 steps, or 0 / None for the preset's"
            )
        over.update({"stage1.steps": steps, "stage1.epochs": None})
    return load_preset(preset, over)


def _build(cfg: Config, stage0: Path | None) -> SpeechLLM:
    return load_stage0(cfg, stage0) if cfg.stage0 is not None else build_model(cfg)


def _run(
    preset: str,
    work_dir: str | Path,
    seed: int,
    scale: str,
    source_domain: str,
    steps: int | None,
    overrides: dict | None,
    stage0: str | Path | None,
    device: str | None,
    progress: bool,
    want_model: bool,
) -> tuple[BaseResult, SpeechLLM | None, Config]:
    check_base(preset, work_dir, seed, scale, source_domain, steps, overrides, stage0, device, progress)
    timings: dict[str, Any] = {}
    t = time.perf_counter()
    work_dir = Path(work_dir)
    cfg = resolve_config(preset, seed, steps, overrides)
    corpus = prepare_corpus(work_dir, scale=scale, seed=seed, progress=progress)
    timings["corpus_s"] = round(time.perf_counter() - t, 3)
    domains = list(corpus.params["domains"])
    if source_domain not in domains:
        raise ValueError(
            f"source_domain={source_domain!r}: not a domain of the corpus {corpus.root} ({domains})"
        )
    test_domains = [source_domain] + [d for d in domains if d != source_domain]
    stage0_path = Path(stage0) if stage0 is not None else DEFAULT_STAGE0
    if cfg.stage0 is not None and not stage0_path.exists():
        raise FileNotFoundError(
            f"stage0={stage0_path}: the {preset!r} preset starts from a stage-0 checkpoint; build it with "
            f"`python -m mbasr pretrain all --out {stage0_path}` or pass stage0=<path>"
        )
    # What the base model's weights depend on. Stage 2, LoRA (unless stage 1 trains it: LoRA starts as a
    # no-op, its B matrices zero) and the deviations' wording do not: adaptation settings may vary.
    untrained = untrained_lora(cfg.stage1.train)
    identity = {
        "config": {k: v for k, v in cfg.to_dict().items() if k not in ("stage2", "deviations", *untrained)},
        "corpus": corpus.root.name,
        "source_domain": source_domain,
        "stage0": file_hash(stage0_path) if cfg.stage0 is not None else None,
    }
    run_dir = work_dir / "base" / base_dir_name(preset, source_domain, seed, stable_hash(identity, 10))
    result_path = run_dir / RESULT
    if result_path.exists() and not want_model:
        return BaseResult(run_dir, json.loads(result_path.read_text())), None, cfg

    t = time.perf_counter()
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = _build(cfg, stage0_path).to(dev)
    timings["model_s"] = round(time.perf_counter() - t, 3)
    stage_dir, eval_dir = run_dir / "stage1", run_dir / "eval"
    if result_path.exists():
        load_trainable(model, stage_dir / MODEL, cfg, skip=untrained)  # LoRA: this model's own init
        model.eval()
        return BaseResult(run_dir, json.loads(result_path.read_text())), model, cfg

    train_utts = load_split(corpus, source_domain, "train")
    dev_utts = load_split(corpus, source_domain, "dev")
    tests = {d: load_split(corpus, d, "test") for d in test_domains}
    todo_eval = [d for d in test_domains if not (eval_dir / f"{d}_test.json").exists()]
    needed = [u for d in todo_eval for u in tests[d]]
    if not (stage_dir / DONE).exists():
        needed = train_utts + dev_utts + needed
    t = time.perf_counter()
    feats = encode_cached(model.encoder, needed, work_dir / "cache", progress=progress) if needed else {}
    timings["encode_s"] = round(time.perf_counter() - t, 3)
    slots = SlotInputs(model, feats)

    t = time.perf_counter()
    sampler = MixedBatchSampler(train_utts, None, "source_only", batch_size=cfg.stage1.batch_size, seed=seed)
    train = train_stage(
        model, cfg, cfg.stage1, sampler, slots, stage_dir, dev=dev_utts, progress=progress, desc="stage 1"
    )
    timings["train_s"] = round(time.perf_counter() - t, 3)

    wer, timings["eval_s"] = {}, {}
    for d in test_domains:
        summary = eval_dir / f"{d}_test.json"
        t = time.perf_counter()
        if not summary.exists():
            evaluate(
                model,
                tests[d],
                slots,
                cfg.decoding,
                out_path=eval_dir / f"{d}_test.jsonl",
                seed=seed,
                precision=cfg.precision,
                progress=progress,
            )
        timings["eval_s"][d] = round(time.perf_counter() - t, 3)
        wer[d] = json.loads(summary.read_text())
    stage0_rec = stage0_record(stage0_path) if cfg.stage0 is not None else None
    result = {
        "params": {
            "preset": preset,
            "work_dir": str(work_dir),
            "seed": seed,
            "scale": scale,
            "source_domain": source_domain,
            "steps": steps,
            "overrides": overrides or {},
            "stage0": str(stage0_path) if cfg.stage0 is not None else None,
            "device": str(dev),
        },
        "preset": preset,
        "seed": seed,
        "code_version": code_version(),
        "config": cfg.to_dict(),
        "identity": identity,
        "corpus": {"root": str(corpus.root), "params": corpus.params},
        "train": train,
        "test_sets": test_domains,  # the source first, then the targets in corpus order
        "wer": wer,
        # the regime the claims need (mbasr/study/premises.py): stage-0 LM measures and the base WERs
        "premises": stage0_premises(stage0_rec, source_domain) + base_premises(wer, source_domain),
        "timings": timings,
        "paths": {
            "run_dir": str(run_dir),
            "model": str(stage_dir / MODEL),
            "log": str(stage_dir / LOG),
            "alignments": {d: str(eval_dir / f"{d}_test.jsonl") for d in test_domains},
        },
    }
    atomic_write_json(result_path, result)
    return BaseResult(run_dir, result), model, cfg


def base_model(
    preset: str = "tiny",
    work_dir: str | Path = "runs",
    seed: int = 0,
    scale: str = "default",
    source_domain: str = "source",
    steps: int | None = None,
    overrides: dict | None = None,
    stage0: str | Path | None = None,
    device: str | None = None,
    progress: bool = True,
) -> BaseResult:
    """Build (or find) the base model of a preset and its WER on the source and every target test set.

    `steps`: stage-1 steps (None or 0: the preset's); `overrides`: preset keys ({"stage1.lr": 3e-4});
    `stage0`: the tiny preset's stage-0 checkpoint (default: the shipped one); `device`: default CUDA
    when available. See the module docstring for what is written where."""
    res, _, _ = _run(
        preset,
        work_dir,
        seed,
        scale,
        source_domain,
        steps,
        overrides,
        stage0,
        device,
        progress,
        want_model=False,
    )
    return res


def load_base(
    preset: str = "tiny",
    work_dir: str | Path = "runs",
    seed: int = 0,
    scale: str = "default",
    source_domain: str = "source",
    steps: int | None = None,
    overrides: dict | None = None,
    stage0: str | Path | None = None,
    device: str | None = None,
    progress: bool = True,
) -> tuple[SpeechLLM, Config, BaseResult]:
    """The trained base model (in eval mode), its config and its result; trains it first if needed."""
    res, model, cfg = _run(
        preset,
        work_dir,
        seed,
        scale,
        source_domain,
        steps,
        overrides,
        stage0,
        device,
        progress,
        want_model=True,
    )
    return model, cfg, res


def projector_noise_examples(
    model: SpeechLLM, result: BaseResult, domain: str | None = None, n: int = 3, progress: bool = False
):
    """For the first `n` test utterances of `domain` (default: the source): the transcript, the model's
    hypothesis, and the projector-induced noise text in each mode ("nearest": highest cosine similarity,
    as the paper describes; "argmin_dot": lowest dot product, as the authors' code computes)."""
    import pandas as pd

    domain = domain or result.result["params"]["source_domain"]
    corpus = Corpus(Path(result.result["corpus"]["root"]), result.result["corpus"]["params"])
    utts: list[Utterance] = load_split(corpus, domain, "test")[:n]
    work_dir = Path(result.result["params"]["work_dir"])
    feats = encode_cached(model.encoder, utts, work_dir / "cache", progress=progress)
    hyps = transcribe(model, utts, feats, batch_size=n, max_new_tokens=64)
    rows = []
    for u, h in zip(utts, hyps, strict=True):
        row = {"key": u.key, "transcript": u.target, "hypothesis": h}
        for mode in PROJECTOR_MODES:
            row[mode] = SlotInputs(model, {u.key: feats[u.key]}, projector_mode=mode).projector_text(u)
        rows.append(row)
    return pd.DataFrame(rows).set_index("key")
