"""Copy the results of a workflow run into the folder the report site renders (`results/` at the root,
committed so a reader can render the site without training; a rerun replaces it):

    python -m mbasr publish runs results      # then: python -m mbasr report results && smalldocs render

`<work_dir>/results/*.json` (the records, validated) -> `records/`, `results.csv` and `claims.json` as they
are, `<work_dir>/notebooks/*.ipynb` -> `notebooks/`, each tidied for its page (`mbasr.report.nbtidy`: progress
bars in their final state, no library warnings, audio as files under `notebooks/media/`, text from data
escaped, a title that names the run). Notebooks that the pages embed by a fixed name (01_data_prep,
02_corruption, 07_forgetting, 08_modality_gap: the grid names them with their parameters) are saved
under that name, from the first seed; the base model's notebook keeps its run id, which its record names.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from mbasr.report.nbtidy import tidy
from mbasr.study.results import PREMISES_FILE, SEARCH_FILE, read_records

CANONICAL = ("01_data_prep", "02_corruption", "07_forgetting", "08_modality_gap")


def publish(work_dir: str | Path, dest: str | Path = "results") -> dict[str, int]:
    work_dir, dest = Path(work_dir), Path(dest)
    src = work_dir / "results"
    for need in ("results.csv", "claims.json"):
        if not (src / need).exists():
            raise FileNotFoundError(
                f"{src / need}: missing; run the workflow (snakemake -s workflow/Snakefile) first"
            )
    records = read_records(src)  # validates every record before anything is replaced
    for sub in ("records", "notebooks"):
        shutil.rmtree(dest / sub, ignore_errors=True)
        (dest / sub).mkdir(parents=True)
    for rec in records:
        shutil.copy2(src / f"{rec['run_id']}.json", dest / "records" / f"{rec['run_id']}.json")
    for name in ("results.csv", "claims.json"):
        shutil.copy2(src / name, dest / name)
    # the stage-2 lr search of these runs' base model (mbasr/study/search.py); the fine-tuning premise
    for name in (SEARCH_FILE, PREMISES_FILE):
        if (src / name).exists():
            shutil.copy2(src / name, dest / name)
        else:
            (dest / name).unlink(missing_ok=True)
    # the notebooks of these records' runs and the canonical ones; not those of runs whose records are gone
    # (a rerun under new run ids leaves its old executed notebooks behind in <work_dir>/notebooks/)
    run_ids = {rec["run_id"] for rec in records}
    notebooks = [
        nb
        for nb in sorted((work_dir / "notebooks").glob("*.ipynb"))
        if nb.stem in run_ids or nb.name.startswith(tuple(p + "-" for p in CANONICAL))
    ]
    names = {nb: nb.name for nb in notebooks}
    for prefix in CANONICAL:  # the first seed's copy goes under the fixed name only (01 holds audio: MBs)
        first = next((nb for nb in notebooks if nb.name.startswith(prefix + "-")), None)
        if first is not None:
            names[first] = f"{prefix}.ipynb"
    for nb, name in names.items():
        shutil.copy2(nb, dest / "notebooks" / name)
        tidy(dest / "notebooks" / name)
    return {"records": len(records), "notebooks": len(notebooks)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mbasr publish", description=__doc__.split("\n\n")[0])
    ap.add_argument("work_dir", help="the workflow's work_dir (holds results/ and notebooks/)")
    ap.add_argument("dest", nargs="?", default="results", help="the site's results folder (default: results)")
    args = ap.parse_args(argv)
    n = publish(args.work_dir, args.dest)
    print(
        f"[publish] {n['records']} records and {n['notebooks']} notebooks from {args.work_dir} to {args.dest}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
