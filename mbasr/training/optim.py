"""Optimiser and learning-rate schedule of a training stage (docs/paper.md "System": AdamW, linear warm-up)."""

from __future__ import annotations

import torch

from mbasr.config import StageConfig


def make_optimizer(params, stage: StageConfig) -> torch.optim.Optimizer:
    if stage.optimizer != "adamw":
        raise ValueError(f"optimizer={stage.optimizer!r}: only 'adamw' is implemented (the paper's)")
    return torch.optim.AdamW(params, lr=stage.lr, weight_decay=stage.weight_decay)


def lr_factor(step: int, stage: StageConfig) -> float:
    """Linear warm-up from 0 over `warmup_steps`, then constant, or a linear decay to 0 at
    `decay_steps` when set."""
    if stage.warmup_steps and step < stage.warmup_steps:
        return (step + 1) / stage.warmup_steps
    if stage.decay_steps:
        span = max(1, stage.decay_steps - stage.warmup_steps)
        return max(0.0, 1.0 - (step - stage.warmup_steps) / span)
    return 1.0


def make_scheduler(opt: torch.optim.Optimizer, stage: StageConfig) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, stage))


def optimizer_step(loss: torch.Tensor, opt, sched, params, grad_clip: float | None) -> bool:
    """Backward, optional gradient clipping, update, schedule: one training step of any stage. With
    clipping, a step whose gradient norm is not finite is skipped (as AMP's grad scaler does) rather than
    poisoning every weight; returns whether the update was made."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
        if not torch.isfinite(norm):
            opt.zero_grad(set_to_none=True)
            return False
    opt.step()
    sched.step()
    return True
