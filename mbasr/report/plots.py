"""Figures of the training and evaluation notebooks: the loss curve of a run (from its `log.jsonl`) and WER
with its confidence interval per test set (from a result table). Each function draws on `ax` (a new
figure when None) and returns the figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mbasr.training.loop import read_log


def plot_loss(log: str | Path | list[dict], ax=None, smooth: int = 20):
    """Training loss per step (thin) and its running mean (thick, over `smooth` steps at most) with the
    learning rate on a second axis; dev WER with its CI (when logged) in a panel below. `ax`: the loss
    axes (the dev panel is only drawn on a new figure)."""
    import matplotlib.pyplot as plt

    rows = read_log(log) if isinstance(log, (str, Path)) else list(log)
    steps = [r for r in rows if r.get("kind") == "step"]
    if not steps:
        raise ValueError(
            f"plot_loss: log={log if isinstance(log, (str, Path)) else '<rows>'} has no step rows"
        )
    dev = [r for r in rows if r.get("kind") == "dev"]
    dev_ax = None
    if ax is None:
        if dev:
            fig, (ax, dev_ax) = plt.subplots(
                2, 1, figsize=(7, 5), sharex=True, gridspec_kw={"height_ratios": [2, 1]}, layout="constrained"
            )
        else:
            fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
    x = np.array([r["step"] for r in steps])
    loss = np.array([r["loss"] for r in steps])
    ax.plot(x, loss, color="#9ecae1", linewidth=0.8, label="loss (per step)")
    k = max(1, min(smooth, len(loss) // 5))
    if k > 1:
        mean = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax.plot(x[k - 1 :], mean, color="#08519c", linewidth=2, label=f"loss (mean of {k} steps)")
    ax.set_ylabel("cross-entropy per token")
    lr_ax = ax.twinx()
    lr_ax.plot(
        x, [r["lr"] for r in steps], color="#969696", linestyle="--", linewidth=1, label="learning rate"
    )
    lr_ax.set_ylabel("learning rate")
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    handles = ax.get_legend_handles_labels()[0] + lr_ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper right", frameon=False, fontsize="small")
    if dev_ax is not None:
        wer = np.array([100 * r["wer"] for r in dev])
        err = np.array(
            [
                [100 * r["wer"] - 100 * r["ci_low"] for r in dev],
                [100 * r["ci_high"] - 100 * r["wer"] for r in dev],
            ]
        )
        dev_ax.errorbar([r["step"] for r in dev], wer, yerr=err, fmt="o-", color="#d94801", capsize=3)
        dev_ax.set_ylabel("dev WER (%)")
        dev_ax.set_ylim(0, max(5.0, 1.1 * float(np.max(wer + err[1]))))
        dev_ax.set_xlabel("step")
    else:
        ax.set_xlabel("step")
    return ax.figure


def plot_wer(table, ax=None, title: str | None = None):
    """Bars of WER (%) per test set with 95% CI whiskers; `table` has columns wer, ci_low, ci_high
    (fractions) and optionally role ("source" / "target"), indexed by test set."""
    import matplotlib.pyplot as plt

    for col in ("wer", "ci_low", "ci_high"):
        if col not in table.columns:
            raise ValueError(f"plot_wer: table has no column {col!r} (columns: {list(table.columns)})")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.5 + 1.2 * len(table), 3.6), layout="constrained")
    wer = 100 * table["wer"].to_numpy()
    err = np.vstack([wer - 100 * table["ci_low"].to_numpy(), 100 * table["ci_high"].to_numpy() - wer])
    roles = table["role"] if "role" in table.columns else ["target"] * len(table)
    colours = ["#08519c" if r == "source" else "#d94801" for r in roles]
    labels = [str(i).replace("_", "\n") for i in table.index]
    ax.bar(labels, wer, yerr=err, color=colours, capsize=4)
    for i, w in enumerate(wer):
        ax.annotate(f"{w:.1f}", (i, w), textcoords="offset points", xytext=(8, 3), fontsize="small")
    ax.set_ylabel("WER (%)")
    top = float(np.nanmax(wer + err[1])) if len(wer) else 0.0
    ax.set_ylim(0, max(5.0, 1.15 * top))
    if title:
        ax.set_title(title)
    return ax.figure


# colour-blind-safe (Okabe-Ito) colours of the systems, used by every comparison figure
SYSTEM_COLOURS = {
    "base": "#7f7f7f",
    "text-only": "#E69F00",
    "text_only": "#E69F00",
    "mixed batch": "#0072B2",
    "mixed": "#0072B2",
    "standard fine-tuning": "#D55E00",
    "asr": "#D55E00",
}


def plot_systems(table, ax=None, title: str | None = None):
    """Grouped bars of WER (%) with 95% CI whiskers: one group per test set (`domain`), one bar per
    `system`, from a table with columns system, domain, wer, ci_low, ci_high (fractions)."""
    import matplotlib.pyplot as plt

    systems = list(dict.fromkeys(table["system"]))
    domains = list(dict.fromkeys(table["domain"]))
    if ax is None:
        _, ax = plt.subplots(figsize=(2 + 1.1 * len(systems) * len(domains), 3.8), layout="constrained")
    width = 0.8 / len(systems)
    for j, sname in enumerate(systems):
        sub = table[table["system"] == sname].set_index("domain")
        xs, ws, errs = [], [], [[], []]
        for i, d in enumerate(domains):
            if d in sub.index:
                w = 100 * sub.loc[d, "wer"]
                xs.append(i + (j - (len(systems) - 1) / 2) * width)
                ws.append(w)
                errs[0].append(w - 100 * sub.loc[d, "ci_low"])
                errs[1].append(100 * sub.loc[d, "ci_high"] - w)
        colour = SYSTEM_COLOURS.get(sname, f"C{j}")
        ax.bar(xs, ws, width, yerr=errs, color=colour, capsize=3, label=sname)
        for x, w in zip(xs, ws, strict=True):
            ax.annotate(
                f"{w:.1f}", (x, w), textcoords="offset points", xytext=(0, 3), ha="center", fontsize="x-small"
            )
    ax.set_xticks(range(len(domains)), [f"{d.replace('_', ' ')} test" for d in domains])
    ax.set_ylabel("WER (%)")
    ax.legend(frameon=False, fontsize="small")
    if title:
        ax.set_title(title)
    return ax.figure
