"""The report site's figures, tables and page fragments, made from a results folder:

    python -m mbasr report results/

reads `results.csv` (the tidy table: one row per run and evaluation set, WER as fractions), `claims.json`,
`records/*.json` and the executed notebooks `notebooks/*.ipynb` of that folder, the paper's published
numbers (`data/paper/published_results.csv`, WER in %) and the presets' `deviations:`, and writes

    figures/figure-{1,2,3,4,5}.svg   the paper's figures redrawn: the paper hollow and dashed, ours filled
                                     with 95% CI bars (Okabe-Ito colours, each series its own marker)
    figures/notebooks/*              the pictures of the executed notebooks that the pages show
    tables/figure-*.csv              each figure's numbers, the paper's beside ours with our CIs
    report/*.md                      the generated part of each page of the site (`_quarto.yml`)

The pages (`index.qmd`, `site/*.qmd`) hold prose and include these fragments, so the site renders the same
with Quarto and, offline, with smalldocs, and runs no code. A missing part (no run for a figure, no
notebook 08, no claims) is said on its page, never an error. Only the most frequent (preset, scale) of
`results.csv` is drawn; the home page names any other that was left out.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from mbasr import vocab
from mbasr.config import PRESET_DIR
from mbasr.data.corpus import SOURCE
from mbasr.data.corpus import TARGETS as OUR_TARGETS
from mbasr.report import diagrams, findings, safe
from mbasr.report.nbtidy import audio_to_files
from mbasr.vocab import MB_TAU, PAPER_CSV, load_paper

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = (
    "run_id", "experiment", "preset", "scale", "seed", "source_domain", "target_domain", "p", "tau", "tau_t",
    "steps", "lr", "eval_domain", "split", "wer", "ci_low", "ci_high", "n_utts", "code_version", "created",
    "executed_notebook",
)  # fmt: skip
EXPERIMENTS = ("base", "text_only", "asr", "mixed")
# Our corpus's stand-in for each of the paper's source settings (mbasr/data/corpus.py: `source` mirrors the
# call-centre DefinedAI source); the paper's second source, SlideSpeech Life/Talent/English, has none.
OUR_SOURCE = {"definedai": SOURCE}
PAPER_SOURCE_NAME = {
    "definedai": "DefinedAI call-centre",
    "slidespeech_life_talent_english": "SlideSpeech Life/Talent/English",
}
# The MB curves and Figure 3 use mixed runs at MB_TAU; the text-only run at tau_t = MB_TAU is MB at p = 0.
SPLIT = "test"  # the figures report test sets; dev sets are for tuning

# Okabe-Ito, a colour-blind-safe palette; each series also has its own marker
COLORS = {"asr": "#D55E00", "mb": "#0072B2", "text_only": "#56B4E9", "base": "#000000"}
MARKERS = {"asr": "s", "mb": "o", "text_only": "D", "base": "^"}
METHOD_LABEL = {"asr": vocab.STRATEGY["asr"], "mb": vocab.STRATEGY["mixed"]}
P_TICKS = [0, 1, 5, 10, 20, 40, 60, 80, 100]  # audio share p (%), on a square-root axis
VERDICT_CLASS = {"held": "success", "not held": "danger", "inconclusive": "secondary"}
VERDICT_MARK = {"held": "✓", "not held": "✗", "inconclusive": "?"}


nice = vocab.domain


def esc(text) -> str:
    """Text from data (domain names, file names, messages) for a Markdown or HTML page: shown, never run."""
    return html.escape(str(text))


def pct(x: float | None) -> str:
    return "" if x is None or pd.isna(x) else f"{x:.2f}"


def p_label(p: float) -> str:
    """A share as the paper writes it, in percent: 0.0011 -> `0.11`, 0.2 -> `20`."""
    return f"{round(100 * float(p), 4):g}"


# ------------------------------------------------------------------------------------------------ inputs


def load_results(results_dir: str | Path) -> pd.DataFrame | None:
    """`results.csv` of a results folder (None when there is none), checked against the tidy table's
    columns; WER and CIs stay fractions."""
    path = Path(results_dir) / "results.csv"
    if not path.exists():
        return None
    df = pd.read_csv(path, dtype={"run_id": str, "preset": str, "scale": str, "split": str})
    if missing := [c for c in COLUMNS if c not in df.columns]:
        raise ValueError(f"{path}: missing columns {missing} (the tidy table has {list(COLUMNS)})")
    if unknown := set(df["experiment"]) - set(EXPERIMENTS):
        raise ValueError(f"{path}: unknown experiments {sorted(unknown)}; expected {EXPERIMENTS}")
    for c in ("p", "tau", "tau_t", "wer", "ci_low", "ci_high"):
        df[c] = pd.to_numeric(df[c])
    return df


def main_run(df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The rows of the most frequent (preset, scale), and what it is and what was left out."""
    counts = df.groupby(["preset", "scale"]).size().sort_values(ascending=False)
    preset, scale = counts.index[0]
    rows = df[(df["preset"] == preset) & (df["scale"] == scale)].copy()
    others = [f"{p}/{s} ({n} rows)" for (p, s), n in counts.iloc[1:].items()]
    return rows, {"preset": preset, "scale": scale, "left_out": others}


# -------------------------------------------------------------------------------------------- selections


def _close(series: pd.Series, value: float) -> pd.Series:
    return (series - value).abs() < 1e-6


def _at(df: pd.DataFrame, col: str, value: float) -> pd.DataFrame:
    return df[df[col].round(6) == round(value, 6)]


def ours_rows(df: pd.DataFrame, method: str, source: str, target: str, eval_domain: str | None = None):
    """Our test rows of one series on `eval_domain` (default: the target), in the paper's conventions:
    `asr` at p = 0 is the base model, `mb` at p = 0 is text-only adaptation at tau_t = tau; `tau_sweep` is
    every text-only run (Figure 1)."""
    d = df[
        (df["split"] == SPLIT)
        & (df["source_domain"] == source)
        & (df["eval_domain"] == (eval_domain or target))
    ]
    base = d[d["experiment"] == "base"]
    mine = d[d["target_domain"] == target]
    sweep = mine[mine["experiment"] == "text_only"]
    text = sweep[_close(sweep["tau_t"], MB_TAU)]
    series = {
        "base": base,
        "text_only": text,
        "tau_sweep": sweep,
        "asr": pd.concat([base, mine[mine["experiment"] == "asr"]]),
        "mb": pd.concat([text, mine[(mine["experiment"] == "mixed") & _close(mine["tau"], MB_TAU)]]),
    }
    if method not in series:
        raise ValueError(f"method={method!r}: one of {list(series)}")
    return series[method]


def aggregate(rows: pd.DataFrame, by: str) -> pd.DataFrame:
    """One point per value of `by`: WER (%) averaged over seeds, the 95% CI (the envelope of the seeds'
    CIs when there are several), the number of seeds and the executed notebooks behind them."""
    if rows.empty:
        return pd.DataFrame(columns=[by, "wer", "ci_low", "ci_high", "seeds", "notebooks"])
    g = rows.assign(_k=rows[by].round(6)).groupby("_k")
    out = pd.DataFrame(
        {
            "wer": 100 * g["wer"].mean(),
            "ci_low": 100 * g["ci_low"].min(),
            "ci_high": 100 * g["ci_high"].max(),
            "seeds": g["seed"].nunique(),
            "notebooks": g["executed_notebook"].agg(lambda s: sorted({str(x) for x in s.dropna()})),
        }
    )
    return out.rename_axis(by).reset_index().sort_values(by)


def our_points(ours, method: str, source: str | None, target: str, by: str = "p", eval_domain=None):
    """`aggregate` of `ours_rows`; empty without results or without our counterpart of the source."""
    if ours is None or source is None:
        return aggregate(pd.DataFrame(), by)
    return aggregate(ours_rows(ours, method, source, target, eval_domain), by)


def pair(paper_row: pd.DataFrame, our_row: pd.DataFrame) -> dict:
    """One table cell pair: the paper's WER and ours with its CI and seeds (NaN / 0 when absent)."""
    o = our_row.iloc[0] if len(our_row) else None
    return {
        "paper_wer": paper_row["value"].iloc[0] if len(paper_row) else np.nan,
        "ours_wer": np.nan if o is None else o["wer"],
        "ours_ci_low": np.nan if o is None else o["ci_low"],
        "ours_ci_high": np.nan if o is None else o["ci_high"],
        "ours_seeds": 0 if o is None else int(o["seeds"]),
    }


def _notebooks(*points: pd.DataFrame) -> list[str]:
    return sorted({n for pts in points for ns in pts["notebooks"] for n in ns})


# ----------------------------------------------------------------------------------------------- figures


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


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "mbasr", "font.size": 10})
    return plt


def _overlay_ok(pairs: list[tuple[list[float], list[float]]]) -> bool:
    """Whether ours fits on the paper's axes: in each panel the span of both together is at most three
    times the paper's own span; else ours would flatten the paper's curves, and gets its own row."""
    for paper, ours in pairs:
        if paper and ours and max(paper + ours) - min(paper + ours) > 3 * max(max(paper) - min(paper), 1.0):
            return False
    return True


def _panels(ncols: int, overlay: bool, size: tuple[float, float], run: dict, titles: list[str], sharex=True):
    """(figure, paper axes, our axes): one row shared by both when they overlay, else the paper's above
    ours (sharing the x-axis when `sharex`); the titles say which row is which."""
    plt = _plt()
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


def _draw(ax, x, y, method: str, paper: bool, label: str, points: pd.DataFrame | None = None):
    """One series: the paper's hollow markers on a dashed line; ours filled on a solid line, with the 95%
    CI of `points` as error bars."""
    c, m = COLORS[method], MARKERS[method]
    if paper:
        ax.plot(x, y, ls="--", lw=1.2, marker=m, mfc="white", mec=c, mew=1.4, color=c, ms=6, label=label)
    else:
        err = np.vstack([points["wer"] - points["ci_low"], points["ci_high"] - points["wer"]])
        ax.errorbar(x, y, yerr=err, ls="-", lw=1.6, marker=m, color=c, ms=6, capsize=3, label=label)


def _finish(fig, name: str, out: Path) -> Path:
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


def your_targets(paper: pd.DataFrame, ours: pd.DataFrame | None) -> list[str]:
    """The targets of our runs that the paper never reports: domains imported with `mbasr import`
    (mbasr/data/domains.py), drawn as "your domain" panels without paper numbers."""
    if ours is None:
        return []
    return sorted(set(ours["target_domain"].dropna()) - set(paper["target"]))


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
                row[f"{m}_paper_figure"] = _at(pm, "p", k)["figure"].iloc[0] if len(_at(pm, "p", k)) else None
                row |= {f"{m}_{c}": v for c, v in pair(_at(pm, "p", k), _at(om, "p", k)).items()}
            rows.append(row)
        notes += _lacks(t, src, series[t, "asr"][1], series[t, "mb"][1], yours)
    overlay = _overlay_ok([tuple(_values(series, t, i) for i in (0, 1)) for t in targets])
    titles = [f"{nice(t)} (your domain)" if t in yours else nice(t) for t in targets]
    fig, pax, oax = _panels(len(targets), overlay, (3.6, 3.2), run, titles)
    for j, t in enumerate(targets):
        for m, name in METHOD_LABEL.items():
            pm, om = series[t, m]
            _draw(pax[j], 100 * pm["p"], pm["value"], m, True, f"{name}, paper")
            if len(om):
                _draw(oax[j], 100 * om["p"], om["wer"], m, False, f"{name}, ours", om)
        for ax in {id(a): a for a in (pax[j], oax[j])}.values():
            ax.set_xscale("function", functions=(lambda x: np.sqrt(np.clip(x, 0, None)), np.square))
            ax.set_xticks(P_TICKS)
            ax.set_xlim(-0.5, 104)
            ax.minorticks_off()
        oax[j].set_xlabel("target audio share p (%, square-root scale)")
    pax[0].set_ylabel("WER (%)")
    oax[0].set_ylabel("WER (%)")
    path = _finish(fig, f"figure-{figures[0]}", out)
    nbs = _notebooks(*(s[1] for s in series.values()))
    return Made(path, pd.DataFrame(rows), notes, nbs, overlay, len(targets))


def tau_sweep(paper: pd.DataFrame, ours, out: Path, run: dict) -> Made:
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
    overlay = _overlay_ok([([*pap["value"], *base_p["value"]], [*sweep["wer"], *base["wer"]])])
    fig, (axp,), (axo,) = _panels(1, overlay, (6.0, 3.6), run, [f"Text-only adaptation, {nice(target)}"])
    _draw(axp, 100 * pap["tau_t"], pap["value"], "text_only", True, "text-only adaptation, paper")
    axp.axhline(base_p["value"].iloc[0], color=COLORS["base"], ls="--", lw=1, label="base model, paper")
    if len(sweep):
        _draw(
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
    path = _finish(fig, "figure-1", out)
    keys = sorted({round(float(x), 6) for x in [*pap["tau_t"], *sweep["tau_t"]]})
    rows = [{"tau_t": k} | pair(_at(pap, "tau_t", k), _at(sweep, "tau_t", k)) for k in keys]
    rows.append({"tau_t": None} | pair(base_p, base))
    return Made(path, pd.DataFrame(rows), notes, _notebooks(sweep, base), overlay)


def forgetting(paper: pd.DataFrame, ours, out: Path, run: dict) -> Made:
    """Figure 3: WER on the source test set against WER on the target test set for the base model,
    text-only MB, audio-text MB and standard fine-tuning at the paper's p (lower left is better)."""
    pap = paper[paper["figure"] == "3"]
    target, src = pap["target"].iloc[0], OUR_SOURCE.get(pap["source"].iloc[0])
    rows, notes, points = [], [], []
    for system, method, p in dict.fromkeys(zip(pap["system"], pap["method"], pap["p"], strict=True)):
        row = {"system": system, "method": method, "p": p}
        for side, ev in (("source", src), ("target", target)):
            mine = _at(our_points(ours, method, src, target, eval_domain=ev), "p", p)
            theirs = pap[(pap["system"] == system) & (pap["metric"] == f"{side}_wer")]
            row |= {f"{side}_{k}": v for k, v in pair(theirs, mine).items()}
            points.append(mine)
        if pd.isna(row["source_ours_wer"]) or pd.isna(row["target_ours_wer"]):
            notes.append(f"No run of ours for “{esc(system)}” (p = {p_label(p)}%) on both test sets yet.")
        rows.append(row)
    table = pd.DataFrame(rows)
    overlay = _overlay_ok(
        [(list(table[f"{s}_paper_wer"]), list(table[f"{s}_ours_wer"].dropna())) for s in ("source", "target")]
    )
    fig, (axp,), (axo,) = _panels(1, overlay, (6.0, 4.0), run, [f"Forgetting, {nice(target)}"], sharex=False)
    for _, r in table.iterrows():
        c, m = COLORS[r["method"]], MARKERS[r["method"]]
        axp.plot(r["source_paper_wer"], r["target_paper_wer"], ls="none", marker=m, mfc="white", mec=c, mew=1.6,
                 ms=9, label=f"{r['system']}, paper")  # fmt: skip
        if pd.notna(r["source_ours_wer"]) and pd.notna(r["target_ours_wer"]):
            sx, sl, sh = r["source_ours_wer"], r["source_ours_ci_low"], r["source_ours_ci_high"]
            ty, tl, th = r["target_ours_wer"], r["target_ours_ci_low"], r["target_ours_ci_high"]
            axo.errorbar(sx, ty, xerr=[[sx - sl], [sh - sx]], yerr=[[ty - tl], [th - ty]], ls="none", marker=m,
                         color=c, ms=8, capsize=3, label=f"{r['system']}, ours")  # fmt: skip
    for ax in {id(a): a for a in (axp, axo)}.values():
        ax.set_ylabel(f"WER on the {nice(target)} test set (%)")
        ax.set_xlabel("WER on the source test set (%) · forgetting →")
    path = _finish(fig, "figure-3", out)
    return Made(path, table, notes, _notebooks(*points), overlay)


# --------------------------------------------------------------------------------------------- fragments


class Page:
    """Writes for a page in `page_dir` of the site: links are relative to that page."""

    def __init__(self, root: Path, page_dir: str):
        self.dir = root / page_dir

    def link(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.dir)).as_posix()


def _fence(text: str) -> str:
    return "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))


def raw_html(content: str) -> str:
    f = _fence(content)
    return f"{f}{{=html}}\n{content}\n{f}\n"


def callout(kind: str, text: str, title: str | None = None, collapse: bool = False) -> str:
    head = (f' title="{title}"' if title else "") + (' collapse="true"' if collapse else "")
    return f"::: {{.callout-{kind}{head}}}\n{text}\n:::\n"


def _attrs(**kw) -> str:
    return "".join(
        f' data-{k.replace("_", "-")}="{html.escape(str(v))}"' for k, v in kw.items() if v is not None
    )


def _ours_cell(r: dict, **kw) -> str:
    """Our WER in bold with its CI; `data-*` attributes for the tests."""
    if pd.isna(r["ours_wer"]):
        return '<td class="ours missing">—</td>'
    seeds = f" ({r['ours_seeds']} seeds)" if r["ours_seeds"] > 1 else ""
    ci = f"[{pct(r['ours_ci_low'])}, {pct(r['ours_ci_high'])}]{seeds}"
    attrs = _attrs(source="ours", wer=round(r["ours_wer"], 4), **kw)
    return f'<td class="ours"{attrs}><b>{pct(r["ours_wer"])}</b> <small>{ci}</small></td>'


def _paper_cell(value, **kw) -> str:
    if pd.isna(value):
        return '<td class="paper missing">—</td>'
    return f'<td class="paper"{_attrs(source="paper", **kw)}>{pct(value)}</td>'


def _table(attrs: str, head: str, rows: list[str]) -> str:
    table = f'<table class="table table-sm table-hover mbasr-compare"{attrs}><thead>{head}</thead><tbody>'
    return raw_html(f'<div class="table-responsive">{table}{"".join(rows)}</tbody></table></div>')


def _folded(attrs: str, head: str, rows: list[tuple[bool, str]]) -> str:
    """Rows with a point of ours first; the paper-only rows folded away below, still one click from view."""
    ours, theirs = [r for has, r in rows if has], [r for has, r in rows if not has]
    if not ours or not theirs:
        return _table(attrs, head, [r for _, r in rows])
    fold = _table(attrs, head, theirs)
    summary = f"{len(theirs)} more rows: the paper's points without a run of ours"
    return (
        _table(attrs, head, ours)
        + raw_html(f"<details><summary>{summary}</summary>")
        + fold
        + raw_html("</details>")
    )


def _split(r: pd.Series, prefix: str) -> dict:
    return {k.removeprefix(prefix): v for k, v in r.items() if k.startswith(prefix)}


def how_to_read(df: pd.DataFrame | None) -> str:
    """The tables' legend, with what our intervals are (one seed or several) read from the runs."""
    return (
        "WER in %. *paper*: the published value; *ours*: our WER **in bold** with its 95% confidence "
        f"interval [low, high]; — : no such point. {findings.intervals(df)}"
    )


def audio_share_table(made: Made, figure: str) -> str:
    head = (
        "<tr><th rowspan=2>target</th><th rowspan=2>audio share p (%)</th>"
        + "".join(f"<th colspan=2>{name}</th>" for name in METHOD_LABEL.values())
        + "</tr><tr>" + "<th>paper</th><th>ours</th>" * len(METHOD_LABEL) + "</tr>"
    )  # fmt: skip
    rows = []
    for _, r in made.table.iterrows():
        cells = f"<td>{esc(nice(r['target']))}</td><td>{p_label(r['p'])}</td>"
        for m in METHOD_LABEL:
            c, kw = _split(r, f"{m}_"), {"target": r["target"], "method": m, "p": r["p"]}
            cells += _paper_cell(c["paper_wer"], figure=c["paper_figure"], **kw) + _ours_cell(c, **kw)
        has = any(pd.notna(r[f"{m}_ours_wer"]) for m in METHOD_LABEL)
        rows.append((has, f"<tr>{cells}</tr>"))
    return _folded(_attrs(figure=figure), head, rows)


def tau_table(made: Made) -> str:
    head = "<tr><th>target-text share τ_t (%)</th><th>paper</th><th>ours</th></tr>"
    rows = []
    for _, r in made.table.iterrows():
        k = r["tau_t"]
        label = "base model" if pd.isna(k) else p_label(k)
        cells = f"<td>{label}</td>{_paper_cell(r['paper_wer'], figure=1, tau_t=k)}{_ours_cell(r)}"
        rows.append((pd.notna(r["ours_wer"]), f"<tr>{cells}</tr>"))
    return _folded(_attrs(figure=1), head, rows)


def forgetting_table(made: Made) -> str:
    head = (
        "<tr><th rowspan=2>system</th><th rowspan=2>p (%)</th><th colspan=2>source test WER</th>"
        "<th colspan=2>target test WER</th></tr><tr>" + "<th>paper</th><th>ours</th>" * 2 + "</tr>"
    )
    rows = []
    for _, r in made.table.iterrows():
        cells = f"<td>{html.escape(r['system'])}</td><td>{p_label(r['p'])}</td>"
        for side in ("source", "target"):
            c = _split(r, f"{side}_")
            cells += _paper_cell(
                c["paper_wer"], figure=3, system=r["system"], metric=f"{side}_wer"
            ) + _ours_cell(c)
        rows.append(f"<tr>{cells}</tr>")
    return _table(_attrs(figure=3), head, rows)


def headline(paper: pd.DataFrame, ours) -> str:
    """Banking: the base model, text-only adaptation, MB with about 10% of the audio (the paper's
    low-resource point nearest 10%; ours: our nearest share) and fine-tuning on all of it."""
    t, src = "banking", OUR_SOURCE["definedai"]
    low = paper[(paper["figure"] == "2-low") & (paper["target"] == t) & (paper["method"] == "mb")]
    p10 = float(low.loc[(low["p"] - 0.1).abs().idxmin(), "p"])
    rows = []
    for label, method, p, fig in (
        ("base model, no adaptation", "asr", 0.0, "2"),
        ("text-only adaptation (MB at p = 0)", "mb", 0.0, "2"),
        ("mixed batch with about 10% of the target audio", "mb", p10, "2-low"),
        ("standard fine-tuning on all the target audio", "asr", 1.0, "2"),
    ):
        sel = paper[(paper["figure"] == fig) & (paper["target"] == t) & (paper["method"] == method)]
        mine = our_points(ours, method, src, t)
        mine = mine[(mine["p"] > 0) == (p > 0)]
        mine = mine.loc[[(mine["p"] - p).abs().idxmin()]] if len(mine) else mine
        r, op = pair(_at(sel, "p", p), mine), (float(mine["p"].iloc[0]) if len(mine) else None)
        rows.append(
            f"<tr><td>{label}</td><td>{p_label(p)}</td>{_paper_cell(r['paper_wer'], figure=fig, p=p)}"
            f"<td>{'—' if op is None else p_label(op)}</td>{_ours_cell(r, p=op)}</tr>"
        )
    head = (
        "<tr><th>system (Banking target)</th><th>paper: p (%)</th><th>paper: WER</th><th>ours: p (%)</th>"
        "<th>ours: WER [95% CI]</th></tr>"
    )
    return _table(' id="headline"', head, rows)


def _show(v) -> str:
    """A claim's evidence as the JSON holds it: text, a number, a list or a mapping."""
    if isinstance(v, dict):
        return "<br>".join(f"{html.escape(str(k))}: {_show(x)}" for k, x in v.items())
    if isinstance(v, list):
        return "<br>".join(_show(x) for x in v)
    return html.escape(f"{v:.4g}" if isinstance(v, float) else str(v))


SYSTEM_LABEL = vocab.SHORT


def _point(e: dict) -> str:
    """One evidence point of claims.json as a line: `MB p=0.1 Agriculture: 90.33% [88.51, 92.20]`."""
    if not isinstance(e, dict) or not ({"wer", "wer_pct"} & set(e)):
        return _show(e)
    what = [SYSTEM_LABEL.get(str(e.get("system")), str(e.get("system", "")))]
    if e.get("system") not in ("base", "text_only") and e.get("p") is not None:
        what.append(f"p={e['p']:g}")
    if e.get("tau_t") is not None:
        what.append(f"{vocab.SYMBOL['tau_t']}={e['tau_t']:g}")
    where = nice(e.get("target", ""))
    scored = e.get("eval_domain") or ("source" if e.get("metric") == "source_wer" else None)
    if scored and scored != e.get("target"):
        where += f", scored on {nice(scored)}"
    if "wer" in e:
        value = f"{100 * e['wer']:.2f}%"
        if e.get("ci_low") is not None:
            value += f" [{100 * e['ci_low']:.2f}, {100 * e['ci_high']:.2f}]"
    else:
        value = f"{e['wer_pct']:.2f}%"
    return html.escape(f"{' '.join(what)} ({where}): {value}")


def _points(v) -> str:
    items = v if isinstance(v, list) else [v]
    return "<ul>" + "".join(f"<li>{_point(e)}</li>" for e in items) + "</ul>"


def _why(text) -> str:
    """The verdict's reasons, one item per target (claims.json joins them with '. ')."""
    parts = [p for p in re.split(r"\.\s+(?=[a-z_]+: )", str(text)) if p.strip()]
    if len(parts) < 2:
        return _show(vocab.humanize(text))
    return "<ul>" + "".join(f"<li>{html.escape(vocab.humanize(p.rstrip('.')))}</li>" for p in parts) + "</ul>"


def claims_table(results: Path) -> str:
    path = results / "claims.json"
    if not path.exists():
        text = "No `results/claims.json` yet: the verdicts come with the experiment runs."
        return callout("important", text, "No verdicts")
    rows = []
    for c in sorted(json.loads(path.read_text()), key=lambda c: c["claim"]):
        v = str(c["verdict"])
        if v not in VERDICT_CLASS:
            raise ValueError(f"{path}: claim {c['claim']}: verdict {v!r} is not one of {list(VERDICT_CLASS)}")
        badge = f'<span class="badge bg-{VERDICT_CLASS[v]}">{VERDICT_MARK[v]} {html.escape(v)}</span>'
        ours, paper = c.get("evidence", []), c.get("paper", [])
        n_ours, n_paper = (len(x) if isinstance(x, list) else 1 for x in (ours, paper))
        details = (
            f"<details><summary>{n_ours} of ours, {n_paper} of the paper's</summary>"
            f"<b>ours</b>{_points(ours)}<b>paper</b>{_points(paper)}</details>"
        )
        rows.append(
            f'<tr data-claim="{c["claim"]}" data-verdict="{html.escape(v)}"><td>{c["claim"]}</td>'
            f"<td>{_show(vocab.humanize(c['statement']))}</td><td>{badge}</td><td>{_why(c['why'])}</td><td>{details}</td></tr>"
        )
    head = "<tr><th>#</th><th>the paper claims</th><th>verdict</th><th>why</th><th>the numbers</th></tr>"
    return _table(' id="claims"', head, rows)


def status(run: dict | None, df: pd.DataFrame | None) -> str:
    if df is None or run is None:
        return callout(
            "important",
            "No run yet: `results/results.csv` is missing, so every figure shows the paper's numbers only. "
            "`bash scripts/main.sh` runs the default grid and writes it.",
            "No results",
        )
    made = f"{str(df['created'].min())[:10]} to {str(df['created'].max())[:10]}"
    text = (
        f"Our numbers: preset **{esc(run['preset'])}**, scale **{esc(run['scale'])}**, "
        f"{df['run_id'].nunique()} runs, made {esc(made)}."
    )
    if run["left_out"]:
        text += " Left out of the figures (another preset or scale): " + ", ".join(run["left_out"]) + "."
    return text + "\n"


def figure_section(
    page: Page, made: Made, table: str, csv: Path, results: Path, caption: str, alt: str, lead: str = ""
) -> str:
    """A figure page's generated part: its verdict line, the figure, what it lacks, its table, and its
    notebooks."""
    cls = ".column-page " if made.panels >= 3 else ""  # wide enough for three panels
    parts = [raw_html(lead)] if lead else []
    parts += [f'![{caption}]({page.link(made.figure)}){{{cls}fig-alt="{alt}"}}\n']
    if not made.overlay:
        parts.append(
            "Our WERs lie far from the paper's, so ours have their own row of panels rather than flattening "
            "the paper's curves: compare the shapes, and the numbers below.\n"
        )
    parts += [callout("warning", n) for n in made.notes]
    parts += [table, f"{how_to_read(made.ours)} [The table as CSV]({page.link(csv)}).\n"]
    if made.notebooks:
        items = []
        for name in made.notebooks:
            nb = results / "notebooks" / Path(name).name
            items.append(
                f"- [{esc(nb.stem)}]({page.link(nb)})"
                if nb.exists()
                else f"- {esc(nb.name)} (not in `results/notebooks/`)"
            )
        title = f"The executed notebooks behind these runs ({len(items)})"
        parts.append(callout("note", "\n".join(items), title, collapse=True))
    return "\n".join(parts)


# ------------------------------------------------------------------------------------ notebooks as pages

SKIP_TAGS = {"parameters", "injected-parameters", "remove-cell", "remove-output"}
IMAGE_EXT = {"image/svg+xml": "svg", "image/png": "png", "image/jpeg": "jpg"}


def _joined(v) -> str:
    """A notebook field, which may be stored as a list of lines, as one string."""
    return "".join(v) if isinstance(v, list) else v


def _cell_options(src: str) -> dict:
    opts = [line[2:].strip() for line in src.split("\n") if line.startswith("#|")]
    try:
        parsed = yaml.safe_load("\n".join(opts)) if opts else {}
    except yaml.YAMLError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _output(out: dict, opts: dict, picture, page: Page, media) -> str | None:
    """One saved output as Markdown; a picture is written to the file `picture(ext)` names, and shown;
    `media` turns an HTML output's audio into links to files. Text from data is escaped (`mbasr.report.safe`)."""
    kind = out.get("output_type")
    if kind == "stream":
        text = _joined(out.get("text", "")).rstrip()
        return (
            f"{_fence(text)}text\n{text}\n{_fence(text)}\n" if out.get("name") == "stdout" and text else None
        )
    if kind == "error":
        text = f"{out.get('ename')}: {out.get('evalue')}"
        return callout("warning", f"The cell raised an error:\n\n{_fence(text)}text\n{text}\n{_fence(text)}")
    data = {m: _joined(v) for m, v in (out.get("data") or {}).items()}
    image = next((m for m in IMAGE_EXT if m in data), None)
    if image:
        f, k = picture(IMAGE_EXT[image])
        f.write_bytes(data[image].encode() if image == "image/svg+xml" else base64.b64decode(data[image]))
        caps = opts.get("fig-cap")
        cap = caps[k] if isinstance(caps, list) and k < len(caps) else caps if isinstance(caps, str) else ""
        alt = str(opts.get("fig-alt") or cap or "a figure of the notebook").replace('"', "'")
        return f'![{cap}]({page.link(f)}){{fig-alt="{alt}"}}\n'
    if "text/html" in data:  # tables and audio players, rebuilt from an allow-list; audio as files
        value = media(safe.html_output(data["text/html"]))
        return raw_html(f'<div class="cell-output-display" style="overflow-x:auto">\n{value}\n</div>')
    if "text/markdown" in data:
        return safe.markdown_output(data["text/markdown"]) + "\n"
    if "text/plain" in data:
        return f"{_fence(data['text/plain'])}text\n{data['text/plain']}\n{_fence(data['text/plain'])}\n"
    return None


def notebook_fragment(nb_path: Path, page: Page, asset_dir: Path) -> str:
    """A notebook's narrative and saved outputs as Markdown, without its code (what Quarto's `embed`
    shows): markdown cells with headings one level down (its title dropped: the page has one), pictures
    written to `asset_dir` as figures with the cell's `fig-cap`/`fig-alt`, HTML (tables, audio players) as
    raw HTML, text as code blocks; stderr (progress bars, warnings) left out."""
    nb = json.loads(nb_path.read_text())
    asset_dir.mkdir(parents=True, exist_ok=True)
    files = nb_path.parent / "media"  # where mbasr.report.nbtidy puts a notebook's audio

    def media(value: str) -> str:
        value = value.replace('src="media/', f'src="{page.link(files)}/')
        return audio_to_files(value, files, page.link(files))

    parts, first = [], True
    for i, cell in enumerate(nb.get("cells", [])):
        src = _joined(cell.get("source", ""))
        if set((cell.get("metadata") or {}).get("tags") or []) & SKIP_TAGS:
            continue
        if cell["cell_type"] == "markdown":
            text = re.sub(r"\A\s*# [^\n]*\n?", "", src) if first else src
            first = False
            parts.append(re.sub(r"^(#{1,5}) ", r"#\1 ", text, flags=re.M).strip() + "\n")
            continue
        opts = _cell_options(src) if cell["cell_type"] == "code" else {"include": False}
        if opts.get("include") is False or opts.get("output") is False:
            continue
        shown: list[Path] = []

        def picture(ext: str, i=i, shown=shown) -> tuple[Path, int]:  # the cell's next picture, its index
            shown.append(asset_dir / f"{nb_path.stem}-cell{i}-{len(shown)}.{ext}")
            return shown[-1], len(shown) - 1

        parts += [md for out in cell.get("outputs", []) if (md := _output(out, opts, picture, page, media))]
    return "\n".join(parts)


def notebooks_fragment(results: Path, page: Page) -> str:
    """The executed notebooks of the run: a link to each, and the papermill command that reruns it with
    the parameters it ran with."""
    nbs = sorted((results / "notebooks").glob("*.ipynb"))
    if not nbs:
        return callout("important", "No executed notebook in `results/notebooks/` yet.", "No notebooks")
    out = []
    for nb_path in nbs:
        meta = (json.loads(nb_path.read_text()).get("metadata") or {}).get("papermill") or {}
        src = "notebooks/" + Path(meta.get("input_path") or nb_path.name).name
        args = [
            f"-y {shlex.quote(f'{k}: {json.dumps(v)}')}" if isinstance(v, (dict, list)) or v is None else f"-p {k} {shlex.quote(str(v))}"
            for k, v in (meta.get("parameters") or {}).items()
        ]  # fmt: skip
        took = f" · ran {meta['duration']:.0f} s" if isinstance(meta.get("duration"), (int, float)) else ""
        cmd = " \\\n    ".join([f"papermill {src} /tmp/{nb_path.name}", *args])
        fence = _fence(cmd)
        out.append(
            f"### [{esc(nb_path.stem)}]({page.link(nb_path)})\n\nFrom {esc(src)}{took}.\n\n{fence}bash\n{cmd}\n{fence}\n"
        )
    return "\n".join(out)


# ------------------------------------------------------------------------------------- presets and costs


def presets() -> dict[str, dict]:
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted(PRESET_DIR.glob("*.yaml"))}


def _model(d: dict) -> str:
    if d.get("hub_id"):
        return f"`{d['hub_id']}`"
    return f"{d['scratch']['n_layers']} layers x {d.get('dim') or d.get('hidden')}, trained in stage 0"


def _costs(results: Path) -> dict[str, str]:
    """Per preset, from the result records: runs, median training time, total time."""
    by: dict[str, list[dict]] = {}
    for p in sorted((results / "records").glob("*.json")):
        rec = json.loads(p.read_text())
        by.setdefault(str(rec.get("preset")), []).append(rec.get("seconds") or {})
    return {
        preset: f"{len(secs)} runs; training {np.median([s.get('train') or 0 for s in secs]) / 60:.1f} min a run "
        f"(median); {sum(s.get('total') or s.get('train') or 0 for s in secs) / 3600:.2f} h in all"
        for preset, secs in by.items()
    }


def presets_fragment(results: Path) -> str:
    """The presets (model and stage-2 budget), what our runs of each cost (from the result records), and
    each preset's deviations from the paper (its `deviations:`)."""
    cost = _costs(results)
    rows = ["| preset | encoder → LLM | stage 2 (LoRA) | our runs |", "| --- | --- | --- | --- |"]
    dev = ["| preset | deviation from the paper, and how to restore the paper's setting |", "| --- | --- |"]
    for name, p in presets().items():
        s2 = p["stage2"]
        budget = f"{s2['steps']} steps" if s2.get("steps") else f"{s2['epochs']} epochs"
        rows.append(
            f"| `{name}` | {_model(p['encoder'])} → {_model(p['llm'])}, {p['precision']} | {budget}, batch "
            f"{s2['batch_size']}, lr {s2['lr']:g} | {cost.get(name, 'none in `results/records/`')} |"
        )
        dev += [
            f"| `{name}` | {str(d).replace('|', '/')} |"
            for d in p["deviations"] or ["none: the paper's setting"]
        ]
    return (
        "\n".join(rows)
        + "\n\n"
        + search_fragment(results)
        + "\n### Deviations from the paper\n\n"
        + "\n".join(dev)
        + "\n"
    )


def search_fragment(results: Path) -> str:
    """The stage-2 learning-rate search (`results/search.json`, mbasr/study/search.py): each strategy's dev WER
    per candidate lr and the lr its runs use."""
    path = results / "search.json"
    if not path.exists():
        return (
            "### Stage-2 learning rates\n\nNo `results/search.json`: no learning-rate search was published "
            'with these runs (README.md, "The learning-rate search").\n'
        )
    s = json.loads(path.read_text())
    lrs = s["config"]["lrs"]
    dev = esc(", ".join(f"{nice(d['domain'])} {d['split']}" for d in s["dev_sets"]))
    head = "| strategy | " + " | ".join(f"lr {lr:g}" for lr in lrs) + " | chosen |"
    rows = [head, "| --- |" + " --- |" * (len(lrs) + 1)]
    for strategy, v in s["strategies"].items():
        by = {c["lr"]: c for c in v["candidates"]}
        cells = []
        for lr in lrs:
            c = by.get(lr)
            text = "—" if c is None else f"{100 * c['dev_wer']:.2f}"
            if c is not None and c.get("ci_low") is not None:
                text += f" [{100 * c['ci_low']:.2f}, {100 * c['ci_high']:.2f}]"
            cells.append(f"**{text}**" if c is not None and lr == v["chosen_lr"] else text)
        edge = " (an end of the range)" if v.get("at_edge") else ""
        rows.append(
            f"| {SYSTEM_LABEL.get(strategy, strategy)} | "
            + " | ".join(cells)
            + f" | {v['chosen_lr']:g}{edge} |"
        )
    return (
        f"### Stage-2 learning rates, chosen on a dev set\n\nDev WER (%) [95% CI] on {dev} after "
        f"{s['steps']} steps, the same candidates for every strategy; the rule: {s['rule']}.\n\n"
        + "\n".join(rows)
        + "\n"
    )


# ------------------------------------------------------------------------------------------------- build


def build(results_dir: str | Path, paper_csv: str | Path = PAPER_CSV) -> list[Path]:
    """Write every figure, table and page fragment of the site for `results_dir` (see the module
    docstring); the site's root is the folder above it. Returns the files written."""
    results = Path(results_dir).resolve()
    paper, df, run = load_paper(paper_csv), load_results(results), None
    if df is not None and len(df):
        df, run = main_run(df)
    else:
        df = None
    drawn_as = run or {"preset": "none", "scale": "none", "left_out": []}
    site = Page(results.parent, "site")
    frag: dict[str, str] = {}
    written: list[Path] = []

    claims = findings.load_claims(results)

    def figure(name: str, made: Made, table: str, caption: str, alt: str) -> None:
        csv = results / "tables" / f"{name}.csv"
        csv.parent.mkdir(parents=True, exist_ok=True)
        made.table.to_csv(csv, index=False)
        made.ours = df
        lead = findings.figure_verdict(claims, name.removeprefix("figure-"))
        frag[name] = figure_section(site, made, table, csv, results, caption, alt, lead)
        written.extend([made.figure, csv])

    style = "the paper dashed with hollow markers, ours solid with filled markers and 95% CI bars"
    made = tau_sweep(paper, df, results, drawn_as)
    figure("figure-1", made, tau_table(made), "Figure 1 redrawn: text-only adaptation on Banking, WER against "
           "the target-text share τ_t.", f"WER on the Banking test set against the target-text share; {style}.")  # fmt: skip
    for figs, name, caption in (
        (("2", "2-low"), "figure-2", "Figure 2 redrawn: WER against the share p of target audio, mixed batch "
                                     "against standard fine-tuning."),
        (("4",), "figure-4", "Figure 4 redrawn (appendix): the Insurance and Animation targets."),
        (("5",), "figure-5", "Figure 5 redrawn (arXiv appendix): the SlideSpeech Life/Talent/English source."),
    ):  # fmt: skip
        yours = your_targets(paper, df) if name == "figure-2" else ()  # the main figure gains their panels
        made = audio_share(paper, df, figs, results, drawn_as, yours)
        alt = f"WER against the target audio share p, one panel per target; {style}."
        figure(name, made, audio_share_table(made, figs[0]), caption, alt)
    made = forgetting(paper, df, results, drawn_as)
    figure("figure-3", made, forgetting_table(made), "Figure 3 redrawn: source against target WER on Banking "
           "(lower left is better).", f"Source-domain WER against Banking WER for four systems; {style}.")  # fmt: skip

    frag["home"] = home_fragment(results, paper, df, run, claims)
    gap_nb = results / "notebooks" / "08_modality_gap.ipynb"
    frag["modality-gap-teach"], frag["modality-gap-conclusion"] = teaching(results, site, gap_nb)
    for name, nb, what in (
        ("modality-gap", "08_modality_gap.ipynb", "the modality-gap notebook"),
        ("data", "01_data_prep.ipynb", "the data-preparation notebook"),
    ):
        path = results / "notebooks" / nb
        if path.exists():
            body = notebook_fragment(path, site, results / "figures" / "notebooks")
            frag[name] = f"*From the executed notebook [{esc(path.stem)}]({site.link(path)}).*\n\n{body}"
        else:
            text = (
                f"`results/notebooks/{nb}` is missing: {what} has not run yet, so this page has no content."
            )
            frag[name] = callout("important", text, "Not run yet")
    frag["reproduce"] = presets_fragment(results)
    frag["notebooks"] = notebooks_fragment(results, site)
    for name, text in frag.items():
        path = results / "report" / f"{name}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.rstrip() + "\n")
        written.append(path)
    return written


def teaching(results: Path, page: Page, nb: Path) -> str:
    """The modality-gap page's diagrams (the system; the batch at p = 0.1, tau = 0.5, from the sampler's
    own shares) as files, and its conclusion from notebook 08's numbers."""
    out = results / "figures"
    out.mkdir(parents=True, exist_ok=True)
    (out / "system.svg").write_text(diagrams.system_svg())
    (out / "batch.svg").write_text(diagrams.batch_svg(0.1, MB_TAU))
    parts = [
        f"![The system: speech passes the encoder and the projector into the prompt's speech slot; text-only "
        f'items put token embeddings in the same slot.]({page.link(out / "system.svg")}){{fig-alt="A diagram: '
        f"speech, encoder, projector, speech slot, LLM with LoRA, transcript; corrupted text, token embeddings, "
        f'the same slot"}}\n',
        f"![The five components of a mixed batch, their shares from the sampler (mbasr.method.mixed_batch).]"
        f'({page.link(out / "batch.svg")}){{fig-alt="A bar split into the five shares of a mixed batch"}}\n',
    ]
    gap = diagrams.layer_gap(nb) if nb.exists() else None
    return "\n".join(parts), diagrams.conclusion(gap)


def home_fragment(results: Path, paper: pd.DataFrame, df, run, claims: list[dict]) -> str:
    """Home: what we found (generated), links to the paper and the authors' code, the headline, the
    verdicts, the limitations, the commit and the citation."""
    home = Page(results.parent, ".")
    links = {
        "deviations": "site/reproduce.qmd#deviations-from-the-paper",
        "figure": "site/figure-2.qmd",
        "thumbnail": home.link(results / "figures" / "figure-2.svg"),
    }
    refs = (
        f"[The paper (arXiv 2604.06487)]({findings.PAPER_URL}) · "
        f"[The authors' code (idiap/llm-asr-text-only-adaptation)]({findings.CODE_URL})\n"
    )
    parts = [refs]
    if df is not None and run is not None:
        parts += [findings.what_we_found(claims, df, run, presets(), paper, links)]
    parts += [status(run, df), "## Headline: Banking, the paper's and ours\n", headline(paper, df),
              how_to_read(df) + "\n", "## The claims and our verdicts\n", claims_table(results)]  # fmt: skip
    if df is not None and run is not None:
        parts += [findings.limitations(df, run, paper, OUR_TARGETS), findings.commit_line(df) + "\n"]
        parts += [findings.citation(findings.versions(df)[0][0])]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mbasr report", description=__doc__.split("\n\n")[0])
    ap.add_argument("results_dir", help="the results folder (results.csv, claims.json, records/, notebooks/)")
    ap.add_argument("--paper", default=str(PAPER_CSV), help="the paper's published numbers (CSV)")
    args = ap.parse_args(argv)
    written = build(args.results_dir, args.paper)
    print(f"[report] wrote {len(written)} files under {args.results_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
