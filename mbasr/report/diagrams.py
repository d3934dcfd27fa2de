"""The modality-gap page's teaching pictures, drawn as SVG from the code's own numbers: the
system (encoder -> projector -> the LLM's prompt slot, where text-only adaptation puts token embeddings
instead), the five-component batch with the shares `mbasr.method.mixed_batch.resolve_shares` gives, and the
page's conclusion from the layer-by-layer gap of the executed notebook 08."""

from __future__ import annotations

import html
import json
from pathlib import Path

from mbasr import vocab
from mbasr.method.mixed_batch import resolve_shares
from mbasr.report import safe

# Okabe-Ito: source components in greys and oranges, target components in blues
COMPONENT = {
    "sigma_a": ("source audio", "#999999"),
    "sigma_ta": ("projector-induced noise", "#E69F00"),
    "sigma_t": ("synthetic noise (source text)", "#F0E442"),
    "tau_a": ("target audio", "#0072B2"),
    "tau_t": ("target text (corrupted)", "#56B4E9"),
}


def _box(x, y, w, h, text, fill="#fff", stroke="#333") -> str:
    return (
        f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" fill="{fill}" stroke="{stroke}"/>'
        f'<text x="{x + w / 2}" y="{y + h / 2 + 5}" text-anchor="middle" font-size="12">{html.escape(text)}</text>'
    )


def _arrow(x1, y1, x2, y2, dashed=False) -> str:
    dash = ' stroke-dasharray="5 4"' if dashed else ""
    return f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#333" marker-end="url(#a)"{dash}/>'


def system_svg() -> str:
    """Speech: encoder -> projector -> the slot in the LLM's prompt; text-only: corrupted transcript ->
    token embeddings -> the same slot."""
    parts = [
        _box(10, 20, 110, 40, "speech"),
        _box(150, 20, 120, 40, "encoder (frozen)"),
        _box(300, 20, 130, 40, "projector (frozen)"),
        _box(10, 120, 110, 40, "corrupted text"),
        _box(150, 120, 280, 40, "token embeddings (the LLM's own table)"),
        _box(480, 60, 170, 60, "speech slot of the prompt", "#eef5fb", "#0072B2"),
        _box(690, 60, 150, 60, "LLM + LoRA", "#fdf1e6", "#D55E00"),
        _box(870, 60, 100, 60, "transcript"),
        _arrow(120, 40, 148, 40),
        _arrow(270, 40, 298, 40),
        _arrow(430, 40, 478, 75),
        _arrow(120, 140, 148, 140, True),
        _arrow(430, 140, 478, 105, True),
        _arrow(650, 90, 688, 90),
        _arrow(840, 90, 868, 90),
        '<text x="10" y="195" font-size="13" fill="#555">solid: audio items · dashed: text-only items, '
        "which never pass the projector: the modality gap</text>",
    ]
    return _svg(980, 205, parts)


def batch_svg(p: float, tau: float) -> str:
    """One mixed batch as a bar split into its five shares, for audio share p and target share tau."""
    shares = resolve_shares("mixed", p, tau)
    x, parts = 10.0, []
    for i, (name, (label, colour)) in enumerate(COMPONENT.items()):
        w = 900 * getattr(shares, name)
        parts.append(f'<rect x="{x:.1f}" y="40" width="{w:.1f}" height="50" fill="{colour}" stroke="#fff"/>')
        share = f"{vocab.SYMBOL[name]} = {100 * getattr(shares, name):.1f}%"
        y = 115 + 22 * (i % 2)
        parts.append(f'<text x="{x + w / 2:.1f}" y="{y}" text-anchor="middle" font-size="13">{share}</text>')
        parts.append(
            f'<text x="{x + w / 2:.1f}" y="{y + 44}" text-anchor="middle" font-size="12" fill="#444">'
            f"{html.escape(label)}</text>"
        )
        x += w
    title = (
        f"A mixed batch at p = {vocab.number(p)}, τ = {vocab.number(tau)}: source items (1 − τ) on the left, "
        "target items (τ) on the right"
    )
    parts.insert(0, f'<text x="10" y="25" font-size="14">{html.escape(title)}</text>')
    return _svg(920, 200, parts)


def _svg(w: int, h: int, parts: list[str]) -> str:
    marker = (
        '<defs><marker id="a" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        f'font-family="sans-serif" font-size="14">{marker}{"".join(parts)}</svg>\n'
    )


def layer_gap(nb_path: Path) -> dict[str, float] | None:
    """{system: cosine distance at the LLM's last layer} from notebook 08's layer-by-layer table (the
    cell that pivots `gap`); None when the notebook has no such table."""
    nb = json.loads(nb_path.read_text())
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "".join(cell.get("source", "")).startswith("gap.pivot("):
            for out in cell.get("outputs", []):
                value = "".join((out.get("data") or {}).get("text/html", ""))
                rows = safe.table_rows(value)
                if len(rows) >= 3:
                    names, last = rows[0][1:], rows[-1][1:]
                    return {n: float(v) for n, v in zip(names, last, strict=False)}
    return None


def conclusion(gap: dict[str, float] | None) -> str:
    if not gap or len(gap) < 2:
        return ""
    (base, b), *adapted = gap.items()
    said = " and ".join(f"{v:.3f} after {html.escape(n)}" for n, v in adapted)
    closer = [n for n, v in adapted if v < b]
    verdict = (
        f"so adaptation moved the LLM's reading of speech towards its reading of text ({html.escape(', '.join(closer))})"
        if closer
        else "so adaptation did not bring the two readings closer"
    )
    best = min(adapted, key=lambda x: x[1])
    return (
        f"**What this run shows.** At the LLM's last layer, the cosine distance between the hidden states "
        f"for speech and for the same words as text is {b:.3f} for the {html.escape(base)} model, against "
        f"{said}: {verdict}; the smallest gap is {html.escape(best[0])}'s. The input itself "
        "(projector and embedding table) is unchanged by stage 2, so the gap that adaptation narrows is "
        "the one inside the LLM, where LoRA acts."
    )
