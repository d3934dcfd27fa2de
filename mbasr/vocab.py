"""The study's vocabulary, defined once: the adaptation strategies and the paper's tau, the paper's published
numbers (one loader), and one label per concept for everything a reader sees (domain names, symbols,
strategies, the words of a run's title). Code, notebook titles and table headers take them from here."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from mbasr.data.corpus import SOURCE, TARGETS

# Stage 2's strategies (docs/paper.md "Mixed batch"): `mixed` is the paper's mixed batch (MB), `asr` its
# standard fine-tuning on target audio (ASR), `text_only` adaptation on corrupted target text alone. The batch
# sampler also knows `source_only` (source audio alone, a control).
STRATEGIES = ("text_only", "mixed", "asr")
BATCH_STRATEGIES = ("mixed", "text_only", "asr", "source_only")
MB_TAU = 0.5  # docs/paper.md "Mixed batch": the target share of a batch, 0.5 throughout; claim 5 tests it

# The paper's source settings (data/paper/published_results.csv `source`) and our corpus's stand-in for each:
# `source` mirrors the call-centre DefinedAI source (mbasr/data/corpus.py); the paper's second source,
# SlideSpeech Life/Talent/English, has none.
PAPER_SOURCE = "definedai"
PAPER_SOURCE_NAME = {
    PAPER_SOURCE: "DefinedAI call-centre",
    "slidespeech_life_talent_english": "SlideSpeech Life/Talent/English",
}
OUR_SOURCE = {PAPER_SOURCE: SOURCE}

# The paper's published numbers (data/paper/README.md): WER in %, one value a row
PAPER_CSV = Path(__file__).resolve().parents[1] / "data" / "paper" / "published_results.csv"
PAPER_COLUMNS = ("figure", "source", "target", "method", "p", "tau_t", "system", "metric", "value")


def load_paper(path: str | Path = PAPER_CSV) -> pd.DataFrame:
    """The paper's published WERs (%), one value a row, columns checked."""
    df = pd.read_csv(path, dtype={"figure": str})
    if tuple(df.columns) != PAPER_COLUMNS:
        raise ValueError(f"{path}: columns {list(df.columns)}, expected {list(PAPER_COLUMNS)}")
    return df


# The paper's words for the strategies (docs/paper.md "Mixed batch"): the long label the first time on a page,
# the short one in tables and titles
STRATEGY = {
    "base": "base model",
    "text_only": "text-only adaptation",
    "mixed": "mixed batch (MB)",
    "asr": "standard fine-tuning (ASR)",
}
SHORT = {"base": "base", "text_only": "text-only", "mixed": "MB", "asr": "ASR", "mb": "MB"}
SYMBOL = {"tau_t": "τ_t", "tau_a": "τ_a", "tau": "τ", "sigma_a": "σ_a", "sigma_t": "σ_t", "sigma_ta": "σ_ta"}
# The notebook each stage-2 strategy runs (notebooks/), and each notebook's system: a run's executed notebook
# says its strategy by its source
NOTEBOOKS = {
    "text_only": "04_text_only.ipynb",
    "asr": "05_asr_finetune.ipynb",
    "mixed": "06_mixed_batch.ipynb",
}
NOTEBOOK_STRATEGY = {"03_base_model": "base", **{Path(nb).stem: s for s, nb in NOTEBOOKS.items()}}


def domain(name) -> str:
    """A domain's display name: `musical_instruments` -> `Musical Instruments`."""
    return str(name).replace("_", " ").title()


def number(x) -> str:
    """A parameter as a reader writes it: 0.20000001 -> `0.2`, 1.0 -> `1`."""
    return f"{float(x):.4g}"


def run_title(params: dict, strategy: str | None) -> str:
    """What a run is, from its papermill parameters: `Banking · p = 0.2 · τ = 0.5 · seed 0`, the
    strategy first when there is one."""
    parts = [STRATEGY[strategy]] if strategy else []
    if params.get("target_domain"):
        parts.append(domain(params["target_domain"]))
    for key in ("p", "tau", "tau_t"):
        if params.get(key) is not None and not (key == "p" and strategy == "text_only"):
            parts.append(f"{SYMBOL.get(key, key)} = {number(params[key])}")
    if params.get("scale") and not params.get("target_domain"):
        parts.append(f"{params['scale']} scale")
    if params.get("seed") is not None:
        parts.append(f"seed {params['seed']}")
    return " · ".join(parts)


_IDS = re.compile(r"\b(tau_t|tau_a|sigma_ta|sigma_a|sigma_t|tau|[a-z]+(?:_[a-z]+)+)\b")


def humanize(text: str) -> str:
    """Raw ids in generated text as labels: `tau_t` -> `τ_t`, `musical_instruments` -> `Musical
    Instruments`; other snake_case words lose their underscores."""

    def one(m: re.Match) -> str:
        word = m.group(1)
        if word in SYMBOL:
            return SYMBOL[word]
        if word in TARGETS:
            return domain(word)
        return word.replace("_", " ")

    return _IDS.sub(one, str(text))
