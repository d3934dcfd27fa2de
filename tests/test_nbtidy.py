"""mbasr.report.nbtidy and mbasr.progress: executed notebooks without progress-bar floods or warnings, audio as
files, text from data escaped, titles that name the run; the committed notebooks are tidy."""

from __future__ import annotations

import base64
import io
import json
import sys
import wave
from pathlib import Path

import nbformat
import pytest

from mbasr import progress
from mbasr.report import nbtidy

ROOT = Path(__file__).resolve().parents[1]
MAX_STREAMS = 20  # no executed notebook holds more than this many stream outputs


def _wav_b64() -> str:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(bytes(3200))
    return base64.b64encode(buf.getvalue()).decode()


def _flooded(tmp_path: Path) -> Path:
    out = nbformat.v4.new_output
    bars = [out("stream", name="stderr", text=f"\rtrain: {i:3d}%|") for i in range(0, 101)] + [
        out("stream", name="stderr", text="\n")
    ]
    warn = "/x/site-packages/lib.py:12: FutureWarning: `a` is deprecated\n  warnings.warn(\n"
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {
        "input_path": "notebooks/06_mixed_batch.ipynb",
        "parameters": {"target_domain": "musical_instruments", "p": 0.1, "tau": 0.5, "seed": 2},
    }
    nb.cells = [
        nbformat.v4.new_markdown_cell("# 06 · The mixed batch\n\ntext"),
        nbformat.v4.new_code_cell(
            "run()",
            outputs=[
                out("stream", name="stderr", text=warn),
                out("stream", name="stdout", text="corpus ready\n"),
                *bars,
                out("display_data", data={"text/markdown": "**key** <script>alert(1)</script>"}),
                out("display_data", data={"text/html": f'<audio controls><source src="data:audio/x-wav;base64,{_wav_b64()}" type="audio/x-wav"></audio>'}),
                out("stream", name="stdout", text="done\n"),
            ],
        ),
    ]  # fmt: skip
    path = tmp_path / "run.ipynb"
    nbformat.write(nb, path)
    return path


def test_tidy_collapses_bars_drops_warnings_moves_audio_and_names_the_run(tmp_path):
    path = _flooded(tmp_path)
    assert nbtidy.tidy(path) == {"streams": 3}
    nb = json.loads(path.read_text())
    outs = nb["cells"][1]["outputs"]
    streams = [(o["name"], o["text"]) for o in outs if o["output_type"] == "stream"]
    assert streams == [("stderr", "train: 100%|\n"), ("stdout", "corpus ready\n"), ("stdout", "done\n")]
    md, player = outs[2]["data"]["text/markdown"], outs[3]["data"]["text/html"]
    assert "<script>" not in md and "&lt;script&gt;" in md and md.startswith("**key**")
    assert "base64" not in player and 'src="media/' in player
    assert len(list((tmp_path / "media").glob("*.wav"))) == 1
    title = nb["cells"][0]["source"].split("\n")[0]
    assert (
        title == "# 06 · The mixed batch: mixed batch (MB) · Musical Instruments · p = 0.1 · τ = 0.5 · seed 2"
    )
    before = path.read_text()
    nbtidy.tidy(path)
    assert path.read_text() == before  # tidying twice changes nothing


def test_a_bar_off_a_terminal_writes_its_final_state_once(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    for _ in progress.bar(range(500), desc="steps", mininterval=0):
        pass
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("steps: 100%") and "500/500" in lines[0]
    assert "\r" not in err.getvalue()


@pytest.mark.parametrize("nb", sorted((ROOT / "results" / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_committed_notebooks_are_tidy(nb):
    data = json.loads(nb.read_text())
    assert data["metadata"].get(nbtidy.TIDY), f"{nb.name}: not tidied (python -m mbasr nbtidy {nb})"
    assert nbtidy.stream_count(data) <= MAX_STREAMS
    text = json.dumps(data)
    assert "Warning:" not in text and "IProgress" not in text and "data:audio" not in text


def test_tables_lose_a_default_index_but_keep_a_named_one():
    import pandas as pd

    from mbasr.report import safe

    plain = safe.table_rows(safe.html_output(pd.DataFrame({"tau_t": [0.123456]}).to_html()))
    assert plain == [["τ_t"], ["0.1235"]]
    named = pd.DataFrame({"base": [0.1, 0.5]}, index=pd.Index([0, 1], name="layer")).to_html()
    assert [row[0] for row in safe.table_rows(safe.html_output(named))] == ["", "layer", "0", "1"]


def test_the_batch_diagram_shows_the_samplers_shares():
    from mbasr.method.mixed_batch import resolve_shares
    from mbasr.report import diagrams

    svg = diagrams.batch_svg(0.1, 0.5)
    for name, value in vars(resolve_shares("mixed", 0.1, 0.5)).items():
        assert f"{100 * value:.1f}%" in svg, name
