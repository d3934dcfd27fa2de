"""The feature cache (mbasr/model/cache.py): content-keyed safetensors shards, reuse from another folder,
and a damaged shard named, deleted and recomputed. A tiny from-scratch encoder (no downloads)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import SMALLER

from mbasr.config import load_preset
from mbasr.data.manifest import Utterance
from mbasr.model.cache import encode_cached, project_cached
from mbasr.model.encoders import build_encoder
from mbasr.model.projector import ConcatProjector

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def cfg():
    return load_preset("tiny", SMALLER)


@pytest.fixture()
def encoder(cfg):
    torch.manual_seed(0)
    return build_encoder(cfg.encoder)


def corpus(folder: Path) -> list[Utterance]:
    """Five utterances in two groups (source train, banking test) and one text-only utterance."""
    folder.mkdir(parents=True, exist_ok=True)
    utts = []
    for i in range(5):
        rng = np.random.default_rng(i)
        sf.write(folder / f"u{i}.wav", (rng.standard_normal(8000 + 2400 * i) * 0.1).astype(np.float32), 16000)
        domain, split = ("source", "train") if i < 3 else ("banking", "test")
        utts.append(
            Utterance(key=f"u{i}", source=str(folder / f"u{i}.wav"), target="x", domain=domain, split=split)
        )
    return utts + [Utterance(key="t0", source="", target="text only")]


def counting(encoder) -> list[int]:
    calls: list[int] = []
    forward = encoder.forward
    encoder.forward = lambda w, n: (calls.append(len(n)), forward(w, n))[1]
    return calls


def test_shards_hit_and_reuse_from_another_folder(encoder, tmp_path):
    utts = corpus(tmp_path / "a")
    calls = counting(encoder)
    first = encode_cached(encoder, utts, tmp_path / "cache", batch_size=2, progress=False)
    assert sum(calls) == 5 and set(first) == {f"u{i}" for i in range(5)}
    shards = sorted(p.name for p in (tmp_path / "cache" / encoder.identity()).iterdir())
    assert [s.rsplit("-", 1)[0] for s in shards] == ["banking-test", "source-train"]
    second = encode_cached(encoder, utts, tmp_path / "cache", batch_size=2, progress=False)
    assert sum(calls) == 5 and all(torch.equal(first[k], second[k]) for k in first)
    # the same audio in another folder, under other keys: found by content, nothing computed
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    moved = [Utterance(key=f"m{i}", source=str(tmp_path / "b" / f"u{i}.wav"), target="x") for i in range(5)]
    third = encode_cached(encoder, moved, tmp_path / "cache", batch_size=2, progress=False)
    assert sum(calls) == 5 and all(torch.equal(third[f"m{i}"], first[f"u{i}"]) for i in range(5))
    # changed audio: computed again, into a new shard
    sf.write(tmp_path / "a" / "u1.wav", np.zeros(9000, dtype=np.float32), 16000)
    fourth = encode_cached(encoder, utts, tmp_path / "cache", batch_size=2, progress=False)
    assert sum(calls) == 6 and fourth["u1"].shape[0] != first["u1"].shape[0]
    assert torch.equal(fourth["u0"], first["u0"])


def test_truncated_shard_is_named_deleted_and_recomputed(encoder, tmp_path):
    utts = corpus(tmp_path / "a")
    first = {
        k: v.clone() for k, v in encode_cached(encoder, utts, tmp_path / "cache", progress=False).items()
    }
    (shard,) = (tmp_path / "cache" / encoder.identity()).glob("source-train-*.safetensors")
    shard.write_bytes(shard.read_bytes()[:-100])
    calls = counting(encoder)
    with pytest.warns(UserWarning, match=rf"{shard}: unreadable cache shard .*deleted"):
        again = encode_cached(encoder, utts, tmp_path / "cache", progress=False)
    assert sum(calls) == 3  # the source shard's three utterances, not the banking ones
    assert all(torch.equal(again[k], first[k]) for k in first)
    shard.write_bytes(b"\xff" * 64)  # a header that is not one
    with pytest.warns(UserWarning, match=rf"{shard}: unreadable cache shard"):
        again = encode_cached(encoder, utts, tmp_path / "cache", progress=False)
    assert sum(calls) == 6 and all(torch.equal(again[k], first[k]) for k in first)


def test_projector_outputs_are_cached_by_content(encoder, cfg, tmp_path):
    utts = corpus(tmp_path / "a")
    feats = encode_cached(encoder, utts, tmp_path / "cache", progress=False)
    projector = ConcatProjector(cfg.projector.k, cfg.encoder.dim, cfg.projector.hidden, cfg.llm.hidden).eval()
    calls = []
    forward = projector.forward
    projector.forward = lambda x, n: (calls.append(1), forward(x, n))[1]
    p1 = project_cached(projector, feats, tmp_path / "cache", progress=False)
    p2 = project_cached(projector, feats, tmp_path / "cache", progress=False)
    assert len(calls) == 1 and all(torch.equal(p1[k], p2[k]) for k in p1)
    assert p1["u0"].shape[0] == feats["u0"].shape[0] // projector.k
    with torch.no_grad():
        alone, _ = forward(feats["u2"][None], torch.tensor([feats["u2"].shape[0]]))
    assert torch.allclose(p1["u2"], alone[0], atol=1e-6)
