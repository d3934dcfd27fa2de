"""Scoring: the paper's "System" table, rows "decoding" and "scoring".

WER is computed after a text normalisation in the spirit of the authors' `wer_result.py` (upper case,
punctuation off, fillers removed, contractions expanded, a few spelling merges), with the paper's
hallucination guard applied to each normalised hypothesis: one of more than 5 words whose
words / unique-words ratio exceeds 7 is replaced by "UNK" (the authors' `fix_hallucination`).

Every rule lives in the module-level tables below, so a reader sees the whole normaliser in one place.
Deviation from the authors' list, on purpose: their sed file also merges plurals into singulars
(CARDS -> CARD), CAN -> COULD, WILL -> WOULD, YEAH -> YES and company names of their call-centre data.
Those hide real recognition errors on general English and are left out; add them to `PHRASES` to restore
the authors' scoring.

WER is reported as a fraction (0.0638 = 6.38 %), with a bootstrap 95 % confidence interval over
utterances (resample utterances with replacement, WER = total errors / total reference words of the
resample).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
from num2words import num2words

from mbasr.io import atomic_write_text

# --- The hallucination guard (paper, "decoding" row; authors' HALLUCINATION_NEW_HYP, WORD_RATIO_THRESHOLD).
HALLUCINATION_MIN_WORDS = 5  # the guard looks only at hypotheses of MORE than this many words
HALLUCINATION_RATIO = 7.0  # ... whose words / unique-words ratio exceeds this
HALLUCINATION_TOKEN = "UNK"  # ... and replaces them by this one word

# --- Fillers: removed wherever they stand as a whole word (authors' list, plus ER/ERM/UHM/UHH/HMMM).
FILLERS = frozenset(
    "AAH AAHH AAHM AH AHA AHH AHM AW EH ER ERM HA HM HMM HMMM HO HUH MM MMM MMMM OH OOH OW UH UHH UHM UM UMM".split()
)

# --- Contractions, expanded before the apostrophes go (authors' table, completed).
CONTRACTIONS = {
    "I'M": "I AM",
    "I'VE": "I HAVE",
    "I'LL": "I WILL",
    "I'D": "I WOULD",
    "YOU'RE": "YOU ARE",
    "YOU'VE": "YOU HAVE",
    "YOU'LL": "YOU WILL",
    "YOU'D": "YOU WOULD",
    "HE'S": "HE IS",
    "HE'LL": "HE WILL",
    "HE'D": "HE WOULD",
    "SHE'S": "SHE IS",
    "SHE'LL": "SHE WILL",
    "SHE'D": "SHE WOULD",
    "IT'S": "IT IS",
    "IT'LL": "IT WILL",
    "IT'D": "IT WOULD",
    "WE'RE": "WE ARE",
    "WE'VE": "WE HAVE",
    "WE'LL": "WE WILL",
    "WE'D": "WE WOULD",
    "THEY'RE": "THEY ARE",
    "THEY'VE": "THEY HAVE",
    "THEY'LL": "THEY WILL",
    "THEY'D": "THEY WOULD",
    "THAT'S": "THAT IS",
    "THAT'LL": "THAT WILL",
    "THAT'D": "THAT WOULD",
    "THERE'S": "THERE IS",
    "HERE'S": "HERE IS",
    "WHAT'S": "WHAT IS",
    "WHERE'S": "WHERE IS",
    "WHO'S": "WHO IS",
    "HOW'S": "HOW IS",
    "LET'S": "LET US",
    "NAME'S": "NAME IS",
    "DON'T": "DO NOT",
    "DOESN'T": "DOES NOT",
    "DIDN'T": "DID NOT",
    "ISN'T": "IS NOT",
    "AREN'T": "ARE NOT",
    "WASN'T": "WAS NOT",
    "WEREN'T": "WERE NOT",
    "HAVEN'T": "HAVE NOT",
    "HASN'T": "HAS NOT",
    "HADN'T": "HAD NOT",
    "WON'T": "WILL NOT",
    "WOULDN'T": "WOULD NOT",
    "CAN'T": "CAN NOT",
    "COULDN'T": "COULD NOT",
    "SHOULDN'T": "SHOULD NOT",
    "MUSTN'T": "MUST NOT",
    "SHAN'T": "SHALL NOT",
    "SHOULD'VE": "SHOULD HAVE",
    "WOULD'VE": "WOULD HAVE",
    "COULD'VE": "COULD HAVE",
    "MUST'VE": "MUST HAVE",
    "Y'ALL": "YOU ALL",
    "'CAUSE": "BECAUSE",
    "GOIN'": "GOING",
    "MA'AM": "MAM",
}

# --- Spelling merges and multi-word rules, applied to the word sequence (longest match first). A filler
# phrase maps to nothing. Keys and values are space-separated words.
PHRASES = {
    "UH HUH": "",
    "UM HUM": "",
    "MM HMM": "",
    "OK": "OKAY",
    "ALL RIGHT": "ALRIGHT",
    "AL RIGHT": "ALRIGHT",
    "CANNOT": "CAN NOT",
    "GONNA": "GOING TO",
    "WANNA": "WANT TO",
    "GOTTA": "GOT TO",
    "GIMME": "GIVE ME",
    "LEMME": "LET ME",
    "KINDA": "KIND OF",
    "MR": "MISTER",
    "MRS": "MISSUS",
    "MAAM": "MAM",
    "MADAM": "MAM",
    "E MAIL": "EMAIL",
    "ON LINE": "ONLINE",
    "LOG IN": "LOGIN",
    "PER CENT": "PERCENT",
    "ANY MORE": "ANYMORE",
    "ANY WAY": "ANYWAY",
    "MAY BE": "MAYBE",
    "GOOD BYE": "GOODBYE",
    "IN TO": "INTO",
    "A M": "AM",
    "P M": "PM",
    "U S": "US",
    "U K": "UK",
    "T V": "TV",
}

# --- Symbols spoken as words (applied before punctuation is removed).
SYMBOLS = {"%": " PERCENT ", "&": " AND ", "+": " PLUS ", "@": " AT "}

# --- Numbers written with digits become words the way the project's grammar writes them (num2words,
# hyphens and commas dropped); four-digit integers in YEAR_RANGE are read as years (NINETEEN NINETY FIVE).
YEAR_RANGE = (1100, 2099)

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})
_TAGS = re.compile(r"<[^>]*>|\[[^\]]*\]")  # <NOISE>, [LAUGHTER], <UNK> ...
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"  # 1,500 / 1500 / 3.5
_DOLLARS = re.compile(rf"\$\s?({_NUM})")
_ORDINAL = re.compile(r"\b(\d+)(?:ST|ND|RD|TH)\b")
_NUMBER = re.compile(_NUM)
_NOT_WORD = re.compile(r"[^A-Z0-9'\s]")
_PHRASE_TABLE = {tuple(k.split()): tuple(v.split()) for k, v in PHRASES.items()}
_MAX_PHRASE = max(len(k) for k in _PHRASE_TABLE)


def _spell(n: str, to: str = "cardinal", years: bool = True) -> str:
    """Digits -> words; a bare four-digit integer in YEAR_RANGE (no comma, no $) is read as a year."""
    value: int | float = float(n.replace(",", "")) if "." in n else int(n.replace(",", ""))
    if to == "cardinal" and years and n.isdigit() and len(n) == 4 and YEAR_RANGE[0] <= value <= YEAR_RANGE[1]:
        to = "year"
    return " " + re.sub(r"[-,]", " ", num2words(value, to=to)).upper() + " "


def normalize(text: str) -> str:
    """Normalise a transcript for scoring: see the module tables for every rule, applied in this order:
    unicode folding and upper case, tags (<NOISE>, [LAUGH]) removed, symbols and digits spelled out,
    contractions expanded, punctuation and apostrophes removed, fillers dropped, phrase merges."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).translate(_QUOTES).upper()
    text = _TAGS.sub(" ", text)
    text = _DOLLARS.sub(lambda m: _spell(m.group(1), years=False) + "DOLLARS ", text)
    for sym, word in SYMBOLS.items():
        text = text.replace(sym, word)
    text = _ORDINAL.sub(lambda m: _spell(m.group(1), to="ordinal"), text)
    text = _NUMBER.sub(lambda m: _spell(m.group(0)), text)
    words: list[str] = []
    for token in _NOT_WORD.sub(" ", text).split():
        expanded = CONTRACTIONS.get(token) or CONTRACTIONS.get(token.strip("'"))
        words.extend((expanded or token.replace("'", "")).split())
    words = [w for w in words if w and w not in FILLERS]
    out: list[str] = []
    i = 0
    while i < len(words):
        for n in range(min(_MAX_PHRASE, len(words) - i), 0, -1):
            repl = _PHRASE_TABLE.get(tuple(words[i : i + n]))
            if repl is not None:
                out.extend(repl)
                i += n
                break
        else:
            out.append(words[i])
            i += 1
    return " ".join(out)


def hallucination_guard(hyp: str) -> str:
    """The paper's guard: a hypothesis of more than HALLUCINATION_MIN_WORDS words whose words/unique-words
    ratio exceeds HALLUCINATION_RATIO (a decoding loop) is replaced by HALLUCINATION_TOKEN."""
    words = hyp.split()
    if len(words) > HALLUCINATION_MIN_WORDS and len(words) / len(set(words)) > HALLUCINATION_RATIO:
        return HALLUCINATION_TOKEN
    return hyp


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
