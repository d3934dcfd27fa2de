"""Systems side by side: WER tables of several runs and the transcripts of an adapted model beside the
base model's (what notebooks 04-07 show)."""

from __future__ import annotations

from typing import Any

from mbasr.evaluation.scoring import read_alignments
from mbasr.runs.base_scores import base_eval

WER_COLS = ("wer", "ci_low", "ci_high", "n_utts")


def _entry(res: Any, domain: str) -> dict[str, Any] | None:
    """A system's WER on `domain`'s test set: an adaptation run's record entry (None when it was not
    evaluated there) or the base model's score."""
    if hasattr(res, "record"):
        try:
            e = res.wer(domain)
        except KeyError:
            return None
    else:
        e, _ = base_eval(res, domain)
    return {k: e[k] for k in WER_COLS}


def compare(systems: dict[str, Any], domains: list[str]):
    """WER with CI of several systems (name -> AdaptResult or BaseResult) on the test sets of `domains`:
    one row per (system, domain), in the given order (a system not evaluated on a domain is left out)."""
    import pandas as pd

    rows = []
    for name, res in systems.items():
        for d in domains:
            w = _entry(res, d)
            if w is not None:
                rows.append({"system": name, "domain": d, **w})
    return pd.DataFrame(rows)


def side_by_side(res, base, n: int = 5, domain: str | None = None):
    """The first `n` test utterances of `domain` (default: the target): reference, base model hypothesis
    and adapted hypothesis, with each one's word errors."""
    import pandas as pd

    domain = domain or res.record["target_domain"]
    ours = {r["key"]: r for r in read_alignments(res.wer(domain)["alignments"])}
    theirs = read_alignments(base_eval(base, domain)[1])
    rows = []
    for r in theirs:
        if r["key"] in ours and len(rows) < n:
            a = ours[r["key"]]
            rows.append(
                {
                    "reference": r["ref_raw"],
                    "base model": r["hyp_raw"],
                    "base errors": _errors(r),
                    "adapted": a["hyp_raw"],
                    "adapted errors": _errors(a),
                }
            )
    return pd.DataFrame(rows)


def _errors(row: dict) -> int:
    return row["subs"] + row["ins"] + row["dels"]
