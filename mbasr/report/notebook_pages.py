"""Executed notebooks as pages of the report: a notebook's narrative and saved outputs as Markdown (no
code, no progress bars), the list of executed notebooks with the papermill command that reruns each, and
the modality-gap page's diagrams and conclusion."""

from __future__ import annotations

import base64
import json
import re
import shlex
from pathlib import Path

import yaml

from mbasr.report import diagrams, safe
from mbasr.report.markdown import Page, callout, esc, fence, raw_html
from mbasr.report.nbtidy import audio_to_files
from mbasr.vocab import MB_TAU

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
        return f"{fence(text)}text\n{text}\n{fence(text)}\n" if out.get("name") == "stdout" and text else None
    if kind == "error":
        text = f"{out.get('ename')}: {out.get('evalue')}"
        return callout("warning", f"The cell raised an error:\n\n{fence(text)}text\n{text}\n{fence(text)}")
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
        return f"{fence(data['text/plain'])}text\n{data['text/plain']}\n{fence(data['text/plain'])}\n"
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
        f = fence(cmd)
        out.append(
            f"### [{esc(nb_path.stem)}]({page.link(nb_path)})\n\nFrom {esc(src)}{took}.\n\n{f}bash\n{cmd}\n{f}\n"
        )
    return "\n".join(out)


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
