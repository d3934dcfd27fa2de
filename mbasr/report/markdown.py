"""Markdown and HTML pieces of the report's pages: escaping, numbers as the tables show them, links relative
to a page, callouts, and the paper-beside-ours comparison tables."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import pandas as pd


def esc(text) -> str:
    """Text from data (domain names, file names, messages) for a Markdown or HTML page: shown, never run."""
    return html.escape(str(text))


def pct(x: float | None) -> str:
    return "" if x is None or pd.isna(x) else f"{x:.2f}"


def p_label(p: float) -> str:
    """A share as the paper writes it, in percent: 0.0011 -> `0.11`, 0.2 -> `20`."""
    return f"{round(100 * float(p), 4):g}"


class Page:
    """Writes for a page in `page_dir` of the site: links are relative to that page."""

    def __init__(self, root: Path, page_dir: str):
        self.dir = root / page_dir

    def link(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.dir)).as_posix()


def fence(text: str) -> str:
    return "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))


def raw_html(content: str) -> str:
    f = fence(content)
    return f"{f}{{=html}}\n{content}\n{f}\n"


def callout(kind: str, text: str, title: str | None = None, collapse: bool = False) -> str:
    head = (f' title="{title}"' if title else "") + (' collapse="true"' if collapse else "")
    return f"::: {{.callout-{kind}{head}}}\n{text}\n:::\n"


def data_attrs(**kw) -> str:
    return "".join(
        f' data-{k.replace("_", "-")}="{html.escape(str(v))}"' for k, v in kw.items() if v is not None
    )


def ours_cell(r: dict, **kw) -> str:
    """Our WER in bold with its CI; `data-*` attributes for the tests."""
    if pd.isna(r["ours_wer"]):
        return '<td class="ours missing">—</td>'
    seeds = f" ({r['ours_seeds']} seeds)" if r["ours_seeds"] > 1 else ""
    ci = f"[{pct(r['ours_ci_low'])}, {pct(r['ours_ci_high'])}]{seeds}"
    attrs = data_attrs(source="ours", wer=round(r["ours_wer"], 4), **kw)
    return f'<td class="ours"{attrs}><b>{pct(r["ours_wer"])}</b> <small>{ci}</small></td>'


def paper_cell(value, **kw) -> str:
    if pd.isna(value):
        return '<td class="paper missing">—</td>'
    return f'<td class="paper"{data_attrs(source="paper", **kw)}>{pct(value)}</td>'


def html_table(attrs: str, head: str, rows: list[str]) -> str:
    table = f'<table class="table table-sm table-hover mbasr-compare"{attrs}><thead>{head}</thead><tbody>'
    return raw_html(f'<div class="table-responsive">{table}{"".join(rows)}</tbody></table></div>')


def folded_table(attrs: str, head: str, rows: list[tuple[bool, str]]) -> str:
    """Rows with a point of ours first; the paper-only rows folded away below, still one click from view."""
    ours, theirs = [r for has, r in rows if has], [r for has, r in rows if not has]
    if not ours or not theirs:
        return html_table(attrs, head, [r for _, r in rows])
    fold = html_table(attrs, head, theirs)
    summary = f"{len(theirs)} more rows: the paper's points without a run of ours"
    return (
        html_table(attrs, head, ours)
        + raw_html(f"<details><summary>{summary}</summary>")
        + fold
        + raw_html("</details>")
    )
