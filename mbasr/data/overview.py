"""Tables and figures that describe a built corpus (notebook 01 and the report's Data page)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import soundfile as sf

from mbasr.data.corpus import Corpus, load_split

PALETTE = "colorblind"


def corpus_table(corpus: Corpus) -> pd.DataFrame:
    """Hours, utterances, vocabulary, voices and acoustic condition per domain and split."""
    df = pd.DataFrame(corpus.stats["splits"])
    df["voices"] = df["voices"].map(", ".join)
    order = {"train": 0, "dev": 1, "test": 2}
    return df.sort_values(
        ["domain", "split"], key=lambda s: s.map(order) if s.name == "split" else s
    ).reset_index(drop=True)


def gap_table(corpus: Corpus) -> pd.DataFrame:
    return pd.DataFrame(corpus.stats["gap"])


def plot_domain_gap(gap: pd.DataFrame):
    """Two panels: OOV share of each domain's test tokens w.r.t. source training text, and the test
    perplexity under a source-trained trigram LM relative to the source's own."""
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    colors = sns.color_palette(PALETTE, len(gap))
    axes[0].bar(gap["domain"], 100 * gap["oov_share_vs_source"], color=colors)
    axes[0].set_ylabel("test tokens unseen in source train (%)")
    axes[0].set_title("Vocabulary gap")
    axes[1].bar(gap["domain"], gap["ppl_ratio_vs_source"], color=colors)
    axes[1].axhline(1.0, color="grey", lw=0.8, ls="--")
    axes[1].set_ylabel("perplexity ratio (target / source)")
    axes[1].set_title("Trigram LM trained on source text")
    for ax in axes:
        ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    return fig


def example_utterances(corpus: Corpus, split: str = "test", per_domain: int = 1) -> list:
    """The first `per_domain` utterances of each domain's split (and the general dev set)."""
    domains = [*corpus.params["domains"], "general"]
    out = []
    for d in domains:
        s = "dev" if d == "general" else split
        out += load_split(corpus, d, s)[:per_domain]
    return out


def plot_spectrograms(corpus: Corpus, split: str = "test"):
    """One log-mel-like spectrogram per domain, i.e. per acoustic condition."""
    from scipy.signal import spectrogram

    utts = [u for u in example_utterances(corpus, split) if u.domain != "general"]
    fig, axes = plt.subplots(len(utts), 1, figsize=(10, 2.0 * len(utts)), squeeze=False)
    for ax, u in zip(axes[:, 0], utts, strict=True):
        wave, sr = sf.read(u.source, dtype="float32")
        f, t, sxx = spectrogram(wave, fs=sr, nperseg=400, noverlap=240)
        ax.pcolormesh(t, f / 1000, 10 * np.log10(sxx + 1e-10), shading="auto", cmap="magma")
        cond = corpus.params["conditions"][u.domain]
        ax.set_title(f"{u.domain} ({cond}, voice {u.voice}): {u.target[:70]}", fontsize=9, loc="left")
        ax.set_ylabel("kHz")
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    return fig
