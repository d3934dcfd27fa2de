"""Frozen-encoder (and frozen-projector) outputs, computed once per utterance and kept on disk
(docs/paper.md "System": the encoder is frozen throughout, the projector in stage 2), so a training step pays
only for the LLM.

One `.pt` file per utterance under `cache_dir/<identity>/`, named by a hash of the audio file's resolved
path, modification time and size (a changed file gets a new key), or, for projector outputs, of the
input frames' content. The identity names the encoder (or projector) and hashes its weights.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf
import torch

from mbasr.io import atomic_write_bytes, stable_hash
from mbasr.model.encoders import SAMPLE_RATE, SpeechEncoder
from mbasr.model.hub import weights_hash
from mbasr.model.projector import ConcatProjector
from mbasr.model.speechllm import pad_frames
from mbasr.progress import bar as progress_bar


class HasAudio(Protocol):
    key: str
    source: str


def audio_key(path: str | Path) -> str:
    """Key of an audio file's current content: resolved path + mtime (ns) + size."""
    p = Path(path).resolve()
    st = os.stat(p)
    return stable_hash({"path": str(p), "mtime_ns": st.st_mtime_ns, "size": st.st_size}, 24)


def load_audio(path: str | Path) -> torch.Tensor:
    """A 16 kHz mono WAV -> (S,) float32."""
    wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE or wav.shape[1] != 1:
        raise ValueError(f"{path}: expected 16 kHz mono audio, got {sr} Hz, {wav.shape[1]} channel(s)")
    return torch.from_numpy(np.ascontiguousarray(wav[:, 0]))


def _save(path: Path, t: torch.Tensor) -> None:
    buf = io.BytesIO()
    torch.save(t.clone(), buf)
    atomic_write_bytes(path, buf.getvalue())


def _file(root: Path, key: str) -> Path:
    return root / key[:2] / f"{key}.pt"


@torch.no_grad()
def encode_cached(
    encoder: SpeechEncoder,
    utts: list[HasAudio],
    cache_dir: str | Path,
    batch_size: int = 8,
    store_dtype: torch.dtype = torch.float32,
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """{utt.key: encoder frames (T, D)} for utterances with audio; computes (in batches of similar
    length, on the encoder's device) only what is not cached yet."""
    root = Path(cache_dir) / encoder.identity()
    utts = [u for u in utts if u.source]
    files = {u.key: _file(root, audio_key(u.source)) for u in utts}
    todo = sorted((u for u in utts if not files[u.key].exists()), key=lambda u: os.path.getsize(u.source))
    device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    bar = progress_bar(
        total=len(todo), desc=f"encode {encoder.name}", unit="utt", disable=not progress or not todo
    )
    for i in range(0, len(todo), batch_size):
        chunk = todo[i : i + batch_size]
        audio = [load_audio(u.source) for u in chunk]
        lengths = torch.tensor([len(a) for a in audio])
        wavs = torch.zeros(len(audio), int(lengths.max()))  # (B, S)
        for j, a in enumerate(audio):
            wavs[j, : len(a)] = a
        feats, n = encoder(wavs.to(device), lengths.to(device))  # (B, T, D), (B,)
        for u, f, length in zip(chunk, feats, n.tolist(), strict=True):
            _save(files[u.key], f[:length].to("cpu", store_dtype))
        bar.update(len(chunk))
    bar.close()
    encoder.train(was_training)
    return {k: torch.load(f, weights_only=True) for k, f in files.items()}


@torch.no_grad()
def project_cached(
    projector: ConcatProjector,
    feats: dict[str, torch.Tensor],
    cache_dir: str | Path,
    batch_size: int = 64,
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """{key: projector outputs (T // k, H)} of a frozen projector, cached by the frames' content."""
    root = Path(cache_dir) / f"projector-{weights_hash(projector)}"

    def content_key(t: torch.Tensor) -> str:
        t = t.detach().cpu().contiguous()
        blob = f"{tuple(t.shape)}{t.dtype}".encode() + t.reshape(-1).view(torch.uint8).numpy().tobytes()
        return hashlib.sha256(blob).hexdigest()[:24]

    files = {k: _file(root, content_key(f)) for k, f in feats.items()}
    todo = [k for k in feats if not files[k].exists()]
    device = next(projector.parameters()).device
    bar = progress_bar(total=len(todo), desc="project", unit="utt", disable=not progress or not todo)
    for i in range(0, len(todo), batch_size):
        chunk = todo[i : i + batch_size]
        x, lengths = pad_frames([feats[k] for k in chunk])
        p = next(projector.parameters())
        y, n = projector(x.to(device, p.dtype), lengths.to(device))  # (B, T', H), (B,)
        for k, row, length in zip(chunk, y, n.tolist(), strict=True):
            _save(files[k], row[:length].cpu())
        bar.update(len(chunk))
    bar.close()
    return {k: torch.load(f, weights_only=True) for k, f in files.items()}
