"""The report's generated tables and figure sections: each figure's numbers (the paper's beside ours, with
our 95% CIs), the Banking headline, the claims with their verdicts, and the run's status line."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd

from mbasr import vocab
from mbasr.report import findings
from mbasr.report.draw import METHOD_LABEL, Made
from mbasr.report.markdown import (
    Page,
    callout,
    data_attrs,
    esc,
    folded_table,
    html_table,
    ours_cell,
    p_label,
    paper_cell,
    raw_html,
)
from mbasr.report.series import at_value, our_points, pair
from mbasr.vocab import domain as nice

VERDICT_CLASS = {"held": "success", "not held": "danger", "inconclusive": "secondary"}
VERDICT_MARK = {"held": "✓", "not held": "✗", "inconclusive": "?"}


def by_prefix(r: pd.Series, prefix: str) -> dict:
    return {k.removeprefix(prefix): v for k, v in r.items() if k.startswith(prefix)}


def how_to_read(df: pd.DataFrame | None) -> str:
    """The tables' legend, with what our intervals are (one seed or several) read from the runs."""
    return (
        "WER in %. *paper*: the published value; *ours*: our WER **in bold** with its 95% confidence "
        f"interval [low, high]; — : no such point. {findings.intervals(df)}"
    )


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


def figure_1_table(made: Made) -> str:
    head = "<tr><th>target-text share τ_t (%)</th><th>paper</th><th>ours</th></tr>"
    rows = []
    for _, r in made.table.iterrows():
        k = r["tau_t"]
        label = "base model" if pd.isna(k) else p_label(k)
        cells = f"<td>{label}</td>{paper_cell(r['paper_wer'], figure=1, tau_t=k)}{ours_cell(r)}"
        rows.append((pd.notna(r["ours_wer"]), f"<tr>{cells}</tr>"))
    return folded_table(data_attrs(figure=1), head, rows)


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
            c, kw = by_prefix(r, f"{m}_"), {"target": r["target"], "method": m, "p": r["p"]}
            cells += paper_cell(c["paper_wer"], figure=c["paper_figure"], **kw) + ours_cell(c, **kw)
        has = any(pd.notna(r[f"{m}_ours_wer"]) for m in METHOD_LABEL)
        rows.append((has, f"<tr>{cells}</tr>"))
    return folded_table(data_attrs(figure=figure), head, rows)


def figure_3_table(made: Made) -> str:
    head = (
        "<tr><th rowspan=2>system</th><th rowspan=2>p (%)</th><th colspan=2>source test WER</th>"
        "<th colspan=2>target test WER</th></tr><tr>" + "<th>paper</th><th>ours</th>" * 2 + "</tr>"
    )
    rows = []
    for _, r in made.table.iterrows():
        cells = f"<td>{html.escape(r['system'])}</td><td>{p_label(r['p'])}</td>"
        for side in ("source", "target"):
            c = by_prefix(r, f"{side}_")
            cells += paper_cell(
                c["paper_wer"], figure=3, system=r["system"], metric=f"{side}_wer"
            ) + ours_cell(c)
        rows.append(f"<tr>{cells}</tr>")
    return html_table(data_attrs(figure=3), head, rows)


def headline(paper: pd.DataFrame, ours) -> str:
    """Banking: the base model, text-only adaptation, MB with about 10% of the audio (the paper's
    low-resource point nearest 10%; ours: our nearest share) and fine-tuning on all of it."""
    t, src = "banking", vocab.OUR_SOURCE[vocab.PAPER_SOURCE]
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
        r, op = pair(at_value(sel, "p", p), mine), (float(mine["p"].iloc[0]) if len(mine) else None)
        rows.append(
            f"<tr><td>{label}</td><td>{p_label(p)}</td>{paper_cell(r['paper_wer'], figure=fig, p=p)}"
            f"<td>{'—' if op is None else p_label(op)}</td>{ours_cell(r, p=op)}</tr>"
        )
    head = (
        "<tr><th>system (Banking target)</th><th>paper: p (%)</th><th>paper: WER</th><th>ours: p (%)</th>"
        "<th>ours: WER [95% CI]</th></tr>"
    )
    return html_table(' id="headline"', head, rows)


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
    return html_table(' id="claims"', head, rows)


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
