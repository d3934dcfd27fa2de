"""Result records and the tidy results table: what every experiment notebook (04-07) writes, and what the
claims (`mbasr/study/claims.py`), the figures and the report read.

One run, one record: `results/<run_id>.json`, a JSON object of schema "mbasr.result/1" (`SCHEMA` below,
checked on write and on read) holding the run's parameters, its resolved config, the code version, the
timings and one WER entry per evaluated set: test sets, and dev sets when asked (the learning-rate
search's runs, mbasr/study/search.py, may score a dev set only). WERs are fractions (0.0638 = 6.38 %), with the
bootstrap 95 % CI of `mbasr.evaluation.scoring.score`.

    rec = make_record(experiment="mixed", notebook="06_mixed_batch.ipynb", ..., eval=[eval_entry(...)])
    write_record(rec, "results")              # results/tiny-default-s0-mixed-banking-p0.2-tau0.5.json
    table = gather("results")                 # one row per (run, eval entry): COLUMNS

    python -m mbasr results gather results --out results.csv
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd

from mbasr.evaluation.scoring import read_alignments
from mbasr.io import atomic_write_json, atomic_write_text, code_version, library_versions
from mbasr.runs.ids import RUN_ID, run_id_for

SCHEMA_ID = "mbasr.result/1"
CLAIMS_FILE = "claims.json"  # written beside the records by the workflow (mbasr.study.claims), not a record
SEARCH_FILE = "search.json"  # the stage-2 learning-rate search's outcome (mbasr.study.search), not a record
PREMISES_FILE = "premises.json"  # the fine-tuning premise, written beside claims.json (mbasr.study.claims)
NOT_RECORDS = (CLAIMS_FILE, SEARCH_FILE, PREMISES_FILE)
EXPERIMENTS = ("base", "text_only", "asr", "mixed")
COLUMNS = (
    "run_id",
    "experiment",
    "preset",
    "scale",
    "seed",
    "source_domain",
    "target_domain",
    "p",
    "tau",
    "tau_t",
    "steps",
    "lr",
    "eval_domain",
    "split",
    "wer",
    "ci_low",
    "ci_high",
    "n_utts",
    "code_version",
    "created",
    "executed_notebook",
)

_NULL_STR = {"type": ["string", "null"]}
_SHARE = {"type": "number", "minimum": 0, "maximum": 1}
_NULL_SHARE = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
_RATE = {"type": "number", "minimum": 0}

EVAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["domain", "split", "wer", "ci_low", "ci_high", "n_utts", "n_words", "alignments"],
    "properties": {
        "domain": {"type": "string", "minLength": 1},
        "split": {"enum": ["test", "dev"]},
        "wer": _RATE,
        "ci_low": _RATE,
        "ci_high": _RATE,
        "n_utts": {"type": "integer", "minimum": 1},
        "n_words": {"type": ["integer", "null"], "minimum": 1},
        "alignments": _NULL_STR,
        # per utterance, in test-set order: what a paired test between two systems needs (mbasr.study.claims)
        "utterances": {
            "type": "object",
            "additionalProperties": False,
            "required": ["keys", "errors", "words"],
            "properties": {
                "keys": {"type": "array", "items": {"type": "string"}},
                "errors": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "words": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            },
        },
    },
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "run_id": {"type": "string", "pattern": RUN_ID},
        "experiment": {"enum": list(EXPERIMENTS)},
        "notebook": {"type": "string", "minLength": 1},
        "executed_notebook": _NULL_STR,
        "preset": {"type": "string", "minLength": 1},
        "scale": {"type": "string", "minLength": 1},
        "seed": {"type": "integer"},
        "source_domain": {"type": "string", "minLength": 1},
        "target_domain": _NULL_STR,
        "p": _SHARE,
        "tau": _NULL_SHARE,
        "tau_t": _NULL_SHARE,
        "steps": {"type": ["integer", "null"], "minimum": 0},
        "lr": {"type": ["number", "null"], "exclusiveMinimum": 0},
        "params": {"type": "object"},
        "config": {"type": ["object", "null"]},
        "code_version": {"type": "string", "minLength": 1},
        "versions": {"type": "object", "additionalProperties": {"type": "string"}},
        "created": {"type": "string", "minLength": 1},
        "seconds": {"type": "object", "additionalProperties": _RATE},
        "model_path": _NULL_STR,
        "eval": {"type": "array", "minItems": 1, "items": EVAL_SCHEMA},
        # adaptation runs only (mbasr/runs/adapt.py): the target audio they used and their base model's folder
        "audio_subset": {
            "type": "object",
            "additionalProperties": False,
            "required": ["utterances", "hours"],
            "properties": {
                "utterances": {"type": "integer", "minimum": 0},
                "hours": {"type": "number", "minimum": 0},
            },
        },
        "base_run": {"type": "string"},
    },
}
# every field is present (the optional ones as null), except the two that only adaptation runs have
# `versions` arrived after the first published records: make_record always writes it
SCHEMA["required"] = [k for k in SCHEMA["properties"] if k not in ("audio_subset", "base_run", "versions")]
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
_TOL = 1e-6


def _field(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(record)"


def _semantic_errors(rec: dict[str, Any]) -> list[tuple[str, str]]:
    """What JSON Schema cannot say: finite numbers, CI order, and the experiment's own constraints."""
    errs = []
    for i, e in enumerate(rec["eval"]):
        vals = {k: e[k] for k in ("wer", "ci_low", "ci_high")}
        bad = [k for k, v in vals.items() if not math.isfinite(v)]
        errs += [(f"eval[{i}].{k}", f"{vals[k]} is not a finite number") for k in bad]
        if not bad and not vals["ci_low"] <= vals["wer"] <= vals["ci_high"]:
            lo, wer, hi = vals["ci_low"], vals["wer"], vals["ci_high"]
            errs.append((f"eval[{i}]", f"needs ci_low <= wer <= ci_high, got {lo} / {wer} / {hi}"))
    seen = [(e["domain"], e["split"]) for e in rec["eval"]]
    errs += [
        ("eval", f"{d!r} {s!r} is evaluated twice") for d, s in sorted(set(seen)) if seen.count((d, s)) > 1
    ]
    numbers = {k: rec[k] for k in ("p", "tau", "tau_t", "lr")} | {
        f"seconds.{k}": v for k, v in rec["seconds"].items()
    }
    errs += [
        (k, f"{v} is not a finite number")
        for k, v in numbers.items()
        if isinstance(v, float) and not math.isfinite(v)
    ]
    exp, p, tau, tau_t = rec["experiment"], rec["p"], rec["tau"], rec["tau_t"]
    if (rec["target_domain"] is None) != (exp == "base"):
        errs.append(("target_domain", f"must be null for a base run and a domain otherwise ({exp!r})"))
    if exp in ("base", "text_only") and p != 0:
        errs.append(("p", f"a {exp} run has no target audio: p must be 0, got {p}"))
    if exp in ("asr", "mixed") and p <= 0:
        errs.append(("p", f"a {exp} run trains on target audio: p must be > 0 (p = 0 is base / text_only)"))
    if exp in ("base", "asr") and (tau is not None or tau_t is not None):
        errs.append(("tau", f"a {exp} run has no target text: tau and tau_t must be null"))
    if exp in ("text_only", "mixed"):
        if tau is None or tau_t is None:
            errs.append(("tau", f"a {exp} run needs tau and tau_t (the target and target-text shares)"))
        elif abs(tau_t - (1 - p) * tau) > _TOL:
            errs.append(("tau_t", f"must equal (1 - p) * tau = {(1 - p) * tau:g}, got {tau_t}"))
    try:
        datetime.fromisoformat(rec["created"])
    except ValueError:
        errs.append(("created", f"{rec['created']!r} is not an ISO 8601 time"))
    return errs


def validate_record(rec: Any, where: str = "") -> None:
    """Raise ValueError listing every problem of `rec`, each as `<where>: field <path>: <what is wrong>`."""
    where = f"{where}: " if where else ""
    errors = sorted(_VALIDATOR.iter_errors(rec), key=lambda e: list(map(str, e.absolute_path)))
    msgs = [f"field {_field(e.absolute_path)}: {e.message}" for e in errors]
    if not msgs:
        msgs = [f"field {f}: {m}" for f, m in _semantic_errors(rec)]
    if msgs:
        raise ValueError(f"{where}not a valid {SCHEMA_ID} result record:\n  " + "\n  ".join(msgs))


def eval_entry(domain: str, split: str, result: Any, alignments: str | Path | None = None) -> dict[str, Any]:
    """An `eval` entry from a `WerResult` or its summary dict (`<domain>_test.json`, a base `result["wer"]`
    value): the record keeps WER, CI and sizes; the error counts stay in the alignments file."""
    d = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    entry = {
        "domain": domain,
        "split": split,
        **{k: d[k] for k in ("wer", "ci_low", "ci_high", "n_utts")},
        "n_words": d.get("n_words"),
        "alignments": None if alignments is None else str(alignments),
    }
    if alignments is not None and Path(alignments).is_file():
        rows = read_alignments(alignments)
        entry["utterances"] = {
            "keys": [r["key"] for r in rows],
            "errors": [r["subs"] + r["ins"] + r["dels"] for r in rows],
            "words": [r["n_ref"] for r in rows],
        }
    return entry


def make_record(**fields: Any) -> dict[str, Any]:
    """A validated record from `fields`; fills what is derived when absent: schema, created (now, UTC),
    code_version, tau_t ((1 - p) * tau) and run_id (`run_id_for`)."""
    rec = {"schema": SCHEMA_ID, "created": datetime.now(UTC).isoformat(timespec="seconds")} | fields
    if "code_version" not in rec:
        rec["code_version"] = code_version()
    if "versions" not in rec:
        rec["versions"] = library_versions()
    if "tau_t" not in rec and "p" in rec and "tau" in rec:
        rec["tau_t"] = None if rec["tau"] is None else (1 - rec["p"]) * rec["tau"]
    if "run_id" not in rec and all(k in rec for k in ("experiment", "preset", "scale", "seed")):
        rec["run_id"] = run_id_for(
            rec["experiment"],
            rec["preset"],
            rec["scale"],
            rec["seed"],
            rec.get("target_domain"),
            rec.get("p", 0.0),
            rec.get("tau"),
        )
    validate_record(rec, where=f"record {rec.get('run_id', '?')}")
    return rec


def write_record(rec: dict[str, Any], results_dir: str | Path) -> Path:
    """Validate `rec` and write it atomically to `results_dir/<run_id>.json`; returns the path."""
    path = Path(results_dir) / f"{rec.get('run_id')}.json"
    validate_record(rec, where=str(path))
    atomic_write_json(path, rec)
    return path


def read_records(results_dir: str | Path) -> list[dict[str, Any]]:
    """Every record of `results_dir` (its `*.json` but the claims and search files that the workflow writes
    beside them, sorted by name), each validated."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"{results_dir}: no such results folder")
    recs = []
    for path in sorted(results_dir.glob("*.json")):
        if path.name in NOT_RECORDS:
            continue
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
        validate_record(rec, where=str(path))
        if rec["run_id"] != path.stem:
            raise ValueError(f"{path}: field run_id: {rec['run_id']!r} does not match the file name")
        recs.append(rec)
    return recs


def gather(results_dir: str | Path) -> pd.DataFrame:
    """The tidy table: one row per (run, eval entry), columns `COLUMNS`, sorted by run id."""
    rows = [
        {k: rec[k] for k in COLUMNS if k in rec}
        | {"eval_domain": e["domain"], **{k: e[k] for k in ("split", "wer", "ci_low", "ci_high", "n_utts")}}
        for rec in read_records(results_dir)
        for e in rec["eval"]
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    atomic_write_text(path, df.to_csv(index=False))


def read_table(path: str | Path) -> pd.DataFrame:
    """A table written by `write_table`, its columns checked."""
    df = pd.read_csv(path)
    if tuple(df.columns) != COLUMNS:
        raise ValueError(f"{path}: columns {list(df.columns)} are not the results table's {list(COLUMNS)}")
    return df


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mbasr results", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("gather", help="validate every record of a folder and write the tidy table")
    g.add_argument("results_dir")
    g.add_argument("--out", help="CSV to write (default: print the table)")
    args = parser.parse_args(argv)
    try:
        df = gather(args.results_dir)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.out:
        write_table(df, args.out)
        print(f"{args.out}: {len(df)} rows from {df['run_id'].nunique()} runs")
    else:
        df.to_csv(sys.stdout, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
