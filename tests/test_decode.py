"""Decoding (mbasr/model/decode.py): batched transcription equals one-by-one, input order restored, batches of
similar lengths, the hallucination guard applied before scoring, slot inputs for every item kind."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import SMALLER, sentences

from mbasr.config import load_preset
from mbasr.data.manifest import Utterance
from mbasr.method.corrupt import projector_noise_text
from mbasr.method.mixed_batch import Item
from mbasr.model import LLMItem, build_model
from mbasr.model.decode import SlotInputs, evaluate, transcribe
from mbasr.model.tokenizer import train_tokenizer

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def cfg():
    return load_preset("tiny", SMALLER)


@pytest.fixture(scope="module")
def model(cfg, tmp_path_factory):
    tok = tmp_path_factory.mktemp("tok")
    train_tokenizer(sentences(300), 400, tok)
    return build_model(cfg, tokenizer=tok)


@pytest.fixture(scope="module")
def utts_feats(model):
    """11 utterances of random frames; the model is trained on them for 30 steps (1 s), so that
    different inputs decode to different words (a random model only emits EOS)."""
    g = torch.Generator().manual_seed(0)
    utts, feats = [], {}
    for i, s in enumerate(sentences(11, seed=1)):
        u = Utterance(f"u{i:02d}", f"/nowhere/u{i}.wav", s)
        utts.append(u)
        feats[u.key] = torch.randn(6 + (7 * i) % 40, model.encoder.dim, generator=g)
    # 3e-3: with LoRA on every linear layer (tiny's), 1e-2 left every input decoding to EOS
    opt = torch.optim.AdamW(model.set_trainable(["projector", "lora"]), lr=3e-3)
    model.train()
    for _ in range(30):
        loss = model([LLMItem(target=u.target, feats=feats[u.key]) for u in utts])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.set_trainable(())
    model.eval()
    return utts, feats


def test_batched_equals_one_by_one_in_input_order(model, utts_feats):
    utts, feats = utts_feats
    batched = transcribe(model, utts, feats, batch_size=4, max_new_tokens=8)
    alone = [model.generate([LLMItem(target=u.target, feats=feats[u.key])], 8)[0] for u in utts]
    assert batched == alone
    assert len(set(alone)) > 3, "the check needs inputs that decode differently"
    mixed = [utts[0], LLMItem(target="x", text="check my card"), utts[1]]
    assert transcribe(model, mixed, feats, batch_size=2, max_new_tokens=8) == [
        alone[0],
        model.generate([mixed[1]], 8)[0],
        alone[1],
    ]


def test_batches_are_length_sorted_and_order_restored(model, utts_feats, monkeypatch):
    utts, feats = utts_feats
    seen = []

    def fake_generate(items, max_new_tokens, num_beams=1):
        seen.append([it.feats.shape[0] for it in items])
        return [it.target.upper() for it in items]

    monkeypatch.setattr(model, "generate", fake_generate)
    out = transcribe(model, utts, feats, batch_size=3, max_new_tokens=5)
    assert out == [u.target.upper() for u in utts]
    flat = [n for b in seen for n in b]
    assert flat == sorted(flat, reverse=True) and [len(b) for b in seen] == [3, 3, 3, 2]


def test_bad_arguments_name_the_parameter(model, utts_feats):
    utts, feats = utts_feats
    with pytest.raises(ValueError, match="batch_size=0"):
        transcribe(model, utts, feats, batch_size=0, max_new_tokens=5)
    with pytest.raises(ValueError, match="slot_inputs=None"):
        transcribe(model, utts, None, batch_size=2, max_new_tokens=5)
    with pytest.raises(KeyError, match="'missing'"):
        transcribe(model, [Utterance("missing", "/x.wav", "a")], feats, batch_size=2, max_new_tokens=5)


def test_hallucination_guard_applied_before_scoring(model, cfg, utts_feats, monkeypatch, tmp_path):
    utts, feats = utts_feats
    loop = " ".join(["money"] * 30)

    def fake_generate(items, max_new_tokens, num_beams=1):
        return [loop if it.target == utts[2].target else it.target for it in items]

    monkeypatch.setattr(model, "generate", fake_generate)
    res = evaluate(model, utts, feats, cfg.decoding, out_path=tmp_path / "eval.jsonl", n_boot=50)
    assert res.n_guarded == 1 and res.ins == 0 and res.errors > 0
    rows = [json.loads(line) for line in (tmp_path / "eval.jsonl").read_text().splitlines()]
    assert [r["key"] for r in rows] == [u.key for u in utts]
    assert rows[2]["hyp"] == "UNK" and rows[2]["guarded"] and rows[2]["hyp_raw"] == loop
    summary = json.loads((tmp_path / "eval.json").read_text())
    assert summary["wer"] == res.wer and summary["n_utts"] == len(utts) and "decode_seconds" in summary


def test_slot_inputs_for_every_kind(model, utts_feats):
    utts, feats = utts_feats
    slots = SlotInputs(model, feats)
    u = utts[3]
    audio = slots.llm_item(Item("source_audio", u, None), projector_trained=True)
    assert audio.feats is feats[u.key]
    frozen = slots.llm_item(Item("target_audio", u, None), projector_trained=False)
    with torch.no_grad():
        y, n = model.project(feats[u.key][None], torch.tensor([feats[u.key].shape[0]]))
    assert torch.allclose(frozen.proj, y[0, : int(n[0])])
    noise = slots.llm_item(Item("projector_noise", u, "ignored placeholder"), projector_trained=False)
    emb = model.llm.get_input_embeddings().weight
    assert noise.text == projector_noise_text(frozen.proj, emb, model.tokenizer, "nearest")
    text = slots.llm_item(Item("target_text", u, "corrupted"), projector_trained=False)
    assert text.text == "corrupted" and text.target == u.target
    with pytest.raises(ValueError, match="projector_noise items while the projector is trained"):
        slots.llm_item(Item("projector_noise", u, "x"), projector_trained=True)
    model.set_trainable(["projector"])
    try:
        with pytest.raises(RuntimeError, match="the projector is being trained"):
            SlotInputs(model, feats).proj(u.key)
    finally:
        model.set_trainable(())
    with pytest.raises(ValueError, match="projector_mode='closest'"):
        SlotInputs(model, feats, projector_mode="closest")


def test_slot_inputs_project_each_key_once_and_alike_in_any_order(model, utts_feats, monkeypatch):
    utts, feats = utts_feats
    keys = [u.key for u in utts]
    forward, calls = model.project, []

    def counting(f, n):
        calls.append(f.shape[0])
        return forward(f, n)

    monkeypatch.setattr(model, "project", counting)
    slots = SlotInputs(model, feats)
    first = [slots.proj(k) for k in keys[:2]] + [slots.proj(keys[0])]
    assert len(calls) == 2 and all(b == 1 for b in calls)  # only the keys asked, each once, alone
    other = SlotInputs(model, feats)
    later = {k: other.proj(k) for k in reversed(keys)}
    assert torch.equal(first[0], later[keys[0]]) and torch.equal(first[1], later[keys[1]])
