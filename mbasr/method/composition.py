"""What a mixed batch is made of, measured: the share of each of the five components over many batches of a
sampler (notebook 02, scripts/measure_corruption.py), against the shares `mbasr.method.mixed_batch.resolve_shares`
asks for, and a picture of it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mbasr.data.manifest import Utterance
from mbasr.method.mixed_batch import KINDS, SHARE_NAMES, Item, MixedBatchSampler


def composition(batches: Sequence[Sequence[Item]] | Sequence[Sequence[tuple[str, Utterance]]]) -> np.ndarray:
    """(n_batches, B) array of indices into KINDS, from batches of Items or of `plan` tuples."""
    return np.array(
        [[KINDS.index(it.kind if isinstance(it, Item) else it[0]) for it in b] for b in batches], dtype=int
    )


def measured_shares(sampler: MixedBatchSampler, n_batches: int = 1000, start: int = 0) -> dict[str, float]:
    """Share of each kind over batches start .. start + n_batches - 1 (from `plan`: no text drawn)."""
    comp = composition([sampler.plan(k) for k in range(start, start + n_batches)])
    counts = np.bincount(comp.ravel(), minlength=len(KINDS))
    return {kind: counts[i] / comp.size for i, kind in enumerate(KINDS)}


def shares_table(sampler: MixedBatchSampler, n_batches: int = 1000) -> list[dict]:
    """One row per component: its share name, kind, setting and the share measured over `n_batches`."""
    got = measured_shares(sampler, n_batches)
    want = sampler.shares.by_kind()
    return [
        {"component": SHARE_NAMES[k], "kind": k, "setting": want[k], "measured": float(got[k])} for k in KINDS
    ]


KIND_COLOURS = {  # source kinds in blues, target kinds in oranges
    "source_audio": "#08519c",
    "projector_noise": "#6baed6",
    "source_text": "#c6dbef",
    "target_audio": "#d94801",
    "target_text": "#fdae6b",
}


def plot_composition(comp: np.ndarray, ax=None):
    """The batching picture: one row per batch, one cell per item, coloured by kind (`composition`)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 + 0.45 * comp.shape[1], 0.8 + 0.22 * comp.shape[0]))
    cmap = ListedColormap([KIND_COLOURS[k] for k in KINDS])
    ax.imshow(comp, cmap=cmap, vmin=-0.5, vmax=len(KINDS) - 0.5, aspect="auto", interpolation="nearest")
    ax.set_xticks(np.arange(-0.5, comp.shape[1]), minor=True)
    ax.set_yticks(np.arange(-0.5, comp.shape[0]), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.0)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel("item in batch")
    ax.set_ylabel("batch (step)")
    handles = [Patch(color=KIND_COLOURS[k], label=f"{k} ({SHARE_NAMES[k]})") for k in KINDS]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax.figure
