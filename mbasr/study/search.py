"""The stage-2 learning-rate search: every strategy's lr is chosen on dev sets, never on test sets, with the
same candidates, the same step budget, the same base model, seed and dev sets for every strategy, so the
comparisons of the grid are fair. It is a separate part of the workflow (too costly to rerun inside the
main job); its outcome is committed with its provenance, as the shipped stage-0 checkpoint is:

    snakemake -s workflow/Snakefile search --cores 2 --configfile workflow/grids/search.yaml
    python -m mbasr search apply --work-dir runs     # the chosen lrs -> workflow/grids/stage2_lr.yaml

The search config (`workflow/grids/search.yaml`, a `search:` section) names the strategies, the candidate
lrs and the dev sets (targets, and the audio share p of mixed and asr); everything else (preset, scale,
work_dir, the first seed, source_domain, tau, steps, base_steps) comes from the grid it tunes, merged
before it (default.yaml unless another --configfile comes first). So a search run IS the grid's run at its
candidate lr: the candidate equal to the preset's lr has the grid's run id and run folder, and mbasr.runs.adapt
decodes only what is missing (the search's runs score the target dev set only, `eval_test=False`). Their
records go to `<work_dir>/search/records/` (not the results table), their notebooks and logs beside.

Selection rule (`choose`): per strategy, the candidate with the lowest dev WER (with several dev sets, the
mean of their WERs, each dev set counting once); a tie (equal WER to 1e-9, i.e. the same errors) goes to the
smaller lr. `select` writes `<work_dir>/results/search.json` (atomically): per strategy the candidates with
their dev WER and CI and runs, the chosen lr, whether it lies at an end of the candidates (then the best lr
may lie beyond), the search config and the code version. `apply` writes the chosen lrs into `LR_FILE`,
which mbasr/study/grid.py reads (one entry per preset, scale, source domain, steps and base steps).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from mbasr.io import atomic_write_json, code_version
from mbasr.study import lr_file
from mbasr.study.grid import (
    LR_FILE,
    ROOT,
    Job,
    base_job_name,
    positive_number,
    preset_lr,
    run_job,
)
from mbasr.study.results import SEARCH_FILE, validate_record
from mbasr.vocab import NOTEBOOKS, STRATEGIES

SCHEMA_ID = "mbasr.study.search/1"
DEFAULT_CONFIGS = ("workflow/grids/default.yaml", "workflow/grids/search.yaml")
SEARCH_KEYS = ("strategies", "lrs", "targets", "p")  # the `search:` section
GRID_KEYS = ("preset", "scale", "work_dir", "seeds", "source_domain", "tau")  # taken from the grid
RECORDS = Path("search") / "records"  # under work_dir; notebooks/, logs/ and done/ beside it
RULE = (
    "lowest dev WER (the mean over the search's dev sets when there are several); "
    "a tie (to 1e-9) goes to the smaller lr"
)
_TIE = 1e-9


def _err(msg: str) -> ValueError:
    return ValueError(f"search config: {msg} (see workflow/grids/search.yaml)")


def search_spec(config: dict[str, Any]) -> dict[str, Any]:
    """The resolved search: the `search:` section of `config` checked, with what it takes from the grid;
    a bad config fails naming the key."""
    sec = config.get("search")
    if not isinstance(sec, dict):
        raise _err(f"needs a `search:` mapping, got {sec!r}")
    unknown = sorted(set(sec) - set(SEARCH_KEYS))
    if unknown:
        raise _err(f"unknown key(s) {['search.' + k for k in unknown]}; known: {list(SEARCH_KEYS)}")
    missing = [f"search.{k}" for k in SEARCH_KEYS if k not in sec] + [k for k in GRID_KEYS if k not in config]
    if missing:
        raise _err(f"missing {missing} (the grid keys come from the grid config merged before it)")
    strategies = sec["strategies"]
    if (
        not isinstance(strategies, list)
        or not strategies
        or len(set(strategies)) < len(strategies)
        or any(s not in STRATEGIES for s in strategies)
    ):
        raise _err(
            f"search.strategies must be distinct strategies among {list(STRATEGIES)}, got {strategies!r}"
        )
    lrs = sec["lrs"]
    if not isinstance(lrs, list) or not lrs or not all(positive_number(v) for v in lrs):
        raise _err(f"search.lrs must be a non-empty list of positive learning rates, got {lrs!r}")
    if len({float(v) for v in lrs}) < len(lrs):
        raise _err(f"search.lrs holds a value twice: {lrs!r}")
    targets = sec["targets"]
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) and t for t in targets):
        raise _err(f"search.targets must be a non-empty list of target domains, got {targets!r}")
    if config["source_domain"] in targets or len(set(targets)) < len(targets):
        raise _err(f"search.targets must be distinct targets, not the source domain: {targets!r}")
    ps = sec["p"] if isinstance(sec["p"], list) else [sec["p"]]
    if not ps or not all(positive_number(p) and p <= 1 for p in ps) or len(set(ps)) < len(ps):
        raise _err(f"search.p must be distinct audio shares in (0, 1] (of mixed and asr), got {sec['p']!r}")
    seeds = config["seeds"]
    if not isinstance(seeds, list) or not seeds:
        raise _err(f"seeds must be a non-empty list (the search uses the first), got {seeds!r}")
    return {
        "preset": config["preset"],
        "scale": config["scale"],
        "work_dir": str(config["work_dir"]),
        "seed": int(seeds[0]),
        "source_domain": config["source_domain"],
        "tau": float(config["tau"]),
        "steps": int(config.get("steps") or 0),
        "base_steps": int(config.get("base_steps") or 0),
        "strategies": [s for s in STRATEGIES if s in strategies],
        "lrs": sorted(float(v) for v in lrs),
        "targets": list(targets),
        "p": [float(p) for p in ps],
        "preset_lr": preset_lr(config["preset"]),
    }


def search_jobs(spec: dict[str, Any]) -> dict[str, Job]:
    """The search's runs, named by run id (the grid's id for the same settings), each waiting for the
    grid's base model job; they score the target dev set only and write their records to RECORDS."""
    base = base_job_name(
        spec["preset"], spec["scale"], spec["seed"], spec["source_domain"], spec["base_steps"]
    )
    jobs: dict[str, Job] = {}
    for target in spec["targets"]:
        for strategy in spec["strategies"]:
            for p in [0.0] if strategy == "text_only" else spec["p"]:
                tau = None if strategy == "asr" else spec["tau"]
                for lr in spec["lrs"]:
                    same = math.isclose(lr, spec["preset_lr"], rel_tol=1e-9)
                    common = {
                        "preset": spec["preset"],
                        "seed": spec["seed"],
                        "scale": spec["scale"],
                        "source_domain": spec["source_domain"],
                        "steps": spec["steps"],
                        "lr": 0.0 if same else lr,
                        "base_steps": spec["base_steps"],
                    }
                    job = run_job(strategy, target, p, tau, spec["seed"], common, base)
                    job.params |= {
                        "eval_dev": True,
                        "eval_test": False,
                        "results_dir": str(Path(spec["work_dir"]) / RECORDS),
                    }
                    jobs[job.name] = job
    return jobs


def choose(candidates: list[dict[str, Any]]) -> dict[str, Any]:
    """The candidate (a dict with `lr` and `dev_wer`) of the lowest dev WER; a tie goes to the smaller lr."""
    if not candidates:
        raise ValueError("no candidate to choose from")
    best = min(c["dev_wer"] for c in candidates)
    return min((c for c in candidates if c["dev_wer"] - best <= _TIE), key=lambda c: c["lr"])


def _read(path: Path) -> dict[str, Any]:
    rec = json.loads(path.read_text(encoding="utf-8"))
    validate_record(rec, where=str(path))
    return rec


def select(spec: dict[str, Any], records_dir: str | Path | None = None) -> dict[str, Any]:
    """The search's outcome (what `write_search` writes) from its runs' records (default: RECORDS under
    the work_dir); fails naming the runs whose record or dev-set evaluation is missing."""
    records_dir = Path(records_dir) if records_dir else Path(spec["work_dir"]) / RECORDS
    jobs = search_jobs(spec)
    missing = [n for n in jobs if not (records_dir / f"{n}.json").exists()]
    if missing:
        raise FileNotFoundError(
            f"{records_dir}: no record of the search runs {missing}; run the search first "
            "(snakemake -s workflow/Snakefile search --cores 2 --configfile workflow/grids/search.yaml)"
        )
    runs: dict[str, dict[float, list[dict[str, Any]]]] = {
        s: {lr: [] for lr in spec["lrs"]} for s in spec["strategies"]
    }
    bases, steps = set(), set()
    strategy_of = {nb: s for s, nb in NOTEBOOKS.items()}
    for name, job in jobs.items():
        path = records_dir / f"{name}.json"
        rec = _read(path)
        strategy, target = strategy_of[job.notebook], job.params["target_domain"]
        lr = next(
            c for c in spec["lrs"] if math.isclose(c, job.params["lr"] or spec["preset_lr"], rel_tol=1e-9)
        )
        if (rec["experiment"], rec["target_domain"]) != (strategy, target) or not math.isclose(
            rec["lr"], lr, rel_tol=1e-9
        ):
            raise ValueError(
                f"{path}: a {rec['experiment']} run on {rec['target_domain']} at lr {rec['lr']:g}, not the "
                f"search's run {name} ({strategy} on {target} at lr {lr:g})"
            )
        dev = [e for e in rec["eval"] if e["domain"] == target and e["split"] == "dev"]
        if not dev:
            raise ValueError(f"{path}: no evaluation on the {target} dev set; rerun the search's run {name}")
        e = dev[0]
        bases.add(rec.get("base_run"))
        steps.add(rec["steps"])
        runs[strategy][lr].append(
            {
                "run_id": name,
                "target_domain": target,
                "p": rec["p"],
                "dev_wer": e["wer"],
                "ci_low": e["ci_low"],
                "ci_high": e["ci_high"],
                "n_utts": e["n_utts"],
                "n_words": e["n_words"],
                "steps": rec["steps"],
                "record": str(path),
                "executed_notebook": rec["executed_notebook"],
                "code_version": rec["code_version"],
            }
        )
    if len(bases) > 1:
        raise ValueError(f"{records_dir}: the search's runs come from different base models {sorted(bases)}")
    if len(steps) > 1:
        raise ValueError(f"{records_dir}: the search's runs trained different step budgets {sorted(steps)}")
    out: dict[str, Any] = {}
    for strategy, by_lr in runs.items():
        cands = []
        for lr, rs in by_lr.items():
            one = len(rs) == 1
            cands.append(
                {
                    "lr": lr,
                    "dev_wer": sum(r["dev_wer"] for r in rs) / len(rs),
                    "ci_low": rs[0]["ci_low"] if one else None,  # one dev set: its bootstrap 95 % CI
                    "ci_high": rs[0]["ci_high"] if one else None,
                    "runs": rs,
                }
            )
        best = choose(cands)
        out[strategy] = {
            "chosen_lr": best["lr"],
            "preset_lr": spec["preset_lr"],
            "at_edge": len(cands) > 1 and best["lr"] in (spec["lrs"][0], spec["lrs"][-1]),
            "candidates": cands,
        }
    return {
        "schema": SCHEMA_ID,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "code_version": code_version(),
        "rule": RULE,
        "config": spec,
        "dev_sets": [{"domain": t, "split": "dev"} for t in spec["targets"]],
        "steps": steps.pop(),
        "base_run": bases.pop(),
        "records_dir": str(records_dir),
        "strategies": out,
    }


def search_path(work_dir: str | Path) -> Path:
    return Path(work_dir) / "results" / SEARCH_FILE


def write_search(result: dict[str, Any], work_dir: str | Path | None = None) -> Path:
    """Write the search's outcome atomically to `<work_dir>/results/search.json`; returns the path."""
    path = search_path(work_dir if work_dir is not None else result["config"]["work_dir"])
    atomic_write_json(path, result)
    return path


def read_search(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no search outcome; run `python -m mbasr search select` first")
    result = json.loads(path.read_text(encoding="utf-8"))
    if result.get("schema") != SCHEMA_ID:
        raise ValueError(f"{path}: field schema: not a {SCHEMA_ID} search outcome")
    return result


def load_config(configfiles: list[str | Path], work_dir: str | None = None) -> dict[str, Any]:
    """Grid and search config files merged in order (a later file's keys win, mappings merged), as
    Snakemake merges --configfile; `work_dir` overrides theirs."""

    def merge(a: dict, b: dict) -> dict:
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(a[k], v) if isinstance(a.get(k), dict) and isinstance(v, dict) else v
        return out

    config: dict[str, Any] = {}
    for f in configfiles:
        path = Path(f) if Path(f).exists() else ROOT / f
        config = merge(config, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    if work_dir:
        config["work_dir"] = str(work_dir)
    return config


def _summary(result: dict[str, Any]) -> str:
    rows = []
    for s, v in result["strategies"].items():
        for c in v["candidates"]:
            ci = "" if c["ci_low"] is None else f" [{100 * c['ci_low']:.2f}, {100 * c['ci_high']:.2f}]"
            mark = "  <- chosen" if c["lr"] == v["chosen_lr"] else ""
            rows.append(f"  {s:<9} lr {c['lr']:<8g} dev WER {100 * c['dev_wer']:.2f}%{ci}{mark}")
        if v["at_edge"]:
            rows.append(f"  {s:<9} note: the chosen lr is an end of the candidates; the best may lie beyond")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mbasr search", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    sel = sub.add_parser("select", help="choose each strategy's lr from the search's runs -> search.json")
    sel.add_argument("--work-dir", help="the workflow's work_dir (default: the config's)")
    sel.add_argument(
        "--configfile",
        nargs="+",
        default=list(DEFAULT_CONFIGS),
        help=f"grid and search configs, merged in order (default: {' '.join(DEFAULT_CONFIGS)})",
    )
    sel.add_argument(
        "--spec", help="the resolved search as JSON (what the Snakefile passes); wins over configs"
    )
    app = sub.add_parser("apply", help="write the chosen lrs of search.json into the lr file the grid reads")
    app.add_argument(
        "--work-dir", default="runs", help="reads <work-dir>/results/search.json (default: runs)"
    )
    app.add_argument("--search", help="the search.json to apply (default: the work_dir's)")
    app.add_argument("--out", default=str(ROOT / LR_FILE), help=f"the lr file (default: {LR_FILE})")
    args = ap.parse_args(argv)
    try:
        if args.command == "select":
            if args.spec:
                spec = json.loads(args.spec)
                if args.work_dir:
                    spec["work_dir"] = args.work_dir
            else:
                spec = search_spec(load_config(args.configfile, args.work_dir))
            result = select(spec)
            path = write_search(result)
            print(f"[search] {path}: {RULE}\n{_summary(result)}")
        else:
            src = Path(args.search) if args.search else search_path(args.work_dir)
            result = read_search(src)
            entry = lr_file.apply(result, args.out, src)
            a = entry["applies_to"]
            print(f"[search] {args.out}: stage-2 lrs for {a['preset']}/{a['scale']} from {src}")
            for s, lr in entry["lr"].items():
                same = math.isclose(lr, entry["search"]["preset_lr"], rel_tol=1e-9)
                what = (
                    "the preset's: run ids unchanged" if same else f"run ids of {s} runs now end in -lr{lr:g}"
                )
                print(f"  {s:<9} {lr:g} ({what})")
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
