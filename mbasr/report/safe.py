"""Strings from data on a page, shown as text and never run.

Notebook outputs carry users' text (transcripts, keys, domain names of an imported domain) in HTML
tables, Markdown and error messages. `html_output` rebuilds an HTML output from an allow-list: tables are
re-made cell by cell from their text (rounded, labelled, without a 0, 1, 2 index), audio players keep only
a `src` that is a file or a data URI of audio, and anything else shows as its literal text.
`markdown_output` keeps Markdown's emphasis but no raw HTML.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from mbasr.vocab import humanize

MEDIA = {"audio", "source"}
TABLE = {"table", "thead", "tbody", "tr", "th", "td"}
IGNORED = {"div", "style", "span", "br", "caption"}  # layout around pandas tables, dropped with no text
_FLOAT = re.compile(r"-?\d+\.\d{4,}")


def _safe_src(src: str | None) -> str | None:
    if not src:
        return None
    if (
        src.startswith("data:audio/")
        or re.fullmatch(r"[\w./-]+\.(wav|mp3|ogg|flac)", src)
        and ".." not in src
    ):
        return src
    return None


def _cell_text(text: str, label: bool) -> str:
    """A cell for people: numbers to 4 significant digits; labels (headers) without raw ids."""
    text = _FLOAT.sub(lambda m: f"{float(m.group()):.4g}", " ".join(text.split()))
    return humanize(text) if label else text


class _Rebuild(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.table: dict | None = None  # {"head": rows, "body": rows}; a row is [(tag, span attrs, text)]
        self.section, self.cell, self.skip = "body", None, 0
        self.tables: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "style":
            self.skip += 1
        elif tag == "table":
            self.table, self.section = {"head": [], "body": []}, "body"
        elif self.table is not None and tag in {"thead", "tbody"}:
            self.section = "head" if tag == "thead" else "body"
        elif self.table is not None and tag == "tr":
            self.table[self.section].append([])
        elif self.table is not None and tag in {"th", "td"}:
            spans = {k: a[k] for k in ("colspan", "rowspan") if (a.get(k) or "").isdigit()}
            self.cell = [tag, spans, ""]
        elif tag == "audio":
            self.out.append('<audio controls="controls">')
        elif tag == "source" and (src := _safe_src(a.get("src"))):
            kind = a.get("type") if re.fullmatch(r"audio/[\w.+-]+", a.get("type") or "") else None
            self.out.append(f'<source src="{html.escape(src)}"' + (f' type="{kind}"' if kind else "") + ">")
        elif tag not in TABLE | MEDIA | IGNORED:
            self.handle_data(self.get_starttag_text() or "")

    def handle_endtag(self, tag):
        if tag == "style":
            self.skip = max(0, self.skip - 1)
        elif tag in {"th", "td"} and self.cell is not None and self.table is not None:
            if not self.table[self.section]:
                self.table[self.section].append([])
            self.table[self.section][-1].append(tuple(self.cell))
            self.cell = None
        elif tag == "table" and self.table is not None:
            self.tables.append(self.table)
            self.out.append(render_table(self.table))
            self.table = None
        elif tag == "audio":
            self.out.append("</audio>")
        elif tag not in TABLE | MEDIA | IGNORED:
            self.handle_data(f"</{tag}>")

    def handle_data(self, data):
        if self.skip:
            return
        if self.cell is not None:
            self.cell[2] += data
        elif self.table is None and data.strip():
            self.out.append(html.escape(data))


def _range_index(head: list[list[tuple]], body: list[list[tuple]]) -> bool:
    """Whether every body row opens with a header cell 0, 1, 2, ... under a blank header: pandas' default
    index, without a name (a named index, such as `layer`, says something and stays)."""
    if any(row and row[0][2].strip() for row in head):
        return False
    firsts = [row[0] for row in body if row]
    return bool(firsts) and all(c[0] == "th" and c[2].strip() == str(i) for i, c in enumerate(firsts))


def render_table(table: dict) -> str:
    head, body = table["head"], table["body"]
    if _range_index(head, body):
        head = [row[1:] for row in head]
        body = [row[1:] for row in body]
    head = [row for row in head if any(c[2].strip() for c in row)]

    def row(cells, in_head: bool) -> str:
        out = []
        for tag, spans, text in cells:
            attrs = "".join(f' {k}="{v}"' for k, v in spans.items())
            out.append(f"<{tag}{attrs}>{html.escape(_cell_text(text, in_head or tag == 'th'))}</{tag}>")
        return "<tr>" + "".join(out) + "</tr>"

    return (
        '<table class="table table-sm table-hover">'
        + ("<thead>" + "".join(row(r, True) for r in head) + "</thead>" if head else "")
        + "<tbody>"
        + "".join(row(r, False) for r in body)
        + "</tbody></table>"
    )


def html_output(value: str) -> str:
    """An HTML output rebuilt from the allow-list (see the module docstring)."""
    p = _Rebuild()
    p.feed(value)
    p.close()
    if p.table is not None:  # an unclosed table still shows what it held
        p.out.append(render_table(p.table))
    return "\n".join(p.out)


def markdown_output(text: str) -> str:
    """Markdown from data with its HTML shown as text: `<`, `>` and `&` as entities."""
    return html.escape(text, quote=False)


def table_rows(value: str) -> list[list[str]]:
    """The rows (header rows first) of the first table of an HTML output, as the cells' texts."""
    p = _Rebuild()
    p.feed(value)
    if not p.tables:
        return []
    t = p.tables[0]
    return [[" ".join(c[2].split()) for c in row] for row in t["head"] + t["body"]]
