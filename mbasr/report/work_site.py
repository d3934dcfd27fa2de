"""A report site for any work folder, e.g. one where you ran the study on your own domain:

    mbasr site W            # then: smalldocs render W/site   (or quarto render W/site)

gathers `W/results/` into the tidy table, judges the claims (`W/results/claims.json`, premises beside it),
publishes the runs and their executed notebooks to `W/site/results/` (`mbasr.report.publish`), builds the
figures, tables and page fragments there (`mbasr.report.site`) and copies the site's pages and
`_quarto.yml` beside them, so the site renders from `W/site/` as the repository's renders from its root.
The committed `results/` is never touched."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from mbasr.report.publish import publish
from mbasr.report.site import build
from mbasr.study import claims
from mbasr.study.results import gather, write_table

ROOT = Path(__file__).resolve().parents[2]
# What the site is made of besides its results (screenshots are the README's, not the site's)
PAGES = ("_quarto.yml", "index.qmd", "site/*.qmd", "site/*.css", "site/*.svg")


def site_for(work_dir: str | Path, out: str | Path | None = None) -> Path:
    """Make W's report site in `out` (default `W/site`); returns the folder to render."""
    work = Path(work_dir)
    out = Path(out) if out is not None else work / "site"
    if not (work / "results").is_dir():
        raise FileNotFoundError(f"{work / 'results'}: no results folder; run a notebook with work_dir={work}")
    if out.resolve() == ROOT:
        raise ValueError(f"out={out}: that is the repository; its results/ is the published run's")
    table = gather(work / "results")
    csv = work / "results" / "results.csv"
    write_table(table, csv)
    if claims.main([str(csv), "--out", str(work / "results" / "claims.json")]) != 0:
        raise ValueError(f"{csv}: the claims could not be judged (the message above says why)")
    publish(work, out / "results")
    for pattern in PAGES:
        for page in sorted(ROOT.glob(pattern)):
            dest = out / page.relative_to(ROOT)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(page, dest)
    build(out / "results")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mbasr site", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "work_dir", help="the notebooks' work_dir (holds results/ and, from the workflow, notebooks/)"
    )
    ap.add_argument("--out", help="where the site goes (default: WORK_DIR/site)")
    args = ap.parse_args(argv)
    try:
        out = site_for(args.work_dir, args.out)
    except (FileNotFoundError, ValueError) as e:
        print(f"mbasr site: error: {e}", file=sys.stderr)
        return 2
    print(f"[site] {out}: render it with `smalldocs render {out}` (or `quarto render {out}`)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
