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
from pathlib import Path

import pandas as pd

from mbasr.data.corpus import TARGETS as OUR_TARGETS
from mbasr.report import figures, findings
from mbasr.report.draw import Made
from mbasr.report.markdown import Page, callout, esc
from mbasr.report.notebook_pages import notebook_fragment, notebooks_fragment, teaching
from mbasr.report.reproduce import presets, presets_fragment
from mbasr.report.series import load_results, main_run, your_targets
from mbasr.report.tables import (
    audio_share_table,
    claims_table,
    figure_1_table,
    figure_3_table,
    figure_section,
    headline,
    how_to_read,
    status,
)
from mbasr.vocab import PAPER_CSV, load_paper


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
        code = f"*Drawn by `mbasr.report.figures.{name.replace('-', '_')}` from `results/results.csv`.*\n"
        frag[name] = figure_section(site, made, table, csv, results, caption, alt, lead) + "\n" + code
        written.extend([made.figure, csv])

    style = "the paper dashed with hollow markers, ours solid with filled markers and 95% CI bars"
    share_alt = f"WER against the target audio share p, one panel per target; {style}."
    made = figures.figure_1(paper, df, results, drawn_as)
    figure("figure-1", made, figure_1_table(made), "Figure 1 redrawn: text-only adaptation on Banking, WER against "
           "the target-text share τ_t.", f"WER on the Banking test set against the target-text share; {style}.")  # fmt: skip
    made = figures.figure_2(paper, df, results, drawn_as, your_targets(paper, df))
    figure("figure-2", made, audio_share_table(made, "2"), "Figure 2 redrawn: WER against the share p of target "
           "audio, mixed batch against standard fine-tuning.", share_alt)  # fmt: skip
    made = figures.figure_3(paper, df, results, drawn_as)
    figure("figure-3", made, figure_3_table(made), "Figure 3 redrawn: source against target WER on Banking "
           "(lower left is better).", f"Source-domain WER against Banking WER for four systems; {style}.")  # fmt: skip
    made = figures.figure_4(paper, df, results, drawn_as)
    figure("figure-4", made, audio_share_table(made, "4"), "Figure 4 redrawn (appendix): the Insurance and "
           "Animation targets.", share_alt)  # fmt: skip
    made = figures.figure_5(paper, df, results, drawn_as)
    figure("figure-5", made, audio_share_table(made, "5"), "Figure 5 redrawn (arXiv appendix): the SlideSpeech "
           "Life/Talent/English source.", share_alt)  # fmt: skip

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
