"""Scoring: the paper's "System" table, rows "decoding" and "scoring".

WER is computed after the scoring normaliser (`mbasr.evaluation.wer_normalizer`: upper case, punctuation
off, fillers removed, contractions expanded, a few spelling merges), with the paper's hallucination guard
applied to each normalised hypothesis: one of more than 5 words whose words / unique-words ratio exceeds 7
is replaced by "UNK" (the authors' `fix_hallucination`).

WER is reported as a fraction (0.0638 = 6.38 %), with a bootstrap 95 % confidence interval over
utterances (resample utterances with replacement, WER = total errors / total reference words of the
resample).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jiwer
import numpy as np

from mbasr.evaluation.wer_normalizer import hallucination_guard, normalize
from mbasr.io import atomic_write_text


@dataclass
class WerResult:
    """Corpus WER (a fraction) with its bootstrap CI, error counts and one row per utterance."""

    wer: float
    ci_low: float
    ci_high: float
    n_utts: int
    n_words: int  # reference words after normalisation
    subs: int
    ins: int
    dels: int
    hits: int
    n_guarded: int  # hypotheses replaced by the hallucination guard
    n_boot: int
    seed: int
    rows: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def errors(self) -> int:
        return self.subs + self.ins + self.dels

    def to_dict(self, include_rows: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not include_rows:
            d.pop("rows")
        return d


def _alignment_rows(refs: list[str], hyps: list[str]) -> list[dict[str, Any]]:
    """Per-utterance counts and aligned word pairs [op, ref word, hyp word], op in C/S/I/D."""
    rows: list[dict[str, Any]] = [{} for _ in refs]
    both = [i for i, (r, h) in enumerate(zip(refs, hyps, strict=True)) if r and h]
    if both:
        out = jiwer.process_words([refs[i] for i in both], [hyps[i] for i in both])
        for i, rw, hw, chunks in zip(both, out.references, out.hypotheses, out.alignments, strict=True):
            pairs = []
            for c in chunks:
                r_words = rw[c.ref_start_idx : c.ref_end_idx]
                h_words = hw[c.hyp_start_idx : c.hyp_end_idx]
                if c.type in ("equal", "substitute"):
                    op = "C" if c.type == "equal" else "S"
                    pairs += [[op, r, h] for r, h in zip(r_words, h_words, strict=True)]
                elif c.type == "delete":
                    pairs += [["D", r, None] for r in r_words]
                elif c.type == "insert":
                    pairs += [["I", None, h] for h in h_words]
                else:
                    raise AssertionError(f"scoring: unknown jiwer alignment type {c.type!r}")
            rows[i]["pairs"] = pairs
    for i, (r, h) in enumerate(zip(refs, hyps, strict=True)):
        if not (r and h):
            rows[i]["pairs"] = [["D", w, None] for w in r.split()] + [["I", None, w] for w in h.split()]
        ops = [p[0] for p in rows[i]["pairs"]]
        rows[i].update(hits=ops.count("C"), subs=ops.count("S"), ins=ops.count("I"), dels=ops.count("D"))
    return rows


def bootstrap_ci(
    errors: np.ndarray, ref_words: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of total errors / total reference words, resampling utterances.
    Vectorised, in chunks of resamples so memory stays ~32 MB whatever the corpus size."""
    errors = np.asarray(errors, dtype=np.int64)
    ref_words = np.asarray(ref_words, dtype=np.int64)
    n = len(errors)
    if n == 0 or n_boot <= 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    chunk = max(1, 4_000_000 // n)
    wers = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        e, r = errors[idx].sum(axis=1), ref_words[idx].sum(axis=1)
        wers[start : start + len(idx)] = np.where(r > 0, e / np.maximum(r, 1), np.where(e > 0, np.inf, 0.0))
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(wers, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def paired_bootstrap(
    errors_a: np.ndarray,
    errors_b: np.ndarray,
    ref_words: np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """WER(A) - WER(B) of two systems scored on the same utterances, with its percentile bootstrap CI:
    each resample draws utterances once and scores both systems on that draw (a paired test: the
    utterances' own difficulty cancels out). A CI wholly below 0 means A is significantly better."""
    ea, eb = np.asarray(errors_a, dtype=np.int64), np.asarray(errors_b, dtype=np.int64)
    words = np.asarray(ref_words, dtype=np.int64)
    if not (len(ea) == len(eb) == len(words)) or len(words) == 0:
        raise ValueError(
            f"paired_bootstrap: errors_a ({len(ea)}), errors_b ({len(eb)}) and ref_words ({len(words)}) "
            "must be the same non-zero number of utterances"
        )
    if words.sum() == 0:
        raise ValueError("paired_bootstrap: the references hold no words; WER is undefined")
    rng = np.random.default_rng(seed)
    chunk = max(1, 4_000_000 // len(words))
    diffs = np.empty(n_boot)
    delta = ea - eb
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, len(words), size=(min(chunk, n_boot - start), len(words)))
        diffs[start : start + len(idx)] = delta[idx].sum(axis=1) / np.maximum(words[idx].sum(axis=1), 1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(diffs, [alpha, 1.0 - alpha])
    return float(delta.sum() / words.sum()), float(lo), float(hi)


def score(
    refs: Sequence[str],
    hyps: Sequence[str],
    keys: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    normalise: bool = True,
    guard: bool = True,
) -> WerResult:
    """Score hypotheses against references (raw text; normalised here unless `normalise=False`)."""
    if isinstance(refs, str) or isinstance(hyps, str):
        raise TypeError("evaluate.score: `refs` and `hyps` must be sequences of strings, not one string")
    if len(refs) != len(hyps):
        raise ValueError(f"evaluate.score: `refs` has {len(refs)} items but `hyps` has {len(hyps)}")
    keys = [str(i) for i in range(len(refs))] if keys is None else [str(k) for k in keys]
    if len(keys) != len(refs):
        raise ValueError(f"evaluate.score: `keys` has {len(keys)} items but `refs` has {len(refs)}")
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})[:5]
        raise ValueError(f"evaluate.score: `keys` has duplicates, e.g. {dup}")
    prep = normalize if normalise else (lambda s: " ".join(s.split()))
    n_refs = [prep(r) for r in refs]
    n_hyps = [prep(h) for h in hyps]
    guarded = [hallucination_guard(h) if guard else h for h in n_hyps]
    rows = _alignment_rows(n_refs, guarded)
    for row, k, r, h, nr, nh, g in zip(rows, keys, refs, hyps, n_refs, n_hyps, guarded, strict=True):
        n = len(nr.split())
        err = row["subs"] + row["ins"] + row["dels"]
        row.update(
            key=k,
            ref_raw=r,
            hyp_raw=h,
            ref=nr,
            hyp=g,
            guarded=g != nh,
            n_ref=n,
            wer=err / n if n else float(err > 0),
        )
    errors = np.array([r["subs"] + r["ins"] + r["dels"] for r in rows], dtype=np.int64)
    ref_words = np.array([r["n_ref"] for r in rows], dtype=np.int64)
    total = int(ref_words.sum())
    if total == 0:
        raise ValueError("evaluate.score: the references hold no words after normalisation; WER is undefined")
    lo, hi = bootstrap_ci(errors, ref_words, n_boot=n_boot, seed=seed)
    return WerResult(
        wer=float(errors.sum() / total),
        ci_low=lo,
        ci_high=hi,
        n_utts=len(rows),
        n_words=total,
        subs=sum(r["subs"] for r in rows),
        ins=sum(r["ins"] for r in rows),
        dels=sum(r["dels"] for r in rows),
        hits=sum(r["hits"] for r in rows),
        n_guarded=sum(r["guarded"] for r in rows),
        n_boot=n_boot,
        seed=seed,
        rows=rows,
    )


_ROW_ORDER = (
    "key",
    "n_ref",
    "subs",
    "ins",
    "dels",
    "hits",
    "wer",
    "guarded",
    "ref",
    "hyp",
    "ref_raw",
    "hyp_raw",
    "pairs",
)


def save_alignments(result: WerResult, path: str | Path) -> None:
    """Write one JSON line per utterance (counts, normalised and raw texts, aligned pairs), atomically."""
    lines = [json.dumps({k: row[k] for k in _ROW_ORDER}, ensure_ascii=False) for row in result.rows]
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def read_alignments(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
    return rows
