"""An executed notebook made fit to publish, applied by `mbasr.report.publish` to every notebook it
copies, and runnable on its own:

    python -m mbasr nbtidy results/notebooks/*.ipynb

- the stream outputs of a cell are merged, each progress-bar line kept in its final state (what a
  terminal shows) and library warnings (`path.py:12: FutureWarning: ...` and their source line) dropped;
- audio inlined as base64 goes to a file beside the notebook (`media/`), linked from the player, and
  pictures get a 256-colour palette when that makes them smaller;
- HTML and Markdown outputs are rebuilt so that text from data cannot run (`mbasr.report.safe`);
- the title names the run: `# 06 · The mixed batch` gains `: mixed batch (MB) · Banking · p = 0.2 ...`
  from the papermill parameters, so no two run pages share a title.
Tidying a tidy notebook changes nothing.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import re
from pathlib import Path

from mbasr import vocab
from mbasr.report import safe

WARNING = re.compile(r"^\S+:\d+: \w*Warning: .*\n(?:[ \t]+.*\n)?", re.M)
AUDIO = re.compile(r'src="data:audio/([\w.+-]+);base64,([A-Za-z0-9+/=\s]+)"')
AUDIO_EXT = {"wav": "wav", "x-wav": "wav", "mpeg": "mp3", "ogg": "ogg", "flac": "flac"}
TIDY = "mbasr_tidy"  # the metadata key that marks a tidied notebook (its title is not extended twice)


def final_text(text: str) -> str:
    """Stream text as a terminal leaves it: each line's last `\\r`-separated state, warnings dropped."""
    lines = [line.rsplit("\r", 1)[-1].rstrip() for line in text.split("\n")]
    kept = "\n".join(line for line in lines if line) + "\n"
    return WARNING.sub("", kept).strip("\n")


def collapse_streams(outputs: list[dict]) -> list[dict]:
    """One stream output per name (stdout, stderr) for each run of consecutive stream outputs; other
    outputs keep their place."""
    out: list[dict] = []
    run: dict[str, dict] = {}  # the current run of consecutive streams, by name
    for o in outputs:
        if o.get("output_type") != "stream":
            out.append(o)
            run = {}
            continue
        text = _joined(o.get("text", ""))
        if o["name"] in run:
            run[o["name"]]["text"] += text
        else:
            run[o["name"]] = {"output_type": "stream", "name": o["name"], "text": text}
            out.append(run[o["name"]])
    for o in out:
        if o.get("output_type") == "stream":
            o["text"] = final_text(o["text"]) + "\n"
    return [o for o in out if o.get("output_type") != "stream" or o["text"].strip()]


def audio_to_files(value: str, media: Path, rel: str) -> str:
    """`value` with each audio data URI written to a file in `media` (named by its content) and linked
    as `rel/<file>`."""

    def one(m: re.Match) -> str:
        data = base64.b64decode(re.sub(r"\s", "", m.group(2)))
        name = f"{hashlib.sha256(data).hexdigest()[:16]}.{AUDIO_EXT.get(m.group(1), 'wav')}"
        media.mkdir(parents=True, exist_ok=True)
        if not (media / name).exists():
            (media / name).write_bytes(data)
        return f'src="{rel}/{name}"'

    return AUDIO.sub(one, value)


def smaller_png(b64: str) -> str:
    """A PNG with a 256-colour palette when that is smaller (plots and spectrograms lose nothing visible);
    the notebook and the page that inlines it shrink."""
    import io

    from PIL import Image

    raw = base64.b64decode(b64)
    img = Image.open(io.BytesIO(raw))
    if img.mode == "P":
        return b64
    buf = io.BytesIO()
    img.convert("RGB").quantize(256).save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode() if buf.tell() < len(raw) else b64


def _joined(v) -> str:
    return "".join(v) if isinstance(v, list) else v


def tidy_output(o: dict, media: Path) -> dict:
    data = o.get("data")
    if not data:
        return o
    data = {m: _joined(v) for m, v in data.items()}
    if "text/html" in data:
        data["text/html"] = safe.html_output(audio_to_files(data["text/html"], media, media.name))
    if "text/markdown" in data:
        data["text/markdown"] = safe.markdown_output(data["text/markdown"])
    if "image/png" in data:
        data["image/png"] = smaller_png(data["image/png"])
    return o | {"data": data}


def retitle(nb: dict) -> None:
    """Extend the notebook's `# ` title with the run it records (once)."""
    meta = nb.get("metadata") or {}
    pm = meta.get("papermill") or {}
    if meta.get(TIDY) or not pm.get("parameters"):
        return
    source = Path(pm.get("input_path") or "").stem
    run = html.escape(vocab.run_title(pm["parameters"], vocab.NOTEBOOK_STRATEGY.get(source)))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            src = _joined(cell.get("source", ""))
            if re.match(r"\s*# ", src):
                cell["source"] = re.sub(r"\A(\s*# [^\n]*)", lambda m: f"{m.group(1)}: {run}", src, count=1)
            return


def tidy(path: str | Path) -> dict:
    """Tidy the notebook at `path` in place (see the module docstring); returns its output counts."""
    path = Path(path)
    nb = json.loads(path.read_text())
    if (nb.get("metadata") or {}).get(TIDY):
        return {"streams": stream_count(nb)}
    media = path.parent / "media"
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = [tidy_output(o, media) for o in collapse_streams(cell.get("outputs", []))]
    retitle(nb)
    nb.setdefault("metadata", {})[TIDY] = True
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return {"streams": stream_count(nb)}


def stream_count(nb: dict) -> int:
    return sum(o.get("output_type") == "stream" for c in nb.get("cells", []) for o in c.get("outputs", []))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mbasr nbtidy", description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="+", help="executed notebooks, tidied in place")
    for p in ap.parse_args(argv).notebooks:
        print(f"[nbtidy] {p}: {tidy(p)['streams']} stream outputs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
