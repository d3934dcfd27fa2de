"""The training loop of stages 1 and 2 (docs/paper.md "System": stage 1 trains the projector on source audio,
stage 2 adapts LoRA with a strategy of the mixed batch sampler), resumable and deterministic.

    slots = SlotInputs(model, feats)                          # cached encoder frames per utterance
    sampler = MixedBatchSampler(source, None, "source_only", batch_size=cfg.stage1.batch_size, seed=0)
    info = train_stage(model, cfg, cfg.stage1, sampler, slots, "runs/base/.../stage1")

`out_dir` receives:
    log.jsonl        one line per step {"kind": "step", step, loss, lr, seconds, epoch, counts} and per dev
                     evaluation {"kind": "dev", step, wer, ci_low, ci_high}; a resumed run first cuts it
                     back to its checkpoint's step
    checkpoint.pt    every `stage.checkpoint_every` steps (null: every epoch for an epoch-based stage, else
                     only at the end), written atomically: trained parameters, optimiser, schedule,
                     sampler step, RNG states, step, elapsed seconds, the resolved config
    model/           the final model (`save_trainable`: peft adapter + safetensors + trainable.json), then
    done.json        steps, seconds, final loss: the completion marker

A run killed at any point (kill -9 included) and restarted with `resume=True` continues from its last
checkpoint and ends bit-identical to an uninterrupted run with the same seed on the same hardware: the
sampler's batches are a pure function of the step, and the torch / Python / NumPy RNG states (LoRA
dropout) are saved with the weights. Deterministic algorithms are switched on for the run.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import shutil
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mbasr.config import Config, StageConfig
from mbasr.data.manifest import Utterance
from mbasr.io import atomic_write_bytes, atomic_write_json, code_version
from mbasr.method.mixed_batch import KINDS, MixedBatchSampler
from mbasr.model import SpeechLLM, load_trainable, save_trainable, untrained_lora
from mbasr.model.decode import SlotInputs, as_slot_inputs, evaluate
from mbasr.model.precision import autocast
from mbasr.progress import bar as progress_bar
from mbasr.training.optim import make_optimizer, make_scheduler, optimizer_step

CHECKPOINT, LOG, MODEL, DONE = "checkpoint.pt", "log.jsonl", "model", "done.json"
# Deterministic cuBLAS needs this before its first use, so it is set on import (a no-op on CPU).
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def stage_steps(stage: StageConfig, sampler: MixedBatchSampler) -> int:
    """`stage.steps`, or `stage.epochs` passes over the sampler's epoch stream."""
    return stage.steps if stage.steps is not None else sampler.steps_for_epochs(stage.epochs)


def _every(value: int | None, stage: StageConfig, sampler: MixedBatchSampler, steps: int, name: str) -> int:
    """Steps between checkpoints / dev evaluations; null: every epoch (epoch-based stage) or at the end."""
    if value is None:
        return sampler.steps_per_epoch if stage.epochs is not None else steps
    if value < 1:
        raise ValueError(f"stage.{name}={value}: must be a positive number of steps (or null)")
    return value


@contextmanager
def deterministic(seed: int):
    """Seed torch, Python and NumPy and use deterministic kernels for the duration of a run (an operation
    without a deterministic implementation on the device warns instead of failing the run)."""
    was = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was[0], warn_only=was[1])


def _rng_state() -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [x.tolist() if isinstance(x, np.ndarray) else x for x in np.random.get_state()],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    v, keys, pos, gauss, cached = state["numpy"]
    np.random.set_state((v, np.array(keys, dtype=np.uint32), pos, gauss, cached))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _trained_state(model: SpeechLLM, parts: Sequence[str]) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for part in parts for n, p in model.part_parameters(part)}


def _load_trained_state(
    model: SpeechLLM, parts: Sequence[str], state: Mapping[str, torch.Tensor], where: str
):
    params = {n: p for part in parts for n, p in model.part_parameters(part)}
    missing, unexpected = sorted(set(params) - set(state)), sorted(set(state) - set(params))
    if missing or unexpected:
        raise ValueError(
            f"{where}: trained parameters differ: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    with torch.no_grad():
        for n, p in params.items():
            if tuple(p.shape) != tuple(state[n].shape):
                raise ValueError(
                    f"{where}: {n}: shape {tuple(state[n].shape)} vs the model's {tuple(p.shape)}"
                )
            p.copy_(state[n])


def _save_checkpoint(path: Path, **ckpt) -> None:
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    atomic_write_bytes(path, buf.getvalue())


def _truncate_log(path: Path, step: int) -> None:
    """Keep the complete lines of steps <= `step` (a killed run may leave later or half-written ones)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row.get("step", math.inf) <= step:
            keep.append(line)
    path.write_text("".join(k + "\n" for k in keep), encoding="utf-8")


def read_log(path: str | Path) -> list[dict]:
    """The rows of a `log.jsonl` (a half-written last line is skipped)."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def train_stage(
    model: SpeechLLM,
    cfg: Config,
    stage: StageConfig,
    sampler: MixedBatchSampler,
    slot_inputs: SlotInputs | Mapping[str, torch.Tensor],
    out_dir: str | Path,
    resume: bool = True,
    dev: Sequence[Utterance] | None = None,
    progress: bool = True,
    desc: str = "train",
) -> dict[str, Any]:
    """Train the parts `stage.train` of `model` on the sampler's batches; see the module docstring.

    `slot_inputs`: the cached encoder frames ({utt.key: (T, D)}) or a `SlotInputs` over them. `dev`:
    utterances decoded every `stage.eval_every` steps (their WER goes to the log). With `resume`, a
    finished run (done.json) is loaded instead of retrained and a checkpoint is continued; without it,
    `out_dir` is started afresh. The model is returned frozen, in eval mode. Returns the done.json record."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    slots = as_slot_inputs(model, slot_inputs)
    steps = stage_steps(stage, sampler)
    if steps < 1:
        raise ValueError(f"stage.steps / stage.epochs give {steps} training steps; need at least 1")
    ckpt_every = _every(stage.checkpoint_every, stage, sampler, steps, "checkpoint_every")
    eval_every = _every(stage.eval_every, stage, sampler, steps, "eval_every")
    if sampler.batch_size != stage.batch_size:
        raise ValueError(f"sampler.batch_size={sampler.batch_size} but stage.batch_size={stage.batch_size}")
    device = next(model.llm.parameters()).device
    ckpt_path, log_path, model_path, done_path = (out_dir / n for n in (CHECKPOINT, LOG, MODEL, DONE))
    identity = {"config": cfg.to_dict(), "stage": asdict(stage), "sampler": sampler.config(), "steps": steps}

    params = model.set_trainable(stage.train)
    if resume and done_path.exists():
        # an untrained LoRA keeps the model's own (a base model reused under other LoRA targets)
        load_trainable(model, model_path, cfg, skip=untrained_lora(stage.train))
        model.set_trainable(())
        model.eval()
        return json.loads(done_path.read_text())
    if not resume:
        for p in (ckpt_path, log_path, done_path):
            p.unlink(missing_ok=True)
        shutil.rmtree(model_path, ignore_errors=True)

    projector_trained = "projector" in stage.train
    with deterministic(cfg.seed):
        opt = make_optimizer(params, stage)
        sched = make_scheduler(opt, stage)
        start, elapsed = 0, 0.0
        if resume and ckpt_path.exists():
            ck = torch.load(str(ckpt_path), map_location="cpu", weights_only=True)
            for key, mine in identity.items():
                if ck["identity"][key] != mine:
                    raise ValueError(
                        f"{ckpt_path}: made with another {key} than this run's; delete it or pass resume=False "
                        f"(checkpoint: {ck['identity'][key]}, now: {mine})"
                    )
            _load_trained_state(model, stage.train, ck["params"], str(ckpt_path))
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            sampler.load_state_dict(ck["sampler"])
            _set_rng_state(ck["rng"])
            start, elapsed = ck["step"], ck["seconds"]
        _truncate_log(log_path, start)
        sampler.step = start
        model.train()
        loss_value = float("nan")
        bar = progress_bar(
            total=steps, initial=start, desc=desc, unit="step", disable=not progress, mininterval=1.0
        )
        t0 = time.perf_counter() - elapsed
        with log_path.open("a", encoding="utf-8") as log:
            for step in range(start, steps):
                batch = sampler.next_batch()
                items = [slots.llm_item(it, projector_trained) for it in batch]
                lr = sched.get_last_lr()[0]
                with autocast(device, cfg.precision):
                    loss = model(items)
                optimizer_step(loss, opt, sched, params, stage.grad_clip)
                loss_value = float(loss.detach())
                if not math.isfinite(loss_value):
                    raise FloatingPointError(f"{out_dir}: loss is {loss_value} at step {step + 1}")
                counts = Counter(it.kind for it in batch)
                row = {
                    "kind": "step",
                    "step": step + 1,
                    "loss": loss_value,
                    "lr": lr,
                    "seconds": round(time.perf_counter() - t0, 3),
                    "epoch": round(sampler.epoch, 4),
                    "counts": {k: counts[k] for k in KINDS if counts[k]},
                }
                log.write(json.dumps(row) + "\n")
                log.flush()
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.2e}", refresh=False)
                done = step + 1
                if dev and (done % eval_every == 0 or done == steps):
                    res = evaluate(
                        model, dev, slots, cfg.decoding, n_boot=200, seed=cfg.seed, precision=cfg.precision
                    )
                    model.train()
                    dev_row = {
                        "kind": "dev",
                        "step": done,
                        "wer": res.wer,
                        "ci_low": res.ci_low,
                        "ci_high": res.ci_high,
                    }
                    log.write(json.dumps(dev_row) + "\n")
                    log.flush()
                    bar.write(f"{desc} step {done}: dev WER {100 * res.wer:.1f}%")
                if done % ckpt_every == 0 or done == steps:
                    _save_checkpoint(
                        ckpt_path,
                        identity=identity,
                        params=_trained_state(model, stage.train),
                        optimizer=opt.state_dict(),
                        scheduler=sched.state_dict(),
                        sampler=sampler.state_dict(),
                        rng=_rng_state(),
                        step=done,
                        seconds=time.perf_counter() - t0,
                    )
        bar.close()
    model.set_trainable(())  # returned frozen, in eval mode
    model.eval()
    seconds = time.perf_counter() - t0
    rows = [r for r in read_log(log_path) if r.get("kind") == "step"]
    tail = [r["loss"] for r in rows[-max(1, min(50, len(rows) // 10)) :]]
    record = {
        "steps": steps,
        "seconds": round(seconds, 3),
        "seconds_per_step": round(seconds / steps, 4),
        "final_loss": rows[-1]["loss"] if rows else loss_value,
        "final_loss_mean": float(np.mean(tail)) if tail else loss_value,
        "trained": list(stage.train),
        "stage": asdict(stage),
        "sampler": sampler.config(),
        "resumed_from": start,
        "threads": torch.get_num_threads(),  # the numbers depend on it (float sums in another order)
        "code_version": code_version(),
    }
    save_trainable(model, cfg, model_path, extra={"train": record})
    atomic_write_json(done_path, record)
    return record
