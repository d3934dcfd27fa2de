"""The report site: `python -m mbasr report` + `smalldocs render` build it from a results folder.

The results used here are SYNTHETIC (made below in a temporary folder, never written under results/):
they exercise every page, and the parts a real run may lack. The committed results/ is built too when it
exists."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import wave
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from mbasr import vocab
from mbasr.report import draw, markdown, reproduce, series, tables
from mbasr.report import site as report

ROOT = Path(__file__).resolve().parents[1]
SMALLDOCS = shutil.which("smalldocs", path=str(Path(sys.executable).parent)) or shutil.which("smalldocs")
needs_smalldocs = pytest.mark.skipif(
    SMALLDOCS is None, reason="smalldocs is not installed (pip install -e .[site])"
)
PAGES = [
    "index",
    "site/figure-1",
    "site/figure-2",
    "site/figure-3",
    "site/figures-4-5",
    "site/modality-gap",
    "site/data",
    "site/reproduce",
    "site/notebooks",
]
TARGETS = ("banking", "agriculture", "musical_instruments")
BASE = {"source": 0.15, "banking": 0.30, "agriculture": 0.55, "musical_instruments": 0.45}


# ------------------------------------------------------------------------------ the synthetic fixture


def _row(run_id, experiment, target, p, tau, eval_domain, wer, seed=0, notebook=None):
    return {
        "run_id": run_id, "experiment": experiment, "preset": "tiny", "scale": "default", "seed": seed,
        "source_domain": "source", "target_domain": target, "p": p, "tau": tau,
        "tau_t": None if tau is None else round((1 - p) * tau, 6), "steps": 300, "lr": 3e-4,
        "eval_domain": eval_domain, "split": "test", "wer": wer, "ci_low": wer - 0.02, "ci_high": wer + 0.02,
        "n_utts": 400, "code_version": "synthetic", "created": "2026-01-01T00:00:00",
        "executed_notebook": notebook,
    }  # fmt: skip


def synthetic_rows(full: bool = True) -> pd.DataFrame:
    """A made-up tidy table shaped like a default run: base, a tau_t sweep, MB and ASR curves."""
    nb_base, nb_adapt = "results/notebooks/03_base_model.ipynb", "results/notebooks/05_audio_share.ipynb"
    rows = [_row("base", "base", None, 0.0, None, d, w, notebook=nb_base) for d, w in BASE.items()]
    targets = TARGETS if full else ("banking",)
    ps = (0.01, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0) if full else (0.2,)
    for t in targets:
        for seed in (0, 1) if full else (0,):
            for p in ps:
                drop = BASE[t] * 0.5 * p**0.3
                rows.append(
                    _row(
                        f"mixed-{t}-{p}-{seed}",
                        "mixed",
                        t,
                        p,
                        0.5,
                        t,
                        BASE[t] * 0.8 - drop + 0.002 * seed,
                        seed,
                        nb_adapt,
                    )
                )
                rows.append(_row(f"asr-{t}-{p}-{seed}", "asr", t, p, None, t, BASE[t] - drop, seed, nb_adapt))
                if p == 0.2:
                    rows.append(
                        _row(f"mixed-{t}-{p}-{seed}", "mixed", t, p, 0.5, "source", 0.14, seed, nb_adapt)
                    )
                    rows.append(
                        _row(f"asr-{t}-{p}-{seed}", "asr", t, p, None, "source", 0.25, seed, nb_adapt)
                    )
        if full:
            rows.append(_row(f"text-{t}", "text_only", t, 0.0, 0.5, t, BASE[t] * 0.85, notebook=nb_adapt))
            rows.append(_row(f"text-{t}", "text_only", t, 0.0, 0.5, "source", 0.145, notebook=nb_adapt))
    if full:
        for tau in (0.1, 0.3, 0.7, 0.9):
            rows.append(
                _row(
                    f"text-sweep-{tau}",
                    "text_only",
                    "banking",
                    0.0,
                    tau,
                    "banking",
                    0.28 - 0.1 * tau * (1 - tau),
                )
            )
    df = pd.DataFrame(rows)
    df.loc[df["experiment"].isin(["asr", "base"]), "tau_t"] = None
    return df


def _png(colors=((230, 159, 0), (0, 114, 178))) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5), dpi=50)
    ax.bar([0, 1], [1, 2], color=[np.array(c) / 255 for c in colors])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _wav_html() -> str:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes((3000 * np.sin(np.arange(1600) / 5)).astype("<i2").tobytes())
    data = base64.b64encode(buf.getvalue()).decode()
    return (
        f'<audio controls="controls"><source src="data:audio/wav;base64,{data}" type="audio/wav" /></audio>'
    )


def synthetic_notebook(title: str, marker: str, params: dict) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["papermill"] = {
        "input_path": f"notebooks/{title}.ipynb",
        "parameters": params,
        "duration": 12.5,
    }
    out = nbformat.v4.new_output
    cells = [
        nbformat.v4.new_markdown_cell(f"# {title}\n\nSynthetic notebook for the site tests. {marker}"),
        nbformat.v4.new_code_cell('preset = "tiny"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_markdown_cell("## A table and a figure"),
        nbformat.v4.new_code_cell(
            "table",
            outputs=[
                out("stream", name="stderr", text="progress bar 100%|#####|\n"),
                out("execute_result", data={"text/html": pd.DataFrame({"domain": ["banking"], "hours": [1.5]}).to_html(), "text/plain": "df"}, execution_count=1),
            ],
        ),
        nbformat.v4.new_code_cell(
            f'#| label: fig-{marker.lower()}\n#| fig-cap: "Caption of {marker}."\n#| fig-alt: "Bars of {marker}."\nplot()',
            outputs=[out("display_data", data={"image/png": _png(), "text/plain": "<Figure>"})],
        ),
        nbformat.v4.new_code_cell(
            "listen()",
            outputs=[
                out("stream", name="stdout", text="nearest tokens: the the of banking\n"),
                out("display_data", data={"text/markdown": f"**banking** example of {marker}", "text/plain": "md"}),
                out("display_data", data={"text/html": _wav_html(), "text/plain": "<Audio>"}),
            ],
        ),
    ]  # fmt: skip
    nb.cells = cells
    return nb


def make_results(root: Path, variant: str = "full") -> Path:
    """A synthetic results folder under `root`: `full` (every figure's runs, claims, records, notebooks),
    `sparse` (a few runs, no claims, no notebook 08), or `empty` (no results.csv at all)."""
    res = root / "results"
    res.mkdir(parents=True)
    if variant == "empty":
        return res
    synthetic_rows(full=variant == "full").to_csv(res / "results.csv", index=False)
    (res / "records").mkdir()
    for i in range(3):
        rec = {
            "run_id": f"r{i}",
            "preset": "tiny",
            "seconds": {"train": 60.0 * (i + 1), "total": 90.0 * (i + 1)},
        }
        (res / "records" / f"r{i}.json").write_text(json.dumps(rec))
    (res / "notebooks").mkdir()
    nbformat.write(
        synthetic_notebook("01_data_prep", "CORPUSMARK", {"scale": "default"}),
        res / "notebooks" / "01_data_prep.ipynb",
    )
    nbformat.write(
        synthetic_notebook("03_base_model", "BASEMARK", {"preset": "tiny", "seed": 0}),
        res / "notebooks" / "03_base_model.ipynb",
    )
    if variant == "full":
        params = {"preset": "tiny", "domains": ["banking", "agriculture"], "p": 0.2}
        nbformat.write(
            synthetic_notebook("08_modality_gap", "GAPMARK", params),
            res / "notebooks" / "08_modality_gap.ipynb",
        )
        verdicts = ["held", "not held", "inconclusive", "held", "held"]
        claims = [
            {"claim": i + 1, "statement": f"Claim statement {i + 1}.", "verdict": v, "why": f"because {i + 1}",
             "evidence": {"ours MB 10%": 0.1234, "ours ASR 100%": 0.14}, "paper": "4.75 vs 4.55"}
            for i, v in enumerate(verdicts)
        ]  # fmt: skip
        (res / "claims.json").write_text(json.dumps(claims))
    return res


def build_site(
    root: Path, variant: str = "full", results: Path | None = None, cli: bool = False, prepare=None
) -> Path:
    """Copy the site's sources into `root`, give it a results folder (synthetic, or a copy of
    `results`), let `prepare(results folder)` change it, run the report and render with smalldocs;
    returns the rendered `_site`."""
    shutil.copy(ROOT / "_quarto.yml", root / "_quarto.yml")
    shutil.copy(ROOT / "index.qmd", root / "index.qmd")
    shutil.copytree(ROOT / "site", root / "site")
    if results is None:
        make_results(root, variant)
    else:
        shutil.copytree(results, root / "results")
    if prepare is not None:
        prepare(root / "results")
    if cli:
        cmd = [sys.executable, "-m", "mbasr.report.site", "results/"]
        subprocess.run(cmd, cwd=root, check=True, capture_output=True, timeout=120)
    else:  # the same entry point in this process: matplotlib is imported once for all the tests
        assert report.main([str(root / "results")]) == 0
    r = subprocess.run(
        [SMALLDOCS, "render", "--strict"], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return root / "_site"


_SHARED: dict[str, Path] = {}
_KEEP: list[tempfile.TemporaryDirectory] = []


def synthetic_site() -> Path:
    """The site built from the full synthetic results through the command line, once per test session
    (the browser tests open the same one)."""
    if "full" not in _SHARED:
        _KEEP.append(tempfile.TemporaryDirectory(prefix="mbasr-site-"))
        _SHARED["full"] = build_site(Path(_KEEP[-1].name), "full", cli=True)
    return _SHARED["full"]


class _Cells(HTMLParser):
    """Collects the `data-*` attributes and text of every table cell that has `data-source`."""

    def __init__(self):
        super().__init__()
        self.cells, self._open = [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "td" and "data-source" in a:
            self._open = {k.removeprefix("data-"): v for k, v in a.items() if k.startswith("data-")} | {
                "text": ""
            }

    def handle_data(self, data):
        if self._open is not None:
            self._open["text"] += data

    def handle_endtag(self, tag):
        if tag == "td" and self._open is not None:
            self.cells.append(self._open)
            self._open = None


def cells(html: str, source: str) -> list[dict]:
    p = _Cells()
    p.feed(html)
    return [c for c in p.cells if c["source"] == source]


def paper_values(figures: tuple[str, ...]) -> set[tuple]:
    paper = vocab.load_paper()
    sub = paper[paper["figure"].isin(figures)]
    return {
        (f, t, m, round(float(p), 4), round(float(v), 2))
        for f, t, m, p, v in sub[["figure", "target", "method", "p", "value"]].itertuples(index=False)
    }


def shown_paper_values(html: str) -> set[tuple]:
    return {
        (c["figure"], c["target"], c["method"], round(float(c["p"]), 4), round(float(c["text"]), 2))
        for c in cells(html, "paper")
    }


# ------------------------------------------------------------------------------------------ the tests


def test_paper_series_follow_the_paper_conventions():
    """ASR at p = 0 is the base model; MB at p = 0 is text-only at tau_t = tau; other sweeps are left out."""
    df = synthetic_rows()
    asr = series.aggregate(series.ours_rows(df, "asr", "source", "banking"), "p")
    mb = series.aggregate(series.ours_rows(df, "mb", "source", "banking"), "p")
    assert asr.iloc[0]["p"] == 0 and asr.iloc[0]["wer"] == pytest.approx(100 * BASE["banking"])
    assert mb.iloc[0]["p"] == 0 and mb.iloc[0]["wer"] == pytest.approx(100 * 0.85 * BASE["banking"])
    assert len(mb) == len(asr) == 8  # p = 0 and the seven shares, the tau_t sweep not among them
    two_seeds = mb[mb["p"] == 0.2].iloc[0]
    assert two_seeds["seeds"] == 2
    rows = df[(df["experiment"] == "mixed") & (df["p"] == 0.2) & (df["eval_domain"] == "banking")]
    assert two_seeds["wer"] == pytest.approx(100 * rows["wer"].mean())
    assert (two_seeds["ci_low"], two_seeds["ci_high"]) == pytest.approx(
        (100 * rows["ci_low"].min(), 100 * rows["ci_high"].max())
    )


def test_labels_and_layout_choice():
    assert [markdown.p_label(p) for p in (0.0011, 0.1124, 0.2, 1.0)] == ["0.11", "11.24", "20", "100"]
    assert vocab.domain("musical_instruments") == "Musical Instruments"
    assert draw.overlay_ok([([4.2, 8.0], [5.0, 9.0])])
    assert not draw.overlay_ok([([4.2, 8.0], [60.0, 90.0])])


def test_claims_table_lists_reasons_per_target_and_the_numbers_behind_them(tmp_path):
    claim = {
        "claim": 4, "statement": "MB forgets less.", "verdict": "held",
        "why": "banking: held: p=0.1: MB 46.0% vs ASR 62.3%. agriculture: not held: p=0.1: MB 50% vs ASR 49%",
        "evidence": [{"system": "mixed", "p": 0.1, "target": "banking", "eval_domain": "source",
                      "wer": 0.4598, "ci_low": 0.4292, "ci_high": 0.4897, "run_id": "r1"}],
        "paper": [{"metric": "source_wer", "p": 0.2, "system": "asr", "target": "banking", "wer_pct": 17.4}],
    }  # fmt: skip
    (tmp_path / "claims.json").write_text(json.dumps([claim]))
    table = tables.claims_table(tmp_path)
    assert "<li>banking: held: p=0.1: MB 46.0% vs ASR 62.3%</li><li>agriculture: not held" in table
    assert "<li>MB p=0.1 (Banking, scored on Source): 45.98% [42.92, 48.97]</li>" in table
    assert "<li>ASR p=0.2 (Banking, scored on Source): 17.40%</li>" in table
    assert "run_id" not in table and "ci_low" not in table  # no raw JSON keys


def test_search_fragment_shows_each_strategys_dev_wers_and_its_choice(tmp_path):
    assert "No `results/search.json`" in reproduce.search_fragment(tmp_path)
    cand = lambda lr, w: {"lr": lr, "dev_wer": w, "ci_low": w - 0.01, "ci_high": w + 0.01}  # noqa: E731
    search = {
        "config": {"lrs": [3e-4, 1e-3, 3e-3]}, "dev_sets": [{"domain": "agriculture", "split": "dev"}],
        "steps": 240, "rule": "lowest dev WER",
        "strategies": {
            "mixed": {"chosen_lr": 3e-3, "at_edge": True,
                      "candidates": [cand(3e-4, 0.9), cand(1e-3, 0.85), cand(3e-3, 0.8)]},
            "asr": {"chosen_lr": 1e-3, "at_edge": False, "candidates": [cand(3e-4, 0.9), cand(1e-3, 0.7)]},
        },
    }  # fmt: skip
    (tmp_path / "search.json").write_text(json.dumps(search))
    text = reproduce.search_fragment(tmp_path)
    assert "Agriculture dev after 240 steps" in text and "the rule: lowest dev WER." in text
    assert (
        "| MB | 90.00 [89.00, 91.00] | 85.00 [84.00, 86.00] | **80.00 [79.00, 81.00]** | 0.003 (an end"
        in text
    )
    assert "| ASR | 90.00 [89.00, 91.00] | **70.00 [69.00, 71.00]** | — | 0.001 |" in text


def test_results_table_is_checked(tmp_path):
    synthetic_rows().drop(columns=["ci_high"]).to_csv(tmp_path / "results.csv", index=False)
    with pytest.raises(ValueError, match="ci_high"):
        series.load_results(tmp_path)


@needs_smalldocs
def test_site_from_synthetic_results():
    site = synthetic_site()
    check = subprocess.run([SMALLDOCS, "check"], cwd=site.parent, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    for page in PAGES:
        assert (site / f"{page}.html").exists(), page
    for nb in ("01_data_prep", "03_base_model", "08_modality_gap"):
        assert (site / "results" / "notebooks" / f"{nb}.html").exists()
    page = {p: (site / f"{p}.html").read_text() for p in PAGES}
    # the figures are files of the site, and every paper value of Figure 2 is in its table
    for n in (1, 2, 3, 4, 5):
        assert (site / "results" / "figures" / f"figure-{n}.svg").exists()
    assert shown_paper_values(page["site/figure-2"]) == paper_values(("2", "2-low"))
    ours = {
        (c["target"], c["method"], round(float(c["p"]), 4)): float(c["wer"])
        for c in cells(page["site/figure-2"], "ours")
    }
    df = synthetic_rows()
    one = df[
        (df["experiment"] == "asr")
        & (df["target_domain"] == "agriculture")
        & (df["p"] == 0.4)
        & (df["eval_domain"] == "agriculture")
    ]
    assert ours[("agriculture", "asr", 0.4)] == pytest.approx(100 * one["wer"].mean(), abs=1e-3)
    assert ours[("banking", "asr", 0.0)] == pytest.approx(100 * BASE["banking"])
    # claims and headline on the home page; the appendix says what we lack
    assert page["index"].count('data-verdict="held"') == 3 and 'data-verdict="not held"' in page["index"]
    assert "Claim statement 5." in page["index"] and 'id="headline"' in page["index"]
    assert "no counterpart" in page["site/figures-4-5"] and "Insurance" in page["site/figures-4-5"]
    # notebook outputs embedded: narrative, picture with its caption, audio player; no stderr, no code
    gap = page["site/modality-gap"]
    assert "GAPMARK" in gap and "Caption of GAPMARK." in gap and "<audio" in gap and "nearest tokens" in gap
    assert "progress bar" not in gap and "listen()" not in gap
    assert "CORPUSMARK" in page["site/data"]
    # notebooks page: the exact papermill command; reproduce: every preset's deviations
    assert "08_modality_gap.html" in page["site/notebooks"]
    cmd = (site.parent / "results" / "report" / "notebooks.md").read_text()
    assert "papermill notebooks/08_modality_gap.ipynb /tmp/08_modality_gap.ipynb \\\n" in cmd
    assert """-y 'domains: ["banking", "agriculture"]' \\\n    -p p 0.2 \\\n    -p preset tiny\n""" in cmd
    for name, preset in reproduce.presets().items():
        assert f"<code>{name}</code>" in page["site/reproduce"]
        for d in preset["deviations"][:1]:
            assert d.split(":")[0] in page["site/reproduce"]
    assert "3 runs" in page["site/reproduce"]


@needs_smalldocs
def test_site_with_missing_parts(tmp_path):
    """Few runs, no claims, no modality-gap notebook: every page still builds and says what is missing."""
    site = build_site(tmp_path, "sparse")
    page = {p: (site / f"{p}.html").read_text() for p in PAGES}
    assert "No verdicts" in page["index"]
    assert "has not run yet" in page["site/modality-gap"]
    assert "No text-only run of ours" in page["site/figure-1"]
    assert (
        "No adaptation run of ours targets Agriculture yet: its panel shows our base model"
        in page["site/figure-2"]
    )
    assert shown_paper_values(page["site/figure-2"]) == paper_values(("2", "2-low"))
    assert "text-only MB" in page["site/figure-3"] and "No run of ours for" in page["site/figure-3"]


@needs_smalldocs
def test_site_without_results(tmp_path):
    site = build_site(tmp_path, "empty")
    home = (site / "index.html").read_text()
    assert "No run yet" in home
    assert not cells((site / "site/figure-2.html").read_text(), "ours")
    assert "No executed notebook" in (site / "site/notebooks.html").read_text()


@needs_smalldocs
def test_site_from_committed_results(tmp_path):
    if not (ROOT / "results" / "results.csv").exists():
        pytest.skip("no committed results/ yet (the workflow's default run writes results/results.csv)")
    site = build_site(tmp_path, results=ROOT / "results")
    fig2 = (site / "site" / "figure-2.html").read_text()
    assert shown_paper_values(fig2) == paper_values(("2", "2-low"))
    assert re.search(r'data-source="ours"', fig2), "the committed results draw no point of Figure 2"


@needs_smalldocs
@pytest.mark.slow
def test_site_for_a_work_folder_renders_there_and_leaves_results_alone(tmp_path):
    """`mbasr site W` (the last step of README's "Your own domain"): records in W/results -> a site in
    W/site that renders, the committed results/ untouched."""
    from mbasr.report.work_site import main as site_main

    records = sorted((ROOT / "results" / "records").glob("*.json"))
    if not records:
        pytest.skip("no committed records to build from")
    work = tmp_path / "W"
    (work / "results").mkdir(parents=True)
    for r in records:
        shutil.copy(r, work / "results" / r.name)
    before = (ROOT / "results" / "results.csv").read_bytes()
    assert site_main([str(work)]) == 0
    assert (work / "results" / "claims.json").exists() and (
        work / "site" / "results" / "results.csv"
    ).exists()
    r = subprocess.run([SMALLDOCS, "render", "--strict", str(work / "site")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    fig2 = (work / "site" / "_site" / "site" / "figure-2.html").read_text()
    assert re.search(r'data-source="ours"', fig2)
    assert (ROOT / "results" / "results.csv").read_bytes() == before
    assert site_main([str(tmp_path / "nowhere")]) == 2  # no results folder: a message, exit 2
