"""The speech LLM of docs/paper.md "System", built from a preset: encoder -> projector -> LLM with LoRA.

    cfg = load_preset("tiny")
    model = build_model(cfg, tokenizer=tok_dir)      # tiny: from scratch; small/paper: pretrained weights
    params = model.set_trainable(cfg.stage1.train)   # e.g. ["projector"]
    loss = model([LLMItem(target="HELLO", feats=frames)])
    save_trainable(model, cfg, "ckpt.pt")            # trainable parts + the resolved config
    model = load_model("ckpt.pt")

A checkpoint holds what is not in a pretrained release: the projector, the LoRA adapter, and for
from-scratch parts their weights (tiny encoder, tiny LLM) and tokenizer files. Loading checks every key
and shape and fails naming the ones that differ.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import torch
from peft import get_peft_model_state_dict, set_peft_model_state_dict

from mbasr.config import Config, config_from_dict
from mbasr.io import atomic_write_bytes, code_version
from mbasr.model.encoders import build_encoder
from mbasr.model.llm import add_lora, load_llm, load_tokenizer
from mbasr.model.projector import ConcatProjector
from mbasr.model.speechllm import LLMItem, SpeechLLM
from mbasr.model.tokenizer import train_tokenizer

__all__ = [
    "LLMItem",
    "SpeechLLM",
    "build_model",
    "load_model",
    "load_trainable",
    "save_trainable",
    "train_tokenizer",
]


def build_model(
    cfg: Config,
    tokenizer=None,
    encoder_hf_config=None,
    llm_hf_config=None,
    frozen_encoder: bool = True,
) -> SpeechLLM:
    """The whole model of a preset. Random parts (projector, LoRA, from-scratch encoder/LLM) are
    initialised from `cfg.seed`. `tokenizer` (object or folder) is required for a from-scratch LLM;
    `*_hf_config` build random-weight Hugging Face models instead of loading weights (tests).
    Everything starts frozen: call `set_trainable(stage.train)`."""
    torch.manual_seed(cfg.seed)
    encoder = build_encoder(cfg.encoder, encoder_hf_config, frozen=frozen_encoder)
    llm, tok = load_llm(cfg.llm, tokenizer, hf_config=llm_hf_config)
    llm = add_lora(llm, cfg.lora)
    projector = ConcatProjector(cfg.projector.k, cfg.encoder.dim, cfg.projector.hidden, cfg.llm.hidden)
    return SpeechLLM(encoder, projector, llm, tok, cfg.prompt)


def _tokenizer_files(tokenizer) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as d:
        tokenizer.save_pretrained(d)
        return {p.name: p.read_text(encoding="utf-8") for p in sorted(Path(d).iterdir()) if p.is_file()}


def _base_llm_state(model: SpeechLLM) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.llm.get_base_model().state_dict().items() if "lora_" not in k}


def trainable_state(model: SpeechLLM, cfg: Config) -> dict[str, dict[str, torch.Tensor] | None]:
    """The parts a checkpoint holds (None where the weights come from a pretrained release)."""
    return {
        "projector": model.projector.state_dict(),
        "lora": get_peft_model_state_dict(model.llm),
        "encoder": model.encoder.state_dict() if cfg.encoder.scratch is not None else None,
        "llm": _base_llm_state(model) if cfg.llm.scratch is not None else None,
    }


def save_trainable(
    model: SpeechLLM, cfg: Config, path: str | Path, extra: dict[str, Any] | None = None
) -> None:
    """Write the trainable parts, the resolved config and the code version to `path` (atomically)."""
    state = {
        k: None if v is None else {n: t.detach().cpu() for n, t in v.items()}
        for k, v in trainable_state(model, cfg).items()
    }
    ckpt = {
        "config": cfg.to_dict(),
        "code_version": code_version(),
        "parts": state,
        "tokenizer": _tokenizer_files(model.tokenizer) if cfg.llm.scratch is not None else None,
        "extra": extra or {},
    }
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    atomic_write_bytes(path, buf.getvalue())


def _check_state(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor], where: str) -> None:
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    shapes = sorted(k for k in set(expected) & set(got) if tuple(expected[k].shape) != tuple(got[k].shape))
    if missing or unexpected or shapes:
        detail = [
            f"missing {missing[:8]}" if missing else "",
            f"unexpected {unexpected[:8]}" if unexpected else "",
            "shape mismatch "
            + ", ".join(f"{k}: {tuple(got[k].shape)} vs {tuple(expected[k].shape)}" for k in shapes[:8])
            if shapes
            else "",
        ]
        raise ValueError(f"{where}: " + "; ".join(d for d in detail if d))


def load_trainable(model: SpeechLLM, path: str | Path, cfg: Config | None = None) -> dict[str, Any]:
    """Load a checkpoint's parts into `model` after checking every key and shape; returns the checkpoint
    (its `config` is the resolved config it was trained with)."""
    ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    ckpt_cfg = config_from_dict(ckpt["config"], source=f"{path}:config")
    cfg = cfg or ckpt_cfg
    expected = trainable_state(model, cfg)
    for part, exp in expected.items():
        got = ckpt["parts"].get(part)
        if (exp is None) != (got is None):
            raise ValueError(
                f"{path}: part {part!r} is {'absent' if got is None else 'present'} in the checkpoint "
                f"but {'expected' if exp is not None else 'not expected'} by the model"
            )
        if exp is None:
            continue
        _check_state(exp, got, f"{path}: part {part!r}")
        if part == "projector":
            model.projector.load_state_dict(got, strict=True)
        elif part == "encoder":
            model.encoder.load_state_dict(got, strict=True)
        elif part == "llm":
            result = model.llm.get_base_model().load_state_dict(got, strict=False)
            bad = [k for k in result.missing_keys if "lora_" not in k] + list(result.unexpected_keys)
            if bad:
                raise ValueError(f"{path}: part 'llm': keys not loaded: {bad[:8]}")
        elif part == "lora":
            result = set_peft_model_state_dict(model.llm, got)
            if getattr(result, "unexpected_keys", None):
                raise ValueError(f"{path}: part 'lora': unexpected keys {result.unexpected_keys[:8]}")
    return ckpt


def load_model(path: str | Path, cfg: Config | None = None) -> tuple[SpeechLLM, Config]:
    """Rebuild a model from a checkpoint alone (pretrained parts come from the config's hub id / local
    folder; a tiny model's tokenizer from the checkpoint) and load its parts."""
    ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    cfg = cfg or config_from_dict(ckpt["config"], source=f"{path}:config")
    tokenizer = None
    if ckpt["tokenizer"] is not None:
        with tempfile.TemporaryDirectory() as d:
            for name, text in ckpt["tokenizer"].items():
                (Path(d) / name).write_text(text, encoding="utf-8")
            tokenizer = load_tokenizer(d)
    model = build_model(cfg, tokenizer=tokenizer)
    load_trainable(model, path, cfg)
    return model, cfg
