"""Model code of docs/paper.md "System": presets, encoder registry, projector, LoRA, training step, decoding,
feature cache, checkpoints. Tiny random models only (no downloads)."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import SMALLER, tiny_llama_config
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoTokenizer, WavLMConfig, WhisperConfig

from mbasr.config import ConfigError, load_preset
from mbasr.data.manifest import Utterance
from mbasr.model import LLMItem, build_model, load_model, load_trainable, read_trainable, save_trainable
from mbasr.model.cache import encode_cached, project_cached
from mbasr.model.encoders import build_encoder
from mbasr.model.llm import load_llm
from mbasr.model.projector import ConcatProjector
from mbasr.model.tokenizer import train_tokenizer

torch.set_num_threads(1)

WORDS = (
    "the a bank account balance transfer money insurance policy claim doctor patient farm crop tractor "
    "guitar piano violin cartoon frame lecture please check my card number today tomorrow is was will be"
).split()


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 10))) for _ in range(n)]


def tiny_whisper_config(max_source_positions: int) -> WhisperConfig:
    """A scaled-down Whisper: d_model 32, one layer; a window of max_source_positions x 20 ms."""
    return WhisperConfig(
        num_mel_bins=80,
        d_model=32,
        encoder_layers=1,
        encoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_layers=1,
        decoder_attention_heads=2,
        decoder_ffn_dim=64,
        max_source_positions=max_source_positions,
        max_target_positions=32,
        vocab_size=100,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    train_tokenizer(sentences(300), 400, out)
    return out


@pytest.fixture(scope="module")
def cfg():
    return load_preset("tiny", SMALLER)


@pytest.fixture()
def model(cfg, tok_dir):
    return build_model(cfg, tokenizer=tok_dir)


def items_for(model, n: int = 6, seed: int = 0) -> list[LLMItem]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i, s in enumerate(sentences(n, seed)):
        if i % 3 == 2:
            out.append(LLMItem(target=s, text=s.upper()))
        else:
            out.append(LLMItem(target=s, feats=torch.randn(9 + 7 * i, model.encoder.dim, generator=g)))
    return out


# --- presets ---------------------------------------------------------------------------------------------


def test_presets_load():
    for name in ("tiny", "small", "paper"):
        c = load_preset(name)
        every = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        assert c.name == name and c.lora.target_modules == (every if name == "tiny" else ["q_proj", "v_proj"])
        assert c.to_dict()["encoder"]["name"] == c.encoder.name
    paper = load_preset("paper")
    assert (paper.projector.k * paper.encoder.dim, paper.projector.hidden, paper.llm.hidden) == (
        5120,
        2048,
        3072,
    )
    assert paper.deviations == [] and load_preset("tiny").deviations


def test_preset_rejects_unknown_missing_and_mistyped_keys(tmp_path):
    text = (Path(__file__).parents[1] / "mbasr/presets/tiny.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("  k: 5", "  k: 5\n  stride: 2"))
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+: projector\.stride: unknown key"):
        load_preset(bad)
    bad.write_text(text.replace("  hidden: 512", ""))
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+: projector: missing key\(s\) hidden"):
        load_preset(bad)
    bad.write_text(text.replace("lr: 5.0e-4                    # paper", "lr: 5e-4  # paper"))
    with pytest.raises(ConfigError, match=r"stage1\.lr: must be a number"):
        load_preset(bad)
    with pytest.raises(ConfigError, match="override 'stage9.lr'"):
        load_preset("tiny", {"stage9.lr": 0.1})
    with pytest.raises(ConfigError, match="no preset named 'huge'"):
        load_preset("huge")
    assert load_preset("tiny", {"stage2": {"lr": 0.5}}).stage2.lr == 0.5


# --- encoders and projector ------------------------------------------------------------------------------


def test_encoder_registry_cuts_to_real_length(cfg):
    torch.manual_seed(0)
    wavs = torch.randn(3, 16000) * 0.1
    lengths = torch.tensor([16000, 9000, 4321])
    whisper = tiny_whisper_config(50)  # a 1 s window (50 frames of 20 ms)
    wavlm = WavLMConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    )
    for name, hf, dim, expect in [
        ("whisper", whisper, 32, [50, 29, 14]),  # ceil(samples / 320)
        ("wavlm", wavlm, 32, [49, 27, 13]),  # the conv stack's valid frames
        ("tiny", None, cfg.encoder.dim, [26, 15, 7]),  # (samples // 160 + 1) / 2 / 2, rounded up
    ]:
        ecfg = dataclasses.replace(
            cfg.encoder, name=name, dim=dim, window="full" if name == "whisper" else None
        )
        enc = build_encoder(ecfg, hf)
        assert not any(p.requires_grad for p in enc.parameters()) and not enc.training
        with torch.no_grad():
            feats, n = enc(wavs, lengths)
            alone, n2 = enc(wavs[2:, :4321], lengths[2:])
        assert n.tolist() == expect and feats.shape == (3, max(expect), dim), name
        assert n2.tolist() == expect[2:]
        assert torch.allclose(feats[2, : expect[2]], alone[0], atol=1e-4), name  # padding does not leak in
    with pytest.raises(KeyError, match="unknown encoder 'hubert'"):
        build_encoder(dataclasses.replace(cfg.encoder, name="hubert"))


def test_projector_shapes():
    p = ConcatProjector(k=5, d_enc=8, d_hidden=16, d_llm=12)
    y, n = p(torch.randn(2, 23, 8), torch.tensor([23, 11]))
    assert y.shape == (2, 4, 12) and n.tolist() == [4, 2]  # remainders dropped


# --- LLM, LoRA, training, decoding -----------------------------------------------------------------------


def test_build_is_deterministic_for_a_seed(model, cfg, tok_dir):
    again = build_model(cfg, tokenizer=tok_dir).state_dict()
    assert all(torch.equal(v, again[k]) for k, v in model.state_dict().items())


def test_lora_trains_only_lora_params(model, cfg):
    params = model.set_trainable(["lora"])
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    H, r, layers = cfg.llm.hidden, cfg.lora.r, cfg.llm.scratch.n_layers
    kv, inter = H // cfg.llm.scratch.n_heads * cfg.llm.scratch.n_kv_heads, cfg.llm.scratch.intermediate
    # A (in x r) and B (r x out) on every linear layer: q, k, v, o, gate, up, down
    per_layer = (H + H) + 2 * (H + kv) + (H + H) + 2 * (H + inter) + (inter + H)
    assert sum(p.numel() for p in params) == layers * r * per_layer
    dropouts = [m for n, m in model.llm.named_modules() if n.endswith("lora_dropout")]
    model.train()
    assert not model.encoder.training and all(d.training for d in dropouts)
    model.set_trainable(["projector"])  # frozen parts stay in eval mode
    assert model.training and not model.encoder.training and not any(d.training for d in dropouts)


def test_one_step_lowers_the_loss(model):
    items = items_for(model)
    params = model.set_trainable(["projector", "lora"])
    model.eval()  # no dropout: the two losses are comparable
    opt = torch.optim.AdamW(params, lr=3e-3)
    loss0 = model(items)
    loss0.backward()
    opt.step()
    with torch.no_grad():
        loss1 = model(items)
    assert loss1 < loss0


def test_greedy_generation_is_bounded_and_batch_independent(model):
    items = items_for(model, n=4, seed=3)
    model.eval()
    hyps = model.generate(items, max_new_tokens=6)
    assert len(hyps) == 4 and all(isinstance(h, str) for h in hyps)
    assert all(len(model.tokenizer(h, add_special_tokens=False).input_ids) <= 6 for h in hyps)
    assert [model.generate([it], max_new_tokens=6)[0] for it in items] == hyps  # left padding is harmless
    assert len(model.generate(items[:2], max_new_tokens=4, num_beams=2)) == 2


def test_build_model_with_whisper_and_llama_configs(tok_dir):
    """The small/paper code path (pretrained-style HF modules) with random tiny configs."""
    tok = AutoTokenizer.from_pretrained(tok_dir)
    cfg = load_preset("small", {"encoder.dim": 32, "llm.hidden": 48, "projector.hidden": 64})
    whisper = tiny_whisper_config(100)
    llama = tiny_llama_config(len(tok))
    m = build_model(cfg, tokenizer=tok, encoder_hf_config=whisper, llm_hf_config=llama)
    feats, n = m.encode(torch.randn(2, 24000) * 0.1, torch.tensor([24000, 16000]))
    assert n.tolist() == [75, 50]
    proj, pn = m.project(feats, n)
    assert proj.shape == (2, 15, 48) and pn.tolist() == [15, 10]
    items = [LLMItem(target="check my card", feats=feats[0, :75]), LLMItem(target="the bank", text="th bnk")]
    m.set_trainable(cfg.stage1.train)
    m(items).backward()
    assert m.projector.linear1.weight.grad is not None
    assert all(p.grad is None for n_, p in m.llm.named_parameters())


# --- feature cache, checkpoints --------------------------------------------------------------------------


def write_wav(path: Path, seconds: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    sf.write(path, (rng.standard_normal(int(16000 * seconds)) * 0.1).astype(np.float32), 16000)


def test_feature_cache_hit_and_invalidation(model, tmp_path):
    utts = []
    for i in range(3):
        write_wav(tmp_path / f"u{i}.wav", 0.5 + 0.3 * i, seed=i)
        utts.append(Utterance(key=f"u{i}", source=str(tmp_path / f"u{i}.wav"), target="x"))
    utts.append(Utterance(key="t0", source="", target="text only"))
    calls = []
    forward = model.encoder.forward
    model.encoder.forward = lambda w, n: (calls.append(len(n)), forward(w, n))[1]
    first = encode_cached(model.encoder, utts, tmp_path / "cache", batch_size=2, progress=False)
    assert sum(calls) == 3 and set(first) == {"u0", "u1", "u2"}
    with torch.no_grad():
        alone, n = forward(*_one(utts[1]))
    assert torch.allclose(first["u1"], alone[0, : int(n)], atol=1e-5)  # cut to its real length
    second = encode_cached(model.encoder, utts, tmp_path / "cache", batch_size=2, progress=False)
    assert sum(calls) == 3 and all(torch.equal(first[k], second[k]) for k in first)
    write_wav(tmp_path / "u1.wav", 0.6, seed=9)  # the audio changes: recomputed
    third = encode_cached(model.encoder, utts, tmp_path / "cache", batch_size=2, progress=False)
    assert (
        sum(calls) == 4
        and not torch.equal(third["u1"], first["u1"])
        and torch.equal(third["u0"], first["u0"])
    )
    proj_calls = []
    pforward = model.projector.forward
    model.projector.forward = lambda x, n: (proj_calls.append(1), pforward(x, n))[1]
    p1 = project_cached(model.projector, third, tmp_path / "cache", progress=False)
    p2 = project_cached(model.projector, third, tmp_path / "cache", progress=False)
    assert len(proj_calls) == 1 and all(torch.equal(p1[k], p2[k]) for k in p1)
    assert p1["u0"].shape[0] == third["u0"].shape[0] // model.projector.k


def _one(u: Utterance) -> tuple[torch.Tensor, torch.Tensor]:
    wav, _ = sf.read(u.source, dtype="float32")
    return torch.from_numpy(wav)[None], torch.tensor([len(wav)])


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")  # peft's
def test_checkpoint_roundtrip_and_loud_mismatch(model, cfg, tmp_path):
    model.set_trainable(["projector", "lora"])
    for p in model.projector.parameters():
        p.data.add_(0.01)
    for n, p in model.llm.named_parameters():
        if "lora_B" in n:
            p.data.normal_()
    out = tmp_path / "model"
    save_trainable(model, cfg, out, extra={"step": 3})
    save_trainable(model, cfg, out, extra={"step": 3})  # over an existing folder
    assert sorted(f.name for f in out.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "encoder.safetensors",  # SMALLER's encoder and LM are trained from scratch: they travel with it
        "llm.safetensors",
        "projector.safetensors",
        "tokenizer",
        "trainable.json",
    ]
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]  # no temporary left behind
    loaded, lcfg = load_model(out)
    assert lcfg == cfg and read_trainable(out)["extra"] == {"step": 3}
    items = items_for(model, n=3)
    model.eval()
    loaded.eval()
    with torch.no_grad():
        assert torch.allclose(model(items), loaded(items))
    # the adapter is peft's own: PeftModel.from_pretrained reads it onto the same base LM
    base, _ = load_llm(cfg.llm, loaded.tokenizer)
    base.load_state_dict(load_file(out / "llm.safetensors"))
    again = PeftModel.from_pretrained(base, str(out))
    got = dict(again.named_parameters())
    assert all(torch.equal(p, got[n]) for n, p in model.llm.named_parameters() if "lora_" in n)

    other = load_preset("tiny", {**SMALLER, "projector.hidden": 32})
    with pytest.raises(
        ValueError,
        match=r"model/projector\.safetensors: part 'projector': shape mismatch .*linear1\.weight: \(64, 320\) vs \(32, 320\)",
    ):
        load_trainable(build_model(other, tokenizer=loaded.tokenizer), out, other)
    alpha = load_preset("tiny", {**SMALLER, "lora.alpha": 2 * cfg.lora.alpha})
    with pytest.raises(ValueError, match=r"adapter_config\.json: lora_alpha is"):
        load_trainable(build_model(alpha, tokenizer=loaded.tokenizer), out, alpha)
    blob = (out / "projector.safetensors").read_bytes()
    (out / "projector.safetensors").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match=r"model/projector\.safetensors: not a readable safetensors file"):
        load_trainable(model, out, cfg)
    (tmp_path / "old.pt").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"old\.pt: a checkpoint of an older mbasr version"):
        load_model(tmp_path / "old")


def test_small_preset_loads_local_folders_and_fails_loudly(tok_dir, tmp_path, capfd):
    """The small/paper path: pretrained folders (local_path preferred over hub_id), every key checked,
    without transformers' loading bar (a line in every executed notebook) and leaving it switched on."""
    from safetensors.torch import load_file, save_file
    from transformers import LlamaForCausalLM, WhisperForConditionalGeneration
    from transformers.utils import logging as hf_logging

    torch.manual_seed(0)
    WhisperForConditionalGeneration(tiny_whisper_config(100)).save_pretrained(tmp_path / "whisper")
    tok = AutoTokenizer.from_pretrained(tok_dir)
    LlamaForCausalLM(tiny_llama_config(len(tok))).save_pretrained(tmp_path / "llm")
    tok.save_pretrained(tmp_path / "llm")
    over = {
        "encoder.dim": 32,
        "encoder.local_path": str(tmp_path / "whisper"),
        "llm.hidden": 48,
        "llm.local_path": str(tmp_path / "llm"),
        "projector.hidden": 64,
    }
    cfg = load_preset("small", over)
    capfd.readouterr()
    m = build_model(cfg)
    assert m.llm.get_base_model().config.hidden_size == 48 and m.encoder.n_frames == 100
    assert "Loading weights" not in capfd.readouterr().err and hf_logging.is_progress_bar_enabled()
    weights = tmp_path / "llm" / "model.safetensors"
    state = load_file(weights)
    save_file({k: v for k, v in state.items() if "layers.1.mlp" not in k}, weights, metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"llm: loading .* missing_keys: \['model\.layers\.1\.mlp"):
        build_model(cfg)
    with pytest.raises(FileNotFoundError, match="llm.local_path"):
        build_model(load_preset("small", {**over, "llm.local_path": "nowhere", "llm.hub_id": None}))


def test_loss_equals_the_llm_loss_with_labels(model):
    """The loss on the last positions only is the LLM's own cross-entropy over all positions."""
    items = items_for(model, n=5, seed=4)
    model.eval()
    with torch.no_grad():
        b = model.batch(items)
        ref = model.llm(
            inputs_embeds=b.inputs_embeds,
            attention_mask=b.attention_mask,
            position_ids=b.position_ids,
            labels=b.labels,
        ).loss
        assert torch.allclose(model(items), ref, atol=1e-6)


def test_relative_local_path_is_found_from_another_directory(tmp_path, monkeypatch):
    from mbasr.model.hub import REPO_ROOT, resolve_source

    monkeypatch.chdir(tmp_path)  # as papermill runs a notebook from notebooks/
    assert resolve_source("some/hub-id", "mbasr/presets", "llm") == (str(REPO_ROOT / "mbasr/presets"), True)
    assert resolve_source("some/hub-id", "no/such/folder", "llm") == ("some/hub-id", False)
    with pytest.raises(FileNotFoundError, match="llm.local_path"):
        resolve_source(None, "no/such/folder", "llm")
