"""The stage-0 checkpoint (`mbasr/assets/tiny/stage0.pt`): written atomically in float16, its part files
merged, its record read, and its LM, tokenizer and projector loaded into a preset's model. Loading is
`weights_only` (no pickled code runs)."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import torch

from mbasr.config import DEFAULT_STAGE0, Config
from mbasr.io import atomic_write_bytes
from mbasr.model import base_llm_names, base_llm_state, build_model, plain_llm_name
from mbasr.model.llm import load_tokenizer


def stage0_state(model) -> dict[str, dict[str, torch.Tensor]]:
    return {  # plain names (no LoRA wrapping): the state loads whatever modules a preset's LoRA targets
        "llm": {k: v.detach().cpu().clone() for k, v in base_llm_state(model).items()},
        "projector": {k: v.detach().cpu().clone() for k, v in model.projector.state_dict().items()},
    }


def load_llm_state(model, state: dict[str, torch.Tensor], where: str) -> None:
    """Load an LM state saved with plain names, or (checkpoints made before) with the names of the
    LoRA-wrapped LM it was saved from, into `model`'s LM, whichever modules its LoRA wraps."""
    names = base_llm_names(model)
    result = model.llm.get_base_model().load_state_dict(
        {names.get(plain_llm_name(k), k): v.float() for k, v in state.items()}, strict=False
    )
    missing = [k for k in result.missing_keys if "lora_" not in k]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{where}: LM keys not loaded: missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}"
        )


def write_checkpoint(out: str | Path, obj: dict, what: str) -> Path:
    """A part file or checkpoint, written atomically."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(out, buf.getvalue())
    print(f"{what} written to {out}")
    return Path(out)


def half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Stored in float16 (half the size in the repository; loading casts back to float32)."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def read_part(path: str | Path, part: str) -> dict:
    """One part ("encoder" or "lm") of a part file or of a merged stage-0 checkpoint, as a part file."""
    ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    if "parts" not in ckpt:  # a part file
        if part not in ckpt["record"]:
            raise ValueError(f"{path}: a stage-0 part file without the `{part}` part")
        return ckpt
    rec = ckpt["record"]
    commands = [c for c in rec.get("commands", []) if f"pretrain {part} " in c]
    part_rec = {
        "config": rec["config"],
        "code_version": rec.get("code_version"),
        "corpus": rec[part].get("corpus", rec["corpus"]),
        "made_on": rec["made_on"][part],
        "command": commands[0] if commands else f"(merged into {path})",
        part: rec[part],
    }
    state = ckpt["parts"]["encoder" if part == "encoder" else "llm"]
    return {"record": part_rec, "state": state, "tokenizer": ckpt["tokenizer"]}


def merge_parts(encoder_part: str | Path, lm_part: str | Path, out: str | Path = DEFAULT_STAGE0) -> Path:
    """One stage-0 checkpoint from the two parts (each a part file or a stage-0 checkpoint: e.g. a new
    encoder with the LM of the shipped checkpoint). Their architectures must match; each part keeps the
    record of the corpus it was trained on."""
    enc, lm = read_part(encoder_part, "encoder"), read_part(lm_part, "lm")

    def arch(rec):  # what the checkpoint holds; stage 0-2 settings and wording may differ between parts
        return {k: rec["config"][k] for k in ("encoder", "llm")}

    if arch(enc["record"]) != arch(lm["record"]):
        raise ValueError(f"{encoder_part} and {lm_part} were made for different model architectures")
    record = {k: v for k, v in lm["record"].items() if k not in ("lm", "made_on", "command")}
    record["config"]["stage0"] = {
        **lm["record"]["config"]["stage0"],
        "encoder": enc["record"]["config"]["stage0"]["encoder"],
        "channel_augment": enc["record"]["config"]["stage0"].get("channel_augment", False),
    }
    encoder_rec = dict(enc["record"]["encoder"])
    encoder_rec.setdefault("corpus", enc["record"]["corpus"])
    if "init" in enc["record"]:
        encoder_rec.setdefault("init", enc["record"]["init"])
    record.update(encoder=encoder_rec, lm=lm["record"]["lm"])
    record["made_on"] = {"encoder": enc["record"]["made_on"], "lm": lm["record"]["made_on"]}
    record["commands"] = [enc["record"]["command"], lm["record"]["command"]]
    ckpt = {
        "record": record,
        "parts": {"encoder": enc["state"], "llm": lm["state"]},
        "tokenizer": lm["tokenizer"],
    }
    return write_checkpoint(out, ckpt, "stage 0")


def stage0_record(path: str | Path = DEFAULT_STAGE0) -> dict:
    """What made a stage-0 checkpoint, and its measured targets."""
    return torch.load(str(path), map_location="cpu", weights_only=True)["record"]


def load_stage0(cfg: Config, path: str | Path = DEFAULT_STAGE0):
    """A SpeechLLM of the tiny preset with its stage-0 LM and tokenizer, its encoder (from scratch: from
    the checkpoint; pretrained: from its weights) and the stage-0 projector when the checkpoint has one
    (else a fresh one from `cfg.seed`; LoRA is always fresh). The architecture in `cfg` must be the one
    pretrained."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no stage-0 checkpoint; build it with `python -m mbasr pretrain all --out {path}` "
            "(hours on a CPU, minutes on a GPU: scripts/stage0_gpu.sh)"
        )
    ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    made, parts = ckpt["record"]["config"], ckpt["parts"]
    sections = ("encoder", "llm") + (("projector",) if parts.get("projector") is not None else ())
    for section in sections:
        if made[section] != cfg.to_dict()[section]:
            raise ValueError(
                f"{path}: pretrained with a different `{section}` section than the preset asks for "
                f"(checkpoint: {made[section]}, preset: {cfg.to_dict()[section]}); rebuild stage 0 or restore it"
            )
    with tempfile.TemporaryDirectory() as d:
        for name, text in ckpt["tokenizer"].items():
            (Path(d) / name).write_text(text, encoding="utf-8")
        tok = load_tokenizer(d)
    model = build_model(cfg, tokenizer=tok)
    if cfg.encoder.scratch is not None:
        model.encoder.load_state_dict({k: v.float() for k, v in parts["encoder"].items()}, strict=True)
    load_llm_state(model, parts["llm"], str(path))
    if parts.get("projector") is not None:
        model.projector.load_state_dict({k: v.float() for k, v in parts["projector"].items()}, strict=True)
    return model
