"""The paper's figures redrawn, one builder per figure, each named for it:

    figure_1   text-only adaptation on Banking against the target-text share tau_t   (claim 5)
    figure_2   WER against the target audio share p, mixed batch against fine-tuning (claims 1-3)
    figure_3   forgetting: source against target WER of four systems                 (claim 4)
    figure_4   Figure 2's drawing for the appendix targets (Insurance, Animation)
    figure_5   Figure 2's drawing for the paper's second source (SlideSpeech)

Each takes the paper's numbers (`mbasr.vocab.load_paper`), our tidy results (`mbasr.report.series`) and
writes `figures/figure-N.svg` under `out`, returning a `Made` with the figure's table. Notebook 07 draws
its Figure 3 with `figure_3_from_runs`, the same drawing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mbasr.data.corpus import SOURCE
from mbasr.data.corpus import TARGETS as OUR_TARGETS
from mbasr.report.draw import (
    COLORS,
    MARKERS,
    METHOD_LABEL,
    P_TICKS,
    Made,
    draw_series,
    finish,
    overlay_ok,
    panels,
)
from mbasr.report.markdown import esc, p_label
from mbasr.report.series import at_value, notebooks_of, our_points, pair
from mbasr.vocab import OUR_SOURCE, PAPER_SOURCE_NAME, load_paper
from mbasr.vocab import domain as nice


def _lacks(t: str, source: str | None, asr: pd.DataFrame, mb: pd.DataFrame, yours=()) -> list[str]:
    if source is None:
        return []
    if t not in OUR_TARGETS and t not in yours:
        have = ", ".join(map(nice, OUR_TARGETS))
        return [
            f"Our corpus has no {esc(nice(t))} domain (its targets: {esc(have)}): the paper's numbers only."
        ]
    if len(mb) or (asr["p"] > 0).any():
        return []
    shown = "our base model's point (p = 0) only" if len(asr) else "the paper's numbers only"
    return [f"No adaptation run of ours targets {esc(nice(t))} yet: its panel shows {shown}."]


def _values(series: dict, t: str, i: int) -> list[float]:
    """Every WER of target `t`: the paper's (i = 0) or ours (i = 1)."""
    return [float(v) for m in METHOD_LABEL for v in series[t, m][i]["value" if i == 0 else "wer"]]


def audio_share(paper: pd.DataFrame, ours, figures: tuple[str, ...], out: Path, run: dict, yours=()) -> Made:
    """Figures 2, 4 and 5: WER against the target audio share p, MB against standard fine-tuning, one
    panel per target in the paper's order, then one per target of `yours` (no paper numbers: our source);
    the paper's low-resource points (figure `2-low`) included."""
    pap = paper[paper["figure"].isin(figures)]
    targets = list(dict.fromkeys([*pap["target"], *yours]))
    notes = [
        f"Our corpus has no counterpart of the paper's {PAPER_SOURCE_NAME.get(s, s)} source: these panels "
        "show the paper's numbers only."
        for s in dict.fromkeys(pap["source"])
        if s not in OUR_SOURCE
    ]
    series, rows = {}, []
    for t in targets:
        paper_source = pap.loc[pap["target"] == t, "source"]
        src = OUR_SOURCE.get(paper_source.iloc[0]) if len(paper_source) else SOURCE
        for m in METHOD_LABEL:
            series[t, m] = (
                pap[(pap["target"] == t) & (pap["method"] == m)].sort_values("p"),
                our_points(ours, m, src, t),
            )
        keys = sorted({round(float(x), 6) for m in METHOD_LABEL for df in series[t, m] for x in df["p"]})
        for k in keys:
            row = {"target": t, "p": k}
            for m in METHOD_LABEL:
                pm, om = series[t, m]
                row[f"{m}_paper_figure"] = (
                    at_value(pm, "p", k)["figure"].iloc[0] if len(at_value(pm, "p", k)) else None
                )
                row |= {f"{m}_{c}": v for c, v in pair(at_value(pm, "p", k), at_value(om, "p", k)).items()}
            rows.append(row)
        notes += _lacks(t, src, series[t, "asr"][1], series[t, "mb"][1], yours)
    overlay = overlay_ok([tuple(_values(series, t, i) for i in (0, 1)) for t in targets])
    titles = [f"{nice(t)} (your domain)" if t in yours else nice(t) for t in targets]
    fig, pax, oax = panels(len(targets), overlay, (3.6, 3.2), run, titles)
    for j, t in enumerate(targets):
        for m, name in METHOD_LABEL.items():
            pm, om = series[t, m]
            draw_series(pax[j], 100 * pm["p"], pm["value"], m, True, f"{name}, paper")
            if len(om):
                draw_series(oax[j], 100 * om["p"], om["wer"], m, False, f"{name}, ours", om)
        for ax in {id(a): a for a in (pax[j], oax[j])}.values():
            ax.set_xscale("function", functions=(lambda x: np.sqrt(np.clip(x, 0, None)), np.square))
            ax.set_xticks(P_TICKS)
            ax.set_xlim(-0.5, 104)
            ax.minorticks_off()
        oax[j].set_xlabel("target audio share p (%, square-root scale)")
    pax[0].set_ylabel("WER (%)")
    oax[0].set_ylabel("WER (%)")
    path = finish(fig, f"figure-{figures[0]}", out)
    nbs = notebooks_of(*(s[1] for s in series.values()))
    return Made(path, pd.DataFrame(rows), notes, nbs, overlay, len(targets))


def figure_2(paper: pd.DataFrame, ours, out: Path, run: dict, yours=()) -> Made:
    """Figure 2 (with its low-resource points, figure `2-low`): Banking, Agriculture and Musical
    Instruments, and a panel for each imported domain in `yours`."""
    return audio_share(paper, ours, ("2", "2-low"), out, run, yours)


def figure_4(paper: pd.DataFrame, ours, out: Path, run: dict) -> Made:
    """Figure 4 (appendix): the Insurance and Animation targets."""
    return audio_share(paper, ours, ("4",), out, run)


def figure_5(paper: pd.DataFrame, ours, out: Path, run: dict) -> Made:
    """Figure 5 (arXiv appendix): the SlideSpeech Life/Talent/English source."""
    return audio_share(paper, ours, ("5",), out, run)


def figure_1(paper: pd.DataFrame, ours, out: Path, run: dict) -> Made:
    """Figure 1: text-only adaptation on Banking, WER against the share tau_t of target text in the batch;
    the base model (the paper's from Figure 2, p = 0) a horizontal line."""
    pap = paper[paper["figure"] == "1"].sort_values("tau_t")
    target, src = pap["target"].iloc[0], OUR_SOURCE.get(pap["source"].iloc[0])
    fig2 = paper[(paper["figure"] == "2") & (paper["target"] == target) & (paper["method"] == "asr")]
    base_p = fig2[fig2["p"] == 0]
    sweep = our_points(ours, "tau_sweep", src, target, by="tau_t")
    base = our_points(ours, "base", src, target)
    notes = (
        []
        if len(sweep)
        else [f"No text-only run of ours on {esc(nice(target))} yet: the paper's sweep only."]
    )
    overlay = overlay_ok([([*pap["value"], *base_p["value"]], [*sweep["wer"], *base["wer"]])])
    fig, (axp,), (axo,) = panels(1, overlay, (6.0, 3.6), run, [f"Text-only adaptation, {nice(target)}"])
    draw_series(axp, 100 * pap["tau_t"], pap["value"], "text_only", True, "text-only adaptation, paper")
    axp.axhline(base_p["value"].iloc[0], color=COLORS["base"], ls="--", lw=1, label="base model, paper")
    if len(sweep):
        draw_series(
            axo, 100 * sweep["tau_t"], sweep["wer"], "text_only", False, "text-only adaptation, ours", sweep
        )
    if len(base):
        b = base.iloc[0]
        axo.axhspan(b["ci_low"], b["ci_high"], color=COLORS["base"], alpha=0.12, lw=0)
        axo.axhline(b["wer"], color=COLORS["base"], lw=1.2, label="base model, ours (band: 95% CI)")
    for ax in {id(a): a for a in (axp, axo)}.values():
        ax.set_ylabel("WER on the target test set (%)")
        ax.set_xticks(range(10, 100, 10))
    axo.set_xlabel("target-text share of the batch τ_t (%)")
    path = finish(fig, "figure-1", out)
    keys = sorted({round(float(x), 6) for x in [*pap["tau_t"], *sweep["tau_t"]]})
    rows = [{"tau_t": k} | pair(at_value(pap, "tau_t", k), at_value(sweep, "tau_t", k)) for k in keys]
    rows.append({"tau_t": None} | pair(base_p, base))
    return Made(path, pd.DataFrame(rows), notes, notebooks_of(sweep, base), overlay)


def figure_3(paper: pd.DataFrame, ours, out: Path, run: dict) -> Made:
    """Figure 3: WER on the source test set against WER on the target test set for the base model,
    text-only MB, audio-text MB and standard fine-tuning at the paper's p (lower left is better)."""
    pap = paper[paper["figure"] == "3"]
    target, src = pap["target"].iloc[0], OUR_SOURCE.get(pap["source"].iloc[0])
    rows, notes, points = [], [], []
    for system, method, p in dict.fromkeys(zip(pap["system"], pap["method"], pap["p"], strict=True)):
        row = {"system": system, "method": method, "p": p}
        for side, ev in (("source", src), ("target", target)):
            mine = at_value(our_points(ours, method, src, target, eval_domain=ev), "p", p)
            theirs = pap[(pap["system"] == system) & (pap["metric"] == f"{side}_wer")]
            row |= {f"{side}_{k}": v for k, v in pair(theirs, mine).items()}
            points.append(mine)
        if pd.isna(row["source_ours_wer"]) or pd.isna(row["target_ours_wer"]):
            notes.append(f"No run of ours for “{esc(system)}” (p = {p_label(p)}%) on both test sets yet.")
        rows.append(row)
    table = pd.DataFrame(rows)
    fig, overlay = draw_figure_3(table, run, target)
    path = finish(fig, "figure-3", out)
    return Made(path, table, notes, notebooks_of(*points), overlay)


def draw_figure_3(table: pd.DataFrame, run: dict, target: str, title: str | None = None):
    """Figure 3's drawing, for the site and for notebook 07: each system of `table` (rows of `figure_3`'s
    table, WER in %) at (source WER, target WER), the paper's hollow, ours filled with 95% CIs both ways.
    Returns (figure, whether the two share one panel)."""
    overlay = overlay_ok(
        [(list(table[f"{s}_paper_wer"]), list(table[f"{s}_ours_wer"].dropna())) for s in ("source", "target")]
    )
    titles = [title or f"Forgetting, {nice(target)}"]
    fig, (axp,), (axo,) = panels(1, overlay, (6.0, 4.0), run, titles, sharex=False)
    for _, r in table.iterrows():
        c, m = COLORS[r["method"]], MARKERS[r["method"]]
        if pd.notna(r["source_paper_wer"]) and pd.notna(r["target_paper_wer"]):
            axp.plot(r["source_paper_wer"], r["target_paper_wer"], ls="none", marker=m, mfc="white", mec=c,
                     mew=1.6, ms=9, label=f"{r['system']}, paper")  # fmt: skip
        if pd.notna(r["source_ours_wer"]) and pd.notna(r["target_ours_wer"]):
            sx, sl, sh = r["source_ours_wer"], r["source_ours_ci_low"], r["source_ours_ci_high"]
            ty, tl, th = r["target_ours_wer"], r["target_ours_ci_low"], r["target_ours_ci_high"]
            axo.errorbar(sx, ty, xerr=[[sx - sl], [sh - sx]], yerr=[[ty - tl], [th - ty]], ls="none", marker=m,
                         color=c, ms=8, capsize=3, label=f"{r['system']}, ours")  # fmt: skip
    for ax in {id(a): a for a in (axp, axo)}.values():
        ax.set_ylabel(f"WER on the {nice(target)} test set (%)")
        ax.set_xlabel("WER on the source test set (%) · forgetting →")
    return fig, overlay


# Our stage-2 strategies as Figure 3's methods (the paper's `mb` is our `mixed`), with our labels
_RUN_METHOD = {"base": "base", "text_only": "text_only", "mixed": "mb", "asr": "asr"}


def figure_3_from_runs(
    table: pd.DataFrame,
    systems: dict[str, str],
    source: str,
    target: str,
    p: float,
    preset: str,
    title: str | None = None,
):
    """Notebook 07's Figure 3: `table` is `mbasr.runs.adapt.compare`'s (system, domain, wer, ci_low, ci_high;
    fractions), `systems` maps its system names to strategies (base, text_only, mixed, asr). The paper's
    points come beside ours when the run is the paper's (Banking, p = 20%). Returns (figure, the table drawn)."""
    paper = load_paper()
    paper = paper[paper["figure"] == "3"]
    comparable = target == "banking" and len(paper) and abs(p - float(paper["p"].max())) < 1e-9
    rows = []
    for name, strategy in systems.items():
        method = _RUN_METHOD[strategy]
        row = {"system": name, "method": method, "p": 0.0 if strategy in ("base", "text_only") else p}
        for side, ev in (("source", source), ("target", target)):
            mine = table[(table["system"] == name) & (table["domain"] == ev)]
            theirs = paper[(paper["method"] == method) & (paper["metric"] == f"{side}_wer")]
            ours = (100 * mine[["wer", "ci_low", "ci_high"]]).assign(seeds=1)
            row |= {f"{side}_{k}": v for k, v in pair(theirs if comparable else theirs[:0], ours).items()}
        rows.append(row)
    drawn = pd.DataFrame(rows)
    fig, _ = draw_figure_3(drawn, {"preset": preset}, target, title)
    return fig, drawn
