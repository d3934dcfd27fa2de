"""The figures' common drawing: the paper's series hollow and dashed, ours filled with 95% CI bars, in one
row of panels when both fit the paper's axes and in two rows otherwise; SVGs without dates, so an unchanged
figure is an unchanged file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mbasr import vocab

# Okabe-Ito, a colour-blind-safe palette; each series also has its own marker
COLORS = {"asr": "#D55E00", "mb": "#0072B2", "text_only": "#56B4E9", "base": "#000000"}
MARKERS = {"asr": "s", "mb": "o", "text_only": "D", "base": "^"}
METHOD_LABEL = {"asr": vocab.STRATEGY["asr"], "mb": vocab.STRATEGY["mixed"]}
P_TICKS = [0, 1, 5, 10, 20, 40, 60, 80, 100]  # audio share p (%), on a square-root axis


@dataclass
class Made:
    """What a figure builder made: the figure, its table, what it lacks, and the notebooks behind it."""

    figure: Path
    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    notebooks: list[str] = field(default_factory=list)
    overlay: bool = True
    panels: int = 1
    ours: pd.DataFrame | None = None  # the runs drawn, for the caption's seeds


def pyplot():
    import matplotlib

    if (
        "inline" not in matplotlib.get_backend()
    ):  # a notebook shows its figures inline; elsewhere draw to files
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "mbasr", "font.size": 10})
    return plt


def overlay_ok(pairs: list[tuple[list[float], list[float]]]) -> bool:
    """Whether ours fits on the paper's axes: in each panel the span of both together is at most three
    times the paper's own span; else ours would flatten the paper's curves, and gets its own row."""
    for paper, ours in pairs:
        if paper and ours and max(paper + ours) - min(paper + ours) > 3 * max(max(paper) - min(paper), 1.0):
            return False
    return True


def panels(ncols: int, overlay: bool, size: tuple[float, float], run: dict, titles: list[str], sharex=True):
    """(figure, paper axes, our axes): one row shared by both when they overlay, else the paper's above
    ours (sharing the x-axis when `sharex`); the titles say which row is which."""
    plt = pyplot()
    nrows = 1 if overlay else 2
    figsize = (size[0] * ncols + 0.4, size[1] * nrows + 0.9)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=figsize, squeeze=False, sharex="col" if sharex else False, layout="constrained"
    )
    for j, title in enumerate(titles):
        axes[0, j].set_title(title if overlay else f"{title} · paper", fontsize=10)
        if not overlay:
            axes[1, j].set_title(f"{title} · ours ({run['preset']})", fontsize=10)
    for ax in axes.flat:
        ax.grid(alpha=0.3, lw=0.5)
        ax.spines[["top", "right"]].set_visible(False)
    return fig, axes[0], axes[-1]


def draw_series(ax, x, y, method: str, paper: bool, label: str, points: pd.DataFrame | None = None):
    """One series: the paper's hollow markers on a dashed line; ours filled on a solid line, with the 95%
    CI of `points` as error bars."""
    c, m = COLORS[method], MARKERS[method]
    if paper:
        ax.plot(x, y, ls="--", lw=1.2, marker=m, mfc="white", mec=c, mew=1.4, color=c, ms=6, label=label)
    else:
        err = np.vstack([points["wer"] - points["ci_low"], points["ci_high"] - points["wer"]])
        ax.errorbar(x, y, yerr=err, ls="-", lw=1.6, marker=m, color=c, ms=6, capsize=3, label=label)


def finish(fig, name: str, out: Path) -> Path:
    """The legend below the panels (the paper's entries in the left column, ours in the right), saved as
    SVG with no date, so an unchanged figure is an unchanged file."""
    import matplotlib.pyplot as plt

    handles: dict[str, object] = {}
    for ax in fig.axes:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
    labels = sorted(handles, key=lambda s: s.endswith("ours") or "ours (" in s)
    fig.legend([handles[k] for k in labels], labels, loc="outside lower center", ncol=2, frameon=False)
    path = out / "figures" / f"{name}.svg"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)
    return path
