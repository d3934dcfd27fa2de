"""Where pretrained weights come from (a local folder before a hub id), and loud checks on loading them."""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[2]


def resolve_source(hub_id: str | None, local_path: str | None, what: str) -> tuple[str, bool]:
    """(source, is_local): `local_path` when that folder exists, else `hub_id`; fails naming `what`.
    A relative `local_path` is looked up in the working directory, then in the repository root (so a
    notebook run from notebooks/ finds `weights/...` too)."""
    if local_path:
        for folder in (Path(local_path), REPO_ROOT / local_path):  # an absolute path: both the same
            if folder.is_dir():
                return str(folder), True
    if hub_id:
        return hub_id, False
    raise FileNotFoundError(f"{what}.local_path: folder {local_path!r} not found and {what}.hub_id is null")


@contextmanager
def quiet_loading():
    """transformers' "Loading weights" bar off while a model loads (in milliseconds here, it would only add a
    line to every executed notebook); restored after."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def check_loading_info(info: dict, what: str, source: str, ignore_prefixes: tuple[str, ...] = ()) -> None:
    """Fail on any missing, unexpected or mismatched weight reported by `from_pretrained(...,
    output_loading_info=True)`, except keys starting with `ignore_prefixes` (parts we do not use)."""
    problems = []
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        keys = [k for k in info.get(kind, []) if not str(k).startswith(ignore_prefixes)]
        if keys:
            problems.append(f"{kind}: {sorted(map(str, keys))[:10]}{' ...' if len(keys) > 10 else ''}")
    if problems:
        raise ValueError(f"{what}: loading {source!r} did not match the model: " + "; ".join(problems))


def weights_hash(module: nn.Module, n: int = 12) -> str:
    """A hash of every parameter and buffer (names, shapes, dtypes and values), independent of device."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:n]
