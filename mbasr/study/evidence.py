"""The evidence the claims are judged on (mbasr.study.claims): our test-set points, pooled over seeds, with
their per-utterance errors; the paired comparison of two points (the significance rule of
mbasr.study.claims); the paper's published curves; and a verdict with its reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mbasr.evaluation.scoring import bootstrap_ci, paired_bootstrap
from mbasr.runs.ids import run_id_for
from mbasr.vocab import MB_TAU, PAPER_SOURCE

PAPER_FIGURES = {"target_wer": ("2", "2-low", "4"), "source_wer": ("3",)}  # Figure 3 repeats target points
N_BOOT = 2000  # resamples of each paired test


@dataclass(frozen=True)
class Point:
    run_id: str  # the runs pooled, comma-separated (one per seed)
    wer: float
    ci_low: float
    ci_high: float
    keys: tuple[str, ...] | None = None  # "seed:utterance" of the pooled test utterances, when known
    errors: np.ndarray | None = field(default=None, compare=False)
    words: np.ndarray | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{100 * self.wer:.2f}% [{100 * self.ci_low:.2f}, {100 * self.ci_high:.2f}]"


@dataclass
class Judgement:
    verdict: str
    why: str
    missing: list[str] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    paper: list[dict[str, Any]] = field(default_factory=list)


def rounded(x: Any) -> float | None:
    return None if x is None or pd.isna(x) else round(float(x), 4)


def pool(points: list[tuple[int, Point]]) -> Point:
    """One point from the same run of several seeds: their utterances together, the CI bootstrapped over
    them (each seed's own CI when one seed or no per-utterance errors)."""
    ids = ",".join(pt.run_id for _, pt in points)
    if len(points) == 1 and points[0][1].keys is None:
        return points[0][1]
    if any(pt.keys is None for _, pt in points):  # no per-utterance data: the mean, CI of the mean's ends
        wers = [pt.wer for _, pt in points]
        lows, highs = [pt.ci_low for _, pt in points], [pt.ci_high for _, pt in points]
        return Point(ids, float(np.mean(wers)), float(np.mean(lows)), float(np.mean(highs)))
    keys = tuple(f"{seed}:{k}" for seed, pt in points for k in pt.keys)
    errors = np.concatenate([pt.errors for _, pt in points])
    words = np.concatenate([pt.words for _, pt in points])
    lo, hi = bootstrap_ci(errors, words, n_boot=1000, seed=0)
    return Point(ids, float(errors.sum() / words.sum()), lo, hi, keys, errors, words)


def compare(a: Point, b: Point, tests: list[dict] | None = None) -> int:
    """-1: a significantly lower than b, 1: significantly higher, 0: not significant (module docstring).
    The test is appended to `tests`."""
    if a.keys is not None and a.keys == b.keys:
        diff, lo, hi = paired_bootstrap(a.errors, b.errors, a.words, n_boot=N_BOOT, seed=0)
        test = "paired bootstrap"
        sign = -1 if hi < 0 else 1 if lo > 0 else 0
    else:
        diff, lo, hi = a.wer - b.wer, float("nan"), float("nan")
        test = "non-overlapping 95% CIs (no per-utterance errors to pair)"
        sign = -1 if a.ci_high < b.ci_low else 1 if a.ci_low > b.ci_high else 0
    if tests is not None:
        tests.append(
            {
                "a": a.run_id,
                "b": b.run_id,
                "test": test,
                "diff": round(diff, 5),
                "ci": [None if np.isnan(lo) else round(lo, 5), None if np.isnan(hi) else round(hi, 5)],
                "n_utts": None if a.keys is None else len(a.keys),
                "significant": {-1: "a lower", 1: "a higher", 0: "no"}[sign],
            }
        )
    return sign


def verdict_of(refuted: bool, missing: list[str], confirmed: bool) -> str:
    if refuted:
        return "not held"
    return "held" if confirmed and not missing else "inconclusive"


def show(pt: Point | None) -> str:
    return "missing" if pt is None else str(pt)


def paper_curve(pub: pd.DataFrame, target: str, method: str, metric: str = "target_wer") -> dict:
    """{p: WER %} of one published curve of the DefinedAI-source setting."""
    rows = pub[
        (pub.source == PAPER_SOURCE)
        & (pub.target == target)
        & (pub.method == method)
        & (pub.metric == metric)
        & pub.figure.isin(PAPER_FIGURES[metric])
    ]
    return {rounded(p): float(v) for p, v in zip(rows.p, rows.value, strict=True)}


def paper_rows(target: str, values: dict[tuple[str, float], float | None], **extra) -> list[dict]:
    return [
        {"target": target, "system": system, "p": p, **extra, "wer_pct": v}
        for (system, p), v in values.items()
        if v is not None
    ]


class Runs:
    """Test-set points of one (preset, scale, source) and its seeds (pooled), keyed by (experiment, target,
    p, tau_t, eval domain); knows the run id a missing run would have. `records` ({run_id: record}) give
    the per-utterance errors of the paired tests."""

    def __init__(
        self,
        table: pd.DataFrame,
        preset: str,
        scale: str,
        seeds: list[int],
        source: str,
        records: dict[str, dict] | None = None,
    ):
        self.preset, self.scale, self.source = preset, scale, source
        self.seeds = sorted(int(s) for s in seeds)
        self.seed = self.seeds[0]  # the seed a missing run is named with
        self.tests: list[dict] = []
        by_key: dict[tuple, list[tuple[int, Point]]] = {}
        for row in table.itertuples(index=False):
            target = None if pd.isna(row.target_domain) else row.target_domain
            key = (row.experiment, target, rounded(row.p), rounded(row.tau_t), row.eval_domain)
            same = by_key.setdefault(key, [])
            if any(seed == int(row.seed) for seed, _ in same):
                raise ValueError(
                    f"runs {same[0][1].run_id} and {row.run_id} give the same point {key} for seed "
                    f"{row.seed}; filter the table to one of them"
                )
            same.append((int(row.seed), self._point(row, (records or {}).get(row.run_id))))
        self.points = {k: pool(sorted(v, key=lambda x: x[0])) for k, v in by_key.items()}
        self.targets = sorted({k[1] for k in self.points if k[1] is not None})

    @staticmethod
    def _point(row, record: dict | None) -> Point:
        for e in (record or {}).get("eval", []):
            u = e.get("utterances")
            if e["domain"] == row.eval_domain and e["split"] == "test" and u:
                errors, words = np.array(u["errors"]), np.array(u["words"])
                return Point(row.run_id, row.wer, row.ci_low, row.ci_high, tuple(u["keys"]), errors, words)
        return Point(row.run_id, row.wer, row.ci_low, row.ci_high)

    def cmp(self, a: Point, b: Point) -> int:
        return compare(a, b, self.tests)

    @staticmethod
    def _tau_t(exp: str, p: float) -> float | None:
        return rounded((1 - p) * MB_TAU) if exp in ("mixed", "text_only") else None

    def get(self, exp: str, target: str | None, p: float, eval_domain: str) -> Point | None:
        return self.points.get((exp, target, rounded(p), self._tau_t(exp, p), eval_domain))

    def ps(self, exp: str, target: str, eval_domain: str) -> set[float]:
        """The p > 0 of the `exp` runs on `target` evaluated on `eval_domain` (mixed: at MB_TAU only)."""
        return {
            k[2]
            for k in self.points
            if k[:2] == (exp, target) and k[4] == eval_domain and k[2] > 0 and k[3] == self._tau_t(exp, k[2])
        }

    def run_id(self, exp: str, target: str | None, p: float = 0.0, tau: float | None = MB_TAU) -> str:
        return run_id_for(
            exp, self.preset, self.scale, self.seed, target, p, tau if exp in ("mixed", "text_only") else None
        )

    def evidence(self, target: str, system: str, p: float, pt: Point | None, **extra) -> list[dict]:
        if pt is None:
            return []
        point = {"run_id": pt.run_id, "wer": pt.wer, "ci_low": pt.ci_low, "ci_high": pt.ci_high}
        return [{"target": target, "system": system, "p": p, **extra, **point}]
