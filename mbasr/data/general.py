"""The `general` pool: broad real English for pretraining the `tiny` preset's LM (and part of its encoder's
TTS speech), standing in for the general data the paper's Llama-3.2-3B was pretrained on ("System").

Source: WordNet 3.0 (Princeton University), as shipped by the Debian package `wordnet-base`
(`/usr/share/wordnet/data.{noun,verb,adj,adv}`; the directory can be moved with WordNet's own
`WNSEARCHDIR` variable). Licence: the WordNet 3.0 licence, a permissive BSD-style licence ("Permission
to use, copy, modify and distribute this software and database ... for any purpose and without fee or
royalty is hereby granted", with the copyright notice kept: "WordNet 3.0 Copyright 2006 by Princeton
University. All rights reserved."); see /usr/share/doc/wordnet-base/copyright.

Every synset's gloss is split into sentence-like units: the definitions (the gloss outside quotes, split
at semicolons) and each quoted example sentence on its own. Units are put in spoken style
(`mbasr.data.normalize.spoken`), kept when 3-30 words long, and deduplicated in file order (noun, verb,
adj, adv). `general_sentences` shuffles them with a seed and returns units up to a word budget, after
dropping any unit equal to an excluded sentence (the domains' dev and test sentences).
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from mbasr.data.normalize import spoken

log = logging.getLogger(__name__)

WORDNET_PACKAGE = "wordnet-base"
WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
MIN_WORDS, MAX_WORDS = 3, 30  # unit length kept, in spoken words
_QUOTED = re.compile(r'"([^"]*)"')


def wordnet_dir() -> Path:
    """Where the WordNet data files are: `$WNSEARCHDIR` if set, else Debian's /usr/share/wordnet."""
    return Path(os.environ.get("WNSEARCHDIR", "/usr/share/wordnet"))


def gloss_units(gloss: str) -> list[str]:
    """Raw sentence-like units of one WordNet gloss: each definition and each quoted example.

    >>> gloss_units('draw air into, and expel out of, the lungs; "I can breathe better"; "The patient is respiring"')
    ['draw air into, and expel out of, the lungs', 'I can breathe better', 'The patient is respiring']
    """
    examples = [m.strip() for m in _QUOTED.findall(gloss)]
    definitions = [d.strip() for d in _QUOTED.sub(" ", gloss).replace('"', " ").split(";")]
    return [u for u in definitions + examples if u]


@dataclass(frozen=True)
class GeneralPool:
    """All units of the pool, spoken-style and deduplicated, with how they were obtained."""

    units: tuple[str, ...]
    n_words: int
    n_synsets: int
    parse_seconds: float
    source: str


def general_pool(directory: str | Path | None = None) -> GeneralPool:
    """Every unit of the pool, in file order, from `directory` (default: `wordnet_dir()`); parsed once
    per process and directory (cached)."""
    return _parse_wordnet(str(Path(directory) if directory else wordnet_dir()))


@lru_cache(maxsize=4)
def _parse_wordnet(directory: str) -> GeneralPool:
    root = Path(directory)
    missing = [f for f in WORDNET_FILES if not (root / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"general_pool: WordNet data files {missing} not found in {root}: install the Debian package "
            f"'{WORDNET_PACKAGE}' (apt-get install {WORDNET_PACKAGE}) or set WNSEARCHDIR to its directory"
        )
    start = time.perf_counter()
    seen: dict[str, None] = {}
    n_synsets = 0
    for name in WORDNET_FILES:
        with open(root / name, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  "):  # the licence header
                    continue
                _, bar, gloss = line.partition(" | ")
                if not bar:
                    raise ValueError(f"{root / name}: synset line without ' | ' gloss: {line[:60]!r}")
                n_synsets += 1
                for raw in gloss_units(gloss):
                    unit = spoken(raw)
                    if MIN_WORDS <= unit.count(" ") + 1 <= MAX_WORDS:
                        seen.setdefault(unit, None)
    units = tuple(seen)
    return GeneralPool(
        units=units,
        n_words=sum(u.count(" ") + 1 for u in units),
        n_synsets=n_synsets,
        parse_seconds=time.perf_counter() - start,
        source=f"WordNet 3.0 ({root}, Debian package {WORDNET_PACKAGE})",
    )


@dataclass(frozen=True)
class GeneralSelection:
    sentences: list[str]
    n_words: int
    n_excluded: int  # units of the whole pool dropped because they equal an excluded sentence


def select_general(seed: int, n_words: int, exclude: Iterable[str] = ()) -> GeneralSelection:
    """Shuffle the pool with `seed`, drop excluded units, and take units until `n_words` words are reached.

    The shuffle does not depend on `exclude`, so excluding a sentence only removes it from the selection.
    """
    if isinstance(exclude, str):
        raise TypeError("select_general(exclude=...): expected an iterable of sentences, got one str")
    if not isinstance(n_words, int) or n_words <= 0:
        raise ValueError(f"select_general(n_words={n_words!r}): must be a positive int")
    pool = general_pool()
    banned = {spoken(s) for s in exclude}
    n_excluded = sum(u in banned for u in pool.units) if banned else 0
    available = pool.n_words - sum(u.count(" ") + 1 for u in pool.units if u in banned)
    if available < n_words:
        raise ValueError(
            f"select_general(n_words={n_words}): only {available} words available in {pool.source} "
            f"after excluding {n_excluded} units"
        )
    order = list(range(len(pool.units)))
    random.Random(f"general-{seed}").shuffle(order)
    out, total = [], 0
    for i in order:
        if total >= n_words:
            break
        unit = pool.units[i]
        if unit in banned:
            continue
        out.append(unit)
        total += unit.count(" ") + 1
    return GeneralSelection(sentences=out, n_words=total, n_excluded=n_excluded)


def general_sentences(seed: int, n_words: int, exclude: Iterable[str] = ()) -> list[str]:
    """Spoken-style general English units, about `n_words` words (the last unit may overshoot),
    deterministic for `seed`; no unit equals a sentence of `exclude` (the number dropped is logged)."""
    sel = select_general(seed, n_words, exclude)
    log.info(
        "general pool: %d units, %d words (seed %d); %d units dropped as equal to excluded sentences",
        len(sel.sentences),
        sel.n_words,
        seed,
        sel.n_excluded,
    )
    return sel.sentences
