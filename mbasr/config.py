"""Presets: YAML files -> nested dataclasses (docs/paper.md "System"; one code path at three sizes).

A preset (`mbasr/presets/{tiny,small,paper}.yaml`) holds every setting of the model and of its training
stages; each paper value is commented there with its source. Loading is strict: an unknown key, a missing
key or a value of the wrong type fails with the file, the line and the dotted key. Nothing has a silent
default: optional settings are written as `null` in the file.

    cfg = load_preset("tiny", overrides={"stage2.lr": 3e-4})
    cfg.to_dict()   # the resolved config, saved inside every checkpoint
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PRESET_DIR = Path(__file__).resolve().parent / "presets"
# the shipped stage-0 checkpoint of presets with a `stage0` section (mbasr/training/stage0.py makes it)
DEFAULT_STAGE0 = Path(__file__).resolve().parent / "assets" / "tiny" / "stage0.pt"
ENCODER_NAMES = ("tiny", "whisper", "wavlm")  # the registry in mbasr/model/encoders.py
WHISPER_WINDOWS = ("trimmed", "full")
TRAINABLE_PARTS = ("encoder", "projector", "llm", "lora")
PRECISIONS = ("float32", "bfloat16")


class ConfigError(ValueError):
    """A preset that cannot be loaded; the message names the file, the line and the key."""


@dataclass
class ScratchEncoderConfig:
    """The from-scratch encoder of `tiny`: log-mel -> 2 stride-2 convs -> transformer -> CTC head."""

    n_mels: int  # log-mel bins (25 ms window, 10 ms hop)
    d_model: int  # transformer width = encoder.dim
    n_layers: int
    n_heads: int
    d_ff: int
    dropout: float
    ctc_vocab: str  # characters of the stage-0 CTC head (blank added as index 0); text is lower-cased


@dataclass
class EncoderConfig:
    name: str  # registry name: tiny | whisper | wavlm
    hub_id: str | None  # Hugging Face id of pretrained weights (null for a from-scratch encoder)
    local_path: str | None  # a local folder, preferred over hub_id when it exists
    dim: int  # D, the width of the encoder's output frames
    window: str | None  # whisper only: "trimmed" (each utterance's own length) or "full" (30-s windows)
    scratch: ScratchEncoderConfig | None  # the architecture when trained from scratch


@dataclass
class ProjectorConfig:
    k: int  # consecutive encoder frames concatenated into one LLM input vector
    hidden: int  # Linear(k * encoder.dim -> hidden) -> ReLU -> Linear(hidden -> llm.hidden)


@dataclass
class ScratchLLMConfig:
    """A small Llama trained from scratch (`tiny`) with its own BPE tokenizer."""

    vocab_size: int  # BPE vocabulary, special tokens included
    n_layers: int
    n_heads: int
    n_kv_heads: int
    intermediate: int
    max_positions: int
    rope_theta: float
    tie_embeddings: bool


@dataclass
class LLMConfig:
    hub_id: str | None
    local_path: str | None
    hidden: int  # H, the LLM's embedding width (the projector's output)
    gradient_checkpointing: bool
    scratch: ScratchLLMConfig | None


@dataclass
class LoraConfig:
    r: int
    alpha: int
    dropout: float
    target_modules: list[str]


@dataclass
class PromptConfig:
    instruction: str  # the user turn; `placeholder` marks the speech slot
    placeholder: str
    chat_template: str | None  # a named template of mbasr/model/tokenizer.py, or null: the tokenizer's own


@dataclass
class StageConfig:
    train: list[str]  # parts that receive gradients: encoder, projector, llm, lora
    optimizer: str  # adamw
    lr: float
    weight_decay: float
    warmup_steps: int  # linear warm-up from 0
    decay_steps: int | None  # linear decay to 0 at this step (null: constant after warm-up)
    epochs: int | None  # exactly one of epochs / steps is set
    steps: int | None
    batch_size: int
    eval_every: int | None  # steps between dev evaluations (null: at the end of each epoch)
    checkpoint_every: int | None  # steps between checkpoints (null: at the end of each epoch / run)
    grad_clip: float | None


@dataclass
class Stage0Config:
    """Pretraining of the from-scratch parts (`tiny` only): tokenizer, language model, and either a CTC
    encoder (a from-scratch encoder) or the LM reading a pretrained encoder's speech through a projector."""

    tokenizer_vocab_size: int
    channel_augment: bool  # random generic channels in encoder training (mbasr/data/augment.py)
    encoder: StageConfig | None  # CTC pretraining of a from-scratch encoder (null: the encoder is pretrained)
    lm: StageConfig  # general + source text, and copy examples (text in the speech slot)
    speech: StageConfig | None  # the LM (+ projector) on general speech in the slot, text skills kept


@dataclass
class DecodingConfig:
    max_new_tokens: int
    num_beams: int
    batch_size: int


@dataclass
class Config:
    name: str
    seed: int
    precision: str  # float32 | bfloat16 (autocast on the accelerator)
    deviations: list[str]  # every difference from the paper, with why and how to restore it
    encoder: EncoderConfig
    projector: ProjectorConfig
    llm: LLMConfig
    lora: LoraConfig
    prompt: PromptConfig
    stage0: Stage0Config | None
    stage1: StageConfig
    stage2: StageConfig
    decoding: DecodingConfig

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------------------
# strict YAML -> dataclass conversion


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Map each dotted key path of a YAML mapping document to its 1-based line number."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                p = (*path, str(k.value))
                lines[p] = k.start_mark.line + 1
                walk(v, p)

    root = yaml.compose(text)
    if root is not None:
        walk(root, ())
    return lines


class _Ctx:
    def __init__(self, source: str, lines: dict[tuple[str, ...], int]):
        self.source, self.lines = source, lines

    def fail(self, path: tuple[str, ...], msg: str) -> typing.NoReturn:
        p = path
        while p and p not in self.lines:
            p = p[:-1]
        where = f"{self.source}:{self.lines[p]}" if p else self.source
        raise ConfigError(f"{where}: {'.'.join(path) or '<root>'}: {msg}")


def _convert(tp: Any, value: Any, path: tuple[str, ...], ctx: _Ctx) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            ctx.fail(path, "is null but a value is required")
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, path, ctx)
    if value is None:
        ctx.fail(path, f"is null but must be {getattr(tp, '__name__', tp)}")
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path, ctx)
    if origin is list:
        if not isinstance(value, list):
            ctx.fail(path, f"must be a list, got {type(value).__name__}")
        (inner,) = typing.get_args(tp)
        return [_convert(inner, v, (*path, str(i)), ctx) for i, v in enumerate(value)]
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            ctx.fail(path, f"must be a number, got {value!r} (write 1.0e-4, not 1e-4, in YAML)")
        return float(value)
    if tp in (int, str, bool):
        if type(value) is not tp:
            ctx.fail(path, f"must be {tp.__name__}, got {value!r}")
        return value
    raise TypeError(f"mbasr/config.py: unsupported field type {tp!r} at {'.'.join(path)}")


def _build(cls: type, data: Any, path: tuple[str, ...], ctx: _Ctx) -> Any:
    if not isinstance(data, dict):
        ctx.fail(path, f"must be a mapping of {cls.__name__} fields, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        ctx.fail((*path, str(unknown[0])), f"unknown key (known keys of {cls.__name__}: {', '.join(names)})")
    missing = [n for n in names if n not in data]
    if missing:
        ctx.fail(path, f"missing key(s) {', '.join(missing)} (write `null` for an unused optional setting)")
    return cls(**{n: _convert(hints[n], data[n], (*path, n), ctx) for n in names})


def _validate(cfg: Config, ctx: _Ctx) -> None:
    if cfg.encoder.name not in ENCODER_NAMES:
        ctx.fail(
            ("encoder", "name"), f"unknown encoder {cfg.encoder.name!r}; known: {', '.join(ENCODER_NAMES)}"
        )
    if (cfg.encoder.scratch is None) == (cfg.encoder.name == "tiny"):
        ctx.fail(("encoder", "scratch"), "must be set exactly when encoder.name is 'tiny'")
    if (cfg.encoder.window is None) == (cfg.encoder.name == "whisper"):
        ctx.fail(("encoder", "window"), "must be set (trimmed | full) exactly when encoder.name is 'whisper'")
    if cfg.encoder.window not in (None, *WHISPER_WINDOWS):
        ctx.fail(
            ("encoder", "window"),
            f"unknown window {cfg.encoder.window!r}; known: {', '.join(WHISPER_WINDOWS)}",
        )
    if cfg.encoder.scratch is not None and cfg.encoder.scratch.d_model != cfg.encoder.dim:
        ctx.fail(("encoder", "scratch", "d_model"), f"must equal encoder.dim ({cfg.encoder.dim})")
    if cfg.llm.scratch is None and not (cfg.llm.hub_id or cfg.llm.local_path):
        ctx.fail(("llm",), "needs hub_id or local_path, or a scratch architecture")
    if cfg.precision not in PRECISIONS:
        ctx.fail(("precision",), f"must be one of {', '.join(PRECISIONS)}")
    if cfg.stage0 is not None and cfg.llm.scratch is not None:
        if cfg.stage0.tokenizer_vocab_size != cfg.llm.scratch.vocab_size:
            ctx.fail(("stage0", "tokenizer_vocab_size"), "must equal llm.scratch.vocab_size")
    stages = [("stage1", cfg.stage1), ("stage2", cfg.stage2)]
    if cfg.stage0 is not None:
        if (cfg.stage0.encoder is None) == (cfg.encoder.scratch is not None):
            ctx.fail(("stage0", "encoder"), "must be set exactly when the encoder is from scratch")
        parts = ("encoder", "lm", "speech")
        stages += [(f"stage0.{k}", getattr(cfg.stage0, k)) for k in parts if getattr(cfg.stage0, k)]
    for name, st in stages:
        path = tuple(name.split("."))
        if (st.epochs is None) == (st.steps is None):
            ctx.fail(path, "set exactly one of epochs / steps")
        for part in st.train:
            if part not in TRAINABLE_PARTS:
                ctx.fail((*path, "train"), f"unknown part {part!r}; known: {', '.join(TRAINABLE_PARTS)}")
        if st.optimizer != "adamw":
            ctx.fail((*path, "optimizer"), f"unknown optimizer {st.optimizer!r}; known: adamw")


def _apply_overrides(raw: dict, overrides: dict[str, Any], source: str) -> dict:
    """Apply `{"a.b": v}` or nested `{"a": {"b": v}}` overrides; a key absent from the preset fails. A
    mapping given for a section that is null in the preset replaces it whole (checked like the preset)."""
    out = copy.deepcopy(raw)

    def put(path: list[str], value: Any) -> None:
        node = out
        for i, k in enumerate(path):
            if not isinstance(node, dict) or k not in node:
                raise ConfigError(
                    f"{source}: override {'.'.join(path)!r}: unknown key {'.'.join(path[: i + 1])!r}"
                )
            if i == len(path) - 1:
                node[k] = value
            else:
                node = node[k]

    def current(path: list[str]) -> Any:
        node = out
        for k in path:
            node = node.get(k) if isinstance(node, dict) else None
        return node

    def walk(d: dict, prefix: list[str]) -> None:
        for k, v in d.items():
            path = prefix + str(k).split(".")
            if isinstance(v, dict) and current(path) is not None:
                walk(v, path)
            else:  # a value, or a whole section where the preset has null (e.g. a scratch encoder)
                put(path, v)

    walk(overrides, [])
    return out


def config_from_dict(data: dict, source: str = "<dict>") -> Config:
    """Build a Config from a resolved dict (e.g. one saved inside a checkpoint); as strict as a file."""
    ctx = _Ctx(source, {})
    cfg = _build(Config, data, (), ctx)
    _validate(cfg, ctx)
    return cfg


def preset_path(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            raise ConfigError(f"{p}: preset file not found")
        return p
    named = PRESET_DIR / f"{name_or_path}.yaml"
    if not named.exists():
        known = ", ".join(sorted(q.stem for q in PRESET_DIR.glob("*.yaml")))
        raise ConfigError(f"{named}: no preset named {str(name_or_path)!r}; known: {known}")
    return named


def load_preset(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Load a preset by name (`tiny`, `small`, `paper`) or path, apply overrides, validate."""
    path = preset_path(name_or_path)
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
        lines = key_lines(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from e
    ctx = _Ctx(str(path), lines)
    if overrides:
        raw = _apply_overrides(raw, overrides, str(path))
    cfg = _build(Config, raw, (), ctx)
    _validate(cfg, ctx)
    return cfg
