"""Frozen-encoder (and frozen-projector) outputs, computed once per utterance and kept on disk
(docs/paper.md "System": the encoder is frozen throughout, the projector in stage 2), so a training step pays
only for the LLM.

Layout of `cache_dir/`:
    audio-keys.json          {resolved path: [mtime_ns, size, content key]}: each WAV is hashed once
    <encoder identity>/      <domain>-<split>-<hash>.safetensors shards of encoder frames (T, D)
    projector-<hash>/        proj-<hash>.safetensors shards of projector outputs (T // k, H)

A tensor's name in its shard is the hash of its input's content (the WAV's bytes; the frames for the
projector), not a path: the same corpus copied or moved elsewhere reuses the cache. The identity names the
encoder (or projector) and hashes its weights. Each call that computes something writes new shards (one per
domain and split, at most SHARD_BYTES each) atomically; loading maps every shard of the identity read-only
(copy-on-write), so a run pages in only the frames it touches. A shard that cannot be read (truncated,
corrupt header) is named in a warning, deleted, and its frames are recomputed.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from mbasr.io import atomic_write_json, stable_hash
from mbasr.model.encoders import SAMPLE_RATE, SpeechEncoder
from mbasr.model.hub import weights_hash
from mbasr.model.projector import ConcatProjector
from mbasr.model.speechllm import pad_frames
from mbasr.progress import bar as progress_bar

SHARD_BYTES = 512 * 2**20  # a kill loses at most this much computed work per group
KEYS_FILE = "audio-keys.json"
DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


class HasAudio(Protocol):
    key: str
    source: str


def audio_key(path: str | Path) -> str:
    """Key of an audio file's content: a hash of its bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:24]


def audio_keys(paths: list[str], cache_dir: str | Path) -> dict[str, str]:
    """{path: audio_key(path)}, hashing only files that are new or changed (path, mtime, size) since the
    last call with this `cache_dir`, so a run does not read every WAV to find its features."""
    memo_path = Path(cache_dir) / KEYS_FILE
    try:
        memo = json.loads(memo_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # absent or unreadable: it is only a memo, rebuilt below
        memo = {}
    out, changed = {}, False
    for path in dict.fromkeys(paths):
        p = Path(path).resolve()
        st = os.stat(p)
        seen = memo.get(str(p))
        if seen is None or seen[:2] != [st.st_mtime_ns, st.st_size]:
            memo[str(p)] = seen = [st.st_mtime_ns, st.st_size, audio_key(p)]
            changed = True
        out[path] = seen[2]
    if changed:
        atomic_write_json(memo_path, memo)
    return out


def load_audio(path: str | Path) -> torch.Tensor:
    """A 16 kHz mono WAV -> (S,) float32."""
    wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE or wav.shape[1] != 1:
        raise ValueError(f"{path}: expected 16 kHz mono audio, got {sr} Hz, {wav.shape[1]} channel(s)")
    return torch.from_numpy(np.ascontiguousarray(wav[:, 0]))


def _map_shard(file: Path) -> dict[str, torch.Tensor]:
    """The tensors of a valid shard, backed by a private memory map of the file (nothing read yet)."""
    with open(file, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        start = 8 + n
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)  # writable view, the file untouched
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, (b, e) = DTYPES[info["dtype"]], info["data_offsets"]
        if e == b:
            out[name] = torch.empty(info["shape"], dtype=dtype)
            continue
        count = (e - b) // dtype.itemsize
        out[name] = torch.frombuffer(mm, dtype=dtype, count=count, offset=start + b).view(info["shape"])
    return out


def load_shards(root: Path) -> dict[str, torch.Tensor]:
    """{name: tensor} over every shard under `root`; a shard that does not read is named, deleted and
    left out (its tensors count as not computed)."""
    out: dict[str, torch.Tensor] = {}
    for file in sorted(root.glob("*.safetensors")):
        try:
            with safe_open(str(file), framework="pt") as f:  # checks the header against the file's length
                bad = sorted({f.get_slice(k).get_dtype() for k in f.keys()} - set(DTYPES))
            if bad:
                raise SafetensorError(f"unsupported dtypes {bad}")
            tensors = _map_shard(file)
        except (SafetensorError, ValueError) as e:  # the content is bad, not the disk or the process
            warnings.warn(
                f"{file}: unreadable cache shard ({e}); deleted, its tensors are recomputed", stacklevel=3
            )
            file.unlink(missing_ok=True)
            continue
        for name, t in tensors.items():
            out.setdefault(name, t)
    return out


def _save_shard(root: Path, group: str, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
    """One shard, written beside its final name and renamed (a kill leaves no partial shard)."""
    name = f"{group}-{stable_hash(sorted(tensors), 12)}.safetensors"
    tmp = root / f".{name}.{os.getpid()}.tmp"
    root.mkdir(parents=True, exist_ok=True)
    try:
        save_file({k: t.contiguous() for k, t in tensors.items()}, str(tmp), metadata=meta)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, root / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _group(utt: HasAudio) -> str:
    """The shard group of an utterance: its domain and split when it has them."""
    parts = [getattr(utt, "domain", ""), getattr(utt, "split", "")]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(p for p in parts if p)) or "utts"


def _compute(
    root: Path,
    todo: dict[str, list[str]],
    run: Callable[[list[str]], list[torch.Tensor]],
    batch_size: int,
    meta: dict[str, str],
    bar,
) -> None:
    """Run `run` over each group's keys in batches and write the outputs as that group's shards."""
    for group, keys in todo.items():
        buf: dict[str, torch.Tensor] = {}
        size = 0
        for i in range(0, len(keys), batch_size):
            chunk = keys[i : i + batch_size]
            for k, t in zip(chunk, run(chunk), strict=True):
                buf[k] = t
                size += t.numel() * t.element_size()
            bar.update(len(chunk))
            if size >= SHARD_BYTES:
                _save_shard(root, group, buf, meta | {"group": group})
                buf, size = {}, 0
        if buf:
            _save_shard(root, group, buf, meta | {"group": group})


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
    length, on the encoder's device) only what is not cached yet. The tensors are memory-mapped from the
    cache (copy-on-write: changing one changes no file)."""
    root = Path(cache_dir) / encoder.identity()
    utts = [u for u in utts if u.source]
    content = audio_keys([u.source for u in utts], cache_dir)
    have = load_shards(root)
    source: dict[str, str] = {}  # content key -> one WAV with that content
    todo: dict[str, list[str]] = {}
    for u in utts:
        k = content[u.source]
        if k not in have and k not in source:
            source[k] = u.source
            todo.setdefault(_group(u), []).append(k)
    for keys in todo.values():
        keys.sort(key=lambda k: os.path.getsize(source[k]))  # batches of similar length
    device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()

    def run(keys: list[str]) -> list[torch.Tensor]:
        audio = [load_audio(source[k]) for k in keys]
        lengths = torch.tensor([len(a) for a in audio])
        wavs = torch.zeros(len(audio), int(lengths.max()))  # (B, S)
        for j, a in enumerate(audio):
            wavs[j, : len(a)] = a
        feats, n = encoder(wavs.to(device), lengths.to(device))  # (B, T, D), (B,)
        # copies: a view would keep its whole padded batch alive until the shard is written
        return [
            f[:length].to("cpu", store_dtype, copy=True) for f, length in zip(feats, n.tolist(), strict=True)
        ]

    bar = progress_bar(
        total=len(source), desc=f"encode {encoder.name}", unit="utt", disable=not progress or not source
    )
    _compute(root, todo, run, batch_size, {"encoder": encoder.identity()}, bar)
    bar.close()
    encoder.train(was_training)
    if todo:
        have = load_shards(root)
    return {u.key: have[content[u.source]] for u in utts}


def _content_key(t: torch.Tensor) -> str:
    t = t.detach().cpu().contiguous()
    blob = f"{tuple(t.shape)}{t.dtype}".encode() + t.reshape(-1).view(torch.uint8).numpy().tobytes()
    return hashlib.sha256(blob).hexdigest()[:24]


@torch.no_grad()
def project_cached(
    projector: ConcatProjector,
    feats: dict[str, torch.Tensor],
    cache_dir: str | Path,
    batch_size: int = 64,
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """{key: projector outputs (T // k, H)} of a frozen projector, cached by the frames' content."""
    identity = f"projector-{weights_hash(projector)}"
    root = Path(cache_dir) / identity
    content = {k: _content_key(f) for k, f in feats.items()}
    have = load_shards(root)
    frames = {content[k]: f for k, f in feats.items() if content[k] not in have}
    device = next(projector.parameters()).device
    p = next(projector.parameters())

    def run(keys: list[str]) -> list[torch.Tensor]:
        x, lengths = pad_frames([frames[k] for k in keys])
        y, n = projector(x.to(device, p.dtype), lengths.to(device))  # (B, T', H), (B,)
        return [row[:length].to("cpu", copy=True) for row, length in zip(y, n.tolist(), strict=True)]

    bar = progress_bar(total=len(frames), desc="project", unit="utt", disable=not progress or not frames)
    _compute(root, {"proj": list(frames)} if frames else {}, run, batch_size, {"projector": identity}, bar)
    bar.close()
    if frames:
        have = load_shards(root)
    return {k: have[content[k]] for k in feats}
