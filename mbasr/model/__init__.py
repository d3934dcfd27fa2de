"""The speech LLM of docs/paper.md "System", built from a preset: encoder -> projector -> LLM with LoRA.

    cfg = load_preset("tiny")
    model = build_model(cfg, tokenizer=tok_dir)      # tiny: from scratch; small/paper: pretrained weights
    params = model.set_trainable(cfg.stage1.train)   # e.g. ["projector"]
    loss = model([LLMItem(target="HELLO", feats=frames)])
    save_trainable(model, cfg, "model")              # a folder: trainable parts + the resolved config
    model, cfg = load_model("model")

A model folder holds what is not in a pretrained release, in files other tools read:
    adapter_model.safetensors, adapter_config.json   the LoRA adapter (peft's save_pretrained)
    projector.safetensors                            the projector
    encoder.safetensors, llm.safetensors, tokenizer/ from-scratch parts only (the tiny preset's LM)
    trainable.json                                   the resolved config, code version, which file is which
Loading checks every key and shape and fails naming the file that differs. Nothing is unpickled.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch
from peft import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mbasr.config import Config, config_from_dict
from mbasr.io import code_version
from mbasr.model.encoders import build_encoder
from mbasr.model.llm import add_lora, load_llm, load_tokenizer
from mbasr.model.projector import ConcatProjector
from mbasr.model.speechllm import LLMItem, SpeechLLM
from mbasr.model.tokenizer import train_tokenizer

__all__ = [
    "LLMItem",
    "SpeechLLM",
    "base_llm_names",
    "base_llm_state",
    "build_model",
    "load_model",
    "load_trainable",
    "plain_llm_name",
    "read_trainable",
    "save_trainable",
    "train_tokenizer",
    "untrained_lora",
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


FORMAT = "mbasr-trainable/1"
META = "trainable.json"
TOKENIZER_DIR = "tokenizer"
PART_FILES = {
    "projector": "projector.safetensors",
    "lora": "adapter_model.safetensors",  # the name peft's save_pretrained gives it
    "encoder": "encoder.safetensors",
    "llm": "llm.safetensors",
}


def plain_llm_name(name: str) -> str:
    """A parameter's name in the LM without LoRA (`q_proj.weight`, not `q_proj.base_layer.weight`)."""
    return name.replace(".base_layer.", ".")


def base_llm_names(model: SpeechLLM) -> dict[str, str]:
    """{plain name: name in the LoRA-wrapped LM}: a saved LM carries the names of the model without
    LoRA, so transformers (or a model with other LoRA targets) loads it as it is."""
    names = model.llm.get_base_model().state_dict().keys()
    return {plain_llm_name(k): k for k in names if "lora_" not in k}


def base_llm_state(model: SpeechLLM) -> dict[str, torch.Tensor]:
    state = model.llm.get_base_model().state_dict()
    return {plain: state[k] for plain, k in base_llm_names(model).items()}


def trainable_state(model: SpeechLLM, cfg: Config) -> dict[str, dict[str, torch.Tensor] | None]:
    """The parts a checkpoint holds (None where the weights come from a pretrained release)."""
    return {
        "projector": model.projector.state_dict(),
        # False: the adapter alone (LoRA targets no embedding), and no hub lookup of the base model
        "lora": get_peft_model_state_dict(model.llm, save_embedding_layers=False),
        "encoder": model.encoder.state_dict() if cfg.encoder.scratch is not None else None,
        "llm": base_llm_state(model) if cfg.llm.scratch is not None else None,
    }


def save_trainable(
    model: SpeechLLM, cfg: Config, path: str | Path, extra: dict[str, Any] | None = None
) -> None:
    """Write the trainable parts, the resolved config and the code version as the folder `path`: peft's
    adapter files, safetensors for the rest, `trainable.json` for the config. Built beside `path` and
    renamed over it, so a kill leaves the previous folder or none, never half of one."""
    path = Path(path)
    state = trainable_state(model, cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        model.llm.save_pretrained(str(tmp), save_embedding_layers=False)
        (tmp / "README.md").unlink(missing_ok=True)  # peft's empty model card
        for part, tensors in state.items():
            if part != "lora" and tensors is not None:
                # clone: tied weights (embedding, LM head) must not share memory in a safetensors file
                save_file({n: t.detach().cpu().clone() for n, t in tensors.items()}, tmp / PART_FILES[part])
        if cfg.llm.scratch is not None:
            model.tokenizer.save_pretrained(str(tmp / TOKENIZER_DIR))
        meta = {
            "format": FORMAT,
            "config": cfg.to_dict(),
            "code_version": code_version(),
            "parts": {part: PART_FILES[part] if v is not None else None for part, v in state.items()},
            "tokenizer": TOKENIZER_DIR if cfg.llm.scratch is not None else None,
            "extra": extra or {},
        }
        (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
        for f in tmp.rglob("*"):
            if f.is_file():
                with f.open("rb") as fh:
                    os.fsync(fh.fileno())
        _replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _replace(new: Path, path: Path) -> None:
    """Put the folder `new` at `path`, replacing a folder (or an older version's file) there."""
    if path.is_dir() and not path.is_symlink():
        old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
        os.replace(path, old / path.name)
        os.replace(new, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
        os.replace(new, path)


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


def read_trainable(path: str | Path) -> dict[str, Any]:
    """A folder written by `save_trainable`: {config (a dict), code_version, extra, tokenizer (its folder
    or None), parts: {part: {name: tensor} or None}}. Fails naming the file that is missing or unreadable."""
    path = Path(path)
    if path.is_file() or (not path.exists() and path.with_suffix(".pt").is_file()):
        old = path if path.is_file() else path.with_suffix(".pt")
        raise ValueError(
            f"{old}: a checkpoint of an older mbasr version (one .pt file); this version reads the folder "
            f"that save_trainable writes: delete the run folder that holds it and run again to retrain"
        )
    meta_path = path / META
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"{meta_path}: not found: {path} is not a model folder written by save_trainable"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{meta_path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{meta_path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    parts: dict[str, dict[str, torch.Tensor] | None] = {}
    for part, name in meta["parts"].items():
        parts[part] = None if name is None else _read_safetensors(path / name)
    tokenizer = path / meta["tokenizer"] if meta.get("tokenizer") else None
    return {**meta, "parts": parts, "tokenizer": tokenizer}


def _read_safetensors(file: Path) -> dict[str, torch.Tensor]:
    if not file.is_file():
        raise FileNotFoundError(f"{file}: not found (listed in {file.parent / META})")
    try:
        return load_file(str(file))
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{file}: not a readable safetensors file ({e}); retrain to rewrite it") from None


def _check_adapter_config(model: SpeechLLM, path: Path) -> None:
    """The adapter's rank, alpha and targets must be the model's: a different alpha would load silently."""
    file = path / "adapter_config.json"
    if not file.is_file():
        raise FileNotFoundError(f"{file}: not found")
    saved = json.loads(file.read_text(encoding="utf-8"))
    mine = model.llm.peft_config["default"]
    for key in ("r", "lora_alpha", "target_modules"):
        a, b = saved.get(key), getattr(mine, key)
        if key == "target_modules":
            a, b = sorted(a or []), sorted(b or [])
        if a != b:
            raise ValueError(f"{file}: {key} is {a!r} but the model's LoRA has {b!r}")


def untrained_lora(train: Collection[str]) -> tuple[str, ...]:
    """("lora",) for a stage that does not train LoRA: its adapter is still the no-op it was built as (B = 0),
    so the stage's weights do not depend on LoRA's settings and a load may keep the model's own."""
    return () if "lora" in train else ("lora",)


def load_trainable(
    model: SpeechLLM, path: str | Path, cfg: Config | None = None, skip: Collection[str] = ()
) -> dict[str, Any]:
    """Load a model folder's parts into `model` after checking every key and shape; returns what
    `read_trainable` returns (its `config` is the resolved config it was trained with). Parts named in
    `skip` keep the model's own weights (a base model's untrained LoRA, when stage 2 uses other targets)."""
    path = Path(path)
    ckpt = read_trainable(path)
    ckpt_cfg = config_from_dict(ckpt["config"], source=f"{path / META}:config")
    cfg = cfg or ckpt_cfg
    expected = trainable_state(model, cfg)
    for part, exp in expected.items():
        if part in skip:
            continue
        got = ckpt["parts"].get(part)
        where = f"{path / PART_FILES[part]}: part {part!r}"
        if (exp is None) != (got is None):
            raise ValueError(
                f"{where} is {'absent' if got is None else 'present'} in the model folder "
                f"but {'expected' if exp is not None else 'not expected'} by the model"
            )
        if exp is None:
            continue
        _check_state(exp, got, where)
        if part == "projector":
            model.projector.load_state_dict(got, strict=True)
        elif part == "encoder":
            model.encoder.load_state_dict(got, strict=True)
        elif part == "llm":
            names = base_llm_names(model)
            result = model.llm.get_base_model().load_state_dict(
                {names[k]: v for k, v in got.items()}, strict=False
            )
            bad = [k for k in result.missing_keys if "lora_" not in k] + list(result.unexpected_keys)
            if bad:
                raise ValueError(f"{where}: keys not loaded: {bad[:8]}")
        elif part == "lora":
            _check_adapter_config(model, path)
            result = set_peft_model_state_dict(model.llm, got)
            if getattr(result, "unexpected_keys", None):
                raise ValueError(f"{where}: unexpected keys {result.unexpected_keys[:8]}")
    return ckpt


def load_model(path: str | Path, cfg: Config | None = None) -> tuple[SpeechLLM, Config]:
    """Rebuild a model from a model folder alone (pretrained parts come from the config's hub id / local
    folder; a tiny model's tokenizer from the folder) and load its parts."""
    path = Path(path)
    ckpt = read_trainable(path)
    cfg = cfg or config_from_dict(ckpt["config"], source=f"{path / META}:config")
    tokenizer = load_tokenizer(ckpt["tokenizer"]) if ckpt["tokenizer"] is not None else None
    model = build_model(cfg, tokenizer=tokenizer)
    load_trainable(model, path, cfg)
    return model, cfg
