"""The one place that turns a preset's `precision` into an autocast context (training, decoding, stage 0).

    with autocast(device, cfg.precision):
        loss = model(items)

"bfloat16" (the paper's stage-1 setting, docs/paper.md "System") autocasts to bfloat16 on CUDA only, so a
bfloat16 preset (small) also runs on a CPU, in float32 there, without editing the preset.
Otherwise autocast is explicitly off, so the parameters' own dtype is used even inside an outer autocast.
"""

from __future__ import annotations

import torch


def autocast(device: torch.device | str, precision: str | None) -> torch.autocast:
    """bfloat16 autocast when `precision` is "bfloat16" and `device` is CUDA, else autocast disabled."""
    device = torch.device(device)
    if precision == "bfloat16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)
