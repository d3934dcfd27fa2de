"""Stage 0 of the tiny preset (mbasr/training/stage0.py) at micro scale: the LM, then the LM reading Whisper's
general speech through a projector (the preset's stage 0), and, for a from-scratch encoder, CTC
pretraining merged with an LM; each a few steps, loaded back by load_stage0; SpecAugment and the
skipped-step guard."""

from __future__ import annotations

import pytest
import torch
from conftest import needs_tts
from helpers import SMALLER as MICRO

from mbasr.config import load_preset
from mbasr.model.encoders import TinyEncoder, spec_augment
from mbasr.model.hub import REPO_ROOT
from mbasr.training.optim import make_optimizer, make_scheduler, optimizer_step
from mbasr.training.stage0 import train_part
from mbasr.training.stage0_checkpoint import load_stage0, merge_parts, stage0_record

FEW_STEPS = {
    **MICRO,
    "stage0.channel_augment": True,
    "stage0.encoder.steps": 2,
    "stage0.encoder.batch_size": 4,
    "stage0.encoder.eval_every": 2,
    "stage0.lm.steps": 2,
    "stage0.lm.batch_size": 4,
    "stage0.lm.eval_every": 2,
}


def test_spec_augment_masks_bands_and_spans_within_real_frames():
    x = torch.ones(2, 200, 80)
    n = torch.tensor([200, 100])
    out = spec_augment(x, n, torch.Generator().manual_seed(0), max_freq=15, max_time=20)
    assert out.shape == x.shape
    masked = (out == 0).float()
    assert 0 < masked[0].mean() < 0.6  # something, not everything
    # a masked frequency band is masked in every frame
    band = masked[0].all(0)
    assert band.any() and band.sum() <= 2 * 15
    # the same generator seed gives the same masks
    again = spec_augment(x, n, torch.Generator().manual_seed(0), max_freq=15, max_time=20)
    assert torch.equal(out, again)


def test_encoder_augments_only_when_given_a_generator():
    cfg = load_preset("tiny", MICRO)
    enc = TinyEncoder(cfg.encoder.scratch).eval()
    wav, n = torch.randn(1, 16000) * 0.1, torch.tensor([16000])
    a, _ = enc(wav, n)
    assert torch.equal(a, enc(wav, n)[0])
    b, _ = enc(wav, n, torch.Generator().manual_seed(1))
    assert not torch.equal(a, b)


def test_optimizer_step_skips_a_non_finite_gradient():
    cfg = load_preset("tiny")
    w = torch.nn.Parameter(torch.ones(3))
    opt = make_optimizer([w], cfg.stage0.lm)
    sched = make_scheduler(opt, cfg.stage0.lm)
    assert not optimizer_step((w * float("nan")).sum(), opt, sched, [w], grad_clip=1.0)
    assert torch.equal(w.detach(), torch.ones(3))
    assert optimizer_step((w * 2).sum(), opt, sched, [w], grad_clip=1.0)
    assert not torch.equal(w.detach(), torch.ones(3))


@needs_tts
@pytest.mark.slow
def test_stage0_parts_merge_and_load(micro, micro_work_dir, tmp_path):
    """Two steps per part on the session's micro corpus: the plumbing, not the quality."""
    kw = dict(work_dir=micro_work_dir, scale="micro", seed=0, overrides=FEW_STEPS, device="cpu")
    enc = train_part("encoder", out=tmp_path / "enc.pt", **kw)
    lm = train_part("lm", out=tmp_path / "lm.pt", **kw)
    out = merge_parts(enc, lm, tmp_path / "stage0.pt")
    rec = stage0_record(out)
    assert rec["encoder"]["steps_done"] == 2 and rec["encoder"]["skipped_steps"] == 0
    assert 0 <= rec["encoder"]["dev_cer"] and rec["encoder"]["dev_voices"]
    assert rec["lm"]["steps_done"] == 2
    assert set(rec["lm"]["perplexity"]) == {"source", "banking", "agriculture", "musical_instruments"}
    assert 0 <= rec["lm"]["copy_clean"]["wer"]
    assert len(rec["commands"]) == 2 and rec["code_version"]
    model = load_stage0(load_preset("tiny", FEW_STEPS), out)
    assert model.encoder.state_dict()["norm.weight"].dtype == torch.float32
    with pytest.raises(ValueError, match="different `llm` section"):
        load_stage0(load_preset("tiny", {**FEW_STEPS, "llm.scratch.n_layers": 3}), out)
    # the LM loads under any LoRA targets, from plain names or (older checkpoints) the q/v-wrapped names
    every = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    wide = load_stage0(load_preset("tiny", {**FEW_STEPS, "lora.target_modules": every}), out)
    plain = {k.replace(".base_layer.", "."): v for k, v in wide.llm.get_base_model().state_dict().items()}
    for k, v in model.llm.get_base_model().state_dict().items():
        if "lora_" not in k:
            assert torch.equal(plain[k.replace(".base_layer.", ".")], v), k
    old = torch.load(out, weights_only=True)
    assert not any(".base_layer." in k for k in old["parts"]["llm"])
    wrapped = {k.replace("q_proj.", "q_proj.base_layer.").replace("v_proj.", "v_proj.base_layer."): v
               for k, v in old["parts"]["llm"].items()}  # fmt: skip
    torch.save({**old, "parts": {**old["parts"], "llm": wrapped}}, tmp_path / "older.pt")
    older = load_stage0(
        load_preset("tiny", {**FEW_STEPS, "lora.target_modules": every}), tmp_path / "older.pt"
    )
    assert torch.equal(older.llm.get_base_model().state_dict()["model.layers.0.self_attn.q_proj.base_layer.weight"],
                       plain["model.layers.0.self_attn.q_proj.weight"])  # fmt: skip

    # a new encoder continued from the merged checkpoint's, merged with that checkpoint's LM
    enc2 = train_part("encoder", out=tmp_path / "enc2.pt", init=out, **kw)
    out2 = merge_parts(enc2, out, tmp_path / "stage0-2.pt")
    rec2 = stage0_record(out2)
    assert rec2["encoder"]["init"]["path"] == str(out)
    assert rec2["encoder"]["init"]["encoder"]["steps_done"] == 2
    assert rec2["config"]["stage0"]["channel_augment"] is True
    assert rec2["lm"] == rec["lm"] and "--init" in rec2["commands"][0]
    merged = torch.load(out2, weights_only=True)["parts"]
    assert torch.equal(
        merged["llm"]["model.norm.weight"],
        torch.load(out, weights_only=True)["parts"]["llm"]["model.norm.weight"],
    )
    with pytest.raises(ValueError, match="starts from scratch"):
        train_part("lm", out=tmp_path / "lm2.pt", init=out, **kw)


WHISPER = REPO_ROOT / "weights" / "whisper-tiny.en"
# the tiny preset (Whisper tiny.en) with a smaller LM and two steps per part
WHISPER_FEW = {
    "llm.hidden": 64,
    "llm.scratch.vocab_size": 400,
    "llm.scratch.n_layers": 2,
    "llm.scratch.intermediate": 128,
    "stage0.tokenizer_vocab_size": 400,
    "projector.hidden": 64,
    **{
        f"stage0.{part}.{k}": v
        for part in ("lm", "speech")
        for k, v in (("steps", 2), ("batch_size", 4), ("eval_every", 2))
    },
}


@needs_tts
@pytest.mark.slow
@pytest.mark.skipif(not WHISPER.is_dir(), reason="weights/whisper-tiny.en missing (scripts/setup_env.sh)")
def test_stage0_lm_then_speech_with_whisper(micro, micro_work_dir, tmp_path):
    """The preset's stage 0: the LM, then the LM and a projector on general speech; load_stage0 gives
    back the LM and the projector, the encoder being Whisper's own."""
    kw = dict(work_dir=micro_work_dir, scale="micro", seed=0, overrides=WHISPER_FEW, device="cpu")
    lm = train_part("lm", out=tmp_path / "lm.pt", **kw)
    with pytest.raises(ValueError, match="continues an LM"):
        train_part("speech", out=tmp_path / "x.pt", **kw)
    out = train_part("speech", out=tmp_path / "stage0.pt", init=lm, **kw)
    rec = stage0_record(out)
    assert rec["speech"]["steps_done"] == 2 and rec["speech"]["skipped_steps"] == 0
    assert 0 <= rec["speech"]["speech_general_dev"]["wer"] and rec["speech"]["speech_hours"] > 0
    assert set(rec["speech"]["perplexity"]) == {"source", "banking", "agriculture", "musical_instruments"}
    assert rec["lm"]["steps_done"] == 2 and len(rec["commands"]) == 2
    ckpt = torch.load(out, weights_only=True)
    assert set(ckpt["parts"]) == {"llm", "projector"}
    cfg = load_preset("tiny", WHISPER_FEW)
    model = load_stage0(cfg, out)
    assert torch.equal(model.projector.linear1.weight, ckpt["parts"]["projector"]["linear1.weight"].float())
    with pytest.raises(ValueError, match="different `projector` section"):
        load_stage0(load_preset("tiny", {**WHISPER_FEW, "projector.hidden": 32}), out)


def test_a_larger_stage0_corpus_leaves_out_every_domains_held_out_sentences(micro, monkeypatch):
    """Stage 0 on the `large` corpus must not read the main corpus's dev/test sentences of any domain: its
    source holds banking calls, and a third of the default banking test set was among them."""
    from mbasr.data.corpus import load_split
    from mbasr.training import stage0_lm

    asked = []  # the seeds whose default corpora are read: each draws its own held-out sentences
    monkeypatch.setattr(stage0_lm, "prepare_corpus", lambda *a, **k: asked.append(k["seed"]) or micro)
    held = stage0_lm.held_out_elsewhere("unused", 0, "large")
    assert asked == [0, 1, 2]  # this seed's and the published grid's
    for domain in ("source", "banking", "agriculture", "musical_instruments"):
        for split in ("dev", "test"):
            assert {u.target for u in load_split(micro, domain, split)} <= held, (domain, split)
    assert stage0_lm.held_out_elsewhere("unused", 0, "default") == set()


def test_the_speech_parts_text_leaves_out_held_out_sentences_of_its_source_too(micro, monkeypatch):
    """The speech part repeats the source's training text: what `held_out_elsewhere` names must stay out of
    the repeated copies too (they brought 196 of the default source's 400 test sentences back)."""
    from mbasr.data.corpus import load_split
    from mbasr.training import stage0_lm

    source_train = [u.target for u in load_split(micro, "source", "train")]
    held = set(source_train[:5])  # as a larger corpus's source training text holds main-corpus test sentences
    monkeypatch.setattr(stage0_lm, "held_out_elsewhere", lambda *a: held)
    text = stage0_lm.speech_part_text(micro, "unused", 0, "large")
    assert not held & set(text)
    assert set(source_train[5:]) <= set(text) and len(text) > len(set(text))  # the rest, repeated
