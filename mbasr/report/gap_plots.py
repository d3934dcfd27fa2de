"""Pictures of the modality-gap measures of `mbasr.study.gap` (notebook 08): the embedding map of speech and
text in the slot, and the layer-by-layer gap."""

from __future__ import annotations

import numpy as np

from mbasr.report.plots import SYSTEM_COLOURS
from mbasr.study.gap import KINDS, LEGEND


def plot_embedding_map(df, n_labels: int = 25, title: str | None = None):
    """One panel per system, same axes: speech vectors (circles) and the transcripts' token vectors
    (crosses), up to `n_labels` distinct text tokens of each panel written beside their points (those
    that do not overprint)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    for col in ("system", "kind", "x", "y", "token"):
        if col not in df.columns:
            raise ValueError(f"plot_embedding_map: df has no column {col!r} (columns: {list(df.columns)})")
    systems = list(dict.fromkeys(df["system"]))
    palette = dict(zip(KINDS, sns.color_palette("colorblind", 2), strict=True))
    fig, axes = plt.subplots(
        1,
        len(systems),
        figsize=(4.2 * len(systems), 4.2),
        sharex=True,
        sharey=True,
        layout="constrained",
        squeeze=False,
    )
    markers = {"speech": "o", "text": "X"}
    for ax, name in zip(axes[0], systems, strict=True):
        sub = df[df["system"] == name]
        for kind in KINDS:
            part = sub[sub["kind"] == kind]
            ax.scatter(
                part["x"],
                part["y"],
                s=18 if kind == "speech" else 36,
                marker=markers[kind],
                color=palette[kind],
                alpha=0.55 if kind == "speech" else 0.9,
                linewidths=0,
                label=LEGEND[kind],
            )
        for r in _spread(sub[sub["kind"] == "text"].drop_duplicates("token"), df, n_labels).itertuples():
            ax.annotate(
                r.token.strip() or repr(r.token),
                (r.x, r.y),
                fontsize="x-small",
                xytext=(3, 2),
                textcoords="offset points",
                color="#333333",
            )
        ax.set_title(name)
        ax.set_xlabel(_axis_label(df, 0))
    axes[0][0].set_ylabel(_axis_label(df, 1))
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False, fontsize="small")
    layer = df.attrs.get("layer")
    fig.suptitle(
        title or (f"speech vs text vectors at LLM layer {layer}" if layer is not None else "speech vs text")
    )
    return fig


def _spread(points, df, n: int):
    """Up to `n` of `points`, in order, each at least 6% of the map's span away from those kept (so
    their labels do not overprint)."""
    span = max(float(np.ptp(df["x"])), float(np.ptp(df["y"])), 1e-12)
    kept: list[int] = []
    xy = points[["x", "y"]].to_numpy()
    for i in range(len(points)):
        if len(kept) == n:
            break
        if all(np.hypot(*(xy[i] - xy[j])) > 0.06 * span for j in kept):
            kept.append(i)
    return points.iloc[kept]


def _axis_label(df, i: int) -> str:
    explained = df.attrs.get("explained")
    share = f" ({explained[i]:.0%} of variance)" if explained else ""
    return f"principal axis {i + 1}{share}"


def plot_layer_gap(df, ax=None, title: str | None = None):
    """The per-layer gap of each system (line) with its 95% CI (band)."""
    import matplotlib.pyplot as plt

    for col in ("system", "layer", "distance", "ci_low", "ci_high"):
        if col not in df.columns:
            raise ValueError(f"plot_layer_gap: df has no column {col!r} (columns: {list(df.columns)})")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
    markers = "osD^v<>"
    for j, (name, sub) in enumerate(df.groupby("system", sort=False)):
        colour = SYSTEM_COLOURS.get(name, f"C{j}")
        ax.plot(sub["layer"], sub["distance"], marker=markers[j % len(markers)], color=colour, label=name)
        ax.fill_between(sub["layer"], sub["ci_low"], sub["ci_high"], color=colour, alpha=0.2, linewidth=0)
    ax.set_xticks(sorted(df["layer"].unique()))
    ax.set_xlabel("LLM layer (0 = input embeddings)")
    ax.set_ylabel("cosine distance, speech vs text input\n(answer positions, mean over utterances)")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False, fontsize="small")
    if title:
        ax.set_title(title)
    return ax.figure
