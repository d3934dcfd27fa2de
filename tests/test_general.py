"""The WordNet-based `general` English pool (mbasr.data.general)."""

import re

import pytest

from mbasr.data.general import (
    MAX_WORDS,
    MIN_WORDS,
    WORDNET_FILES,
    general_pool,
    general_sentences,
    gloss_units,
    select_general,
    wordnet_dir,
)

needs_wordnet = pytest.mark.skipif(
    not all((wordnet_dir() / f).is_file() for f in WORDNET_FILES),
    reason=f"WordNet data files not found in {wordnet_dir()}: apt-get install wordnet-base",
)


def test_gloss_units():
    gloss = 'draw air into, and expel out of, the lungs; "I can breathe better"; "The patient is respiring"  '
    assert gloss_units(gloss) == [
        "draw air into, and expel out of, the lungs",
        "I can breathe better",
        "The patient is respiring",
    ]
    assert gloss_units('a thing; "an example; with a semicolon" - Author') == [
        "a thing",
        "- Author",
        "an example; with a semicolon",
    ]


def test_missing_wordnet_names_the_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="wordnet-base"):
        general_pool(tmp_path)


@needs_wordnet
def test_pool_size_and_alphabet():
    pool = general_pool()
    assert pool.n_words >= 500_000
    assert len(set(pool.units)) == len(pool.units)
    assert pool.n_words == sum(len(u.split()) for u in pool.units)
    for u in pool.units:
        assert re.fullmatch(r"[a-z']+( [a-z']+)*", u), u
        assert MIN_WORDS <= len(u.split()) <= MAX_WORDS, u


@needs_wordnet
def test_deterministic_and_word_budget():
    a = general_sentences(seed=0, n_words=5000)
    assert a == general_sentences(seed=0, n_words=5000)
    assert a != general_sentences(seed=1, n_words=5000)
    total = sum(len(s.split()) for s in a)
    assert 5000 <= total < 5000 + len(a[-1].split())
    assert general_sentences(seed=0, n_words=20000)[: len(a)] == a  # a larger budget extends the same order


@needs_wordnet
def test_exclusion():
    base = general_sentences(seed=3, n_words=3000)
    banned = base[::5]
    # written-style variants of the banned sentences are normalised before comparing
    sel = select_general(seed=3, n_words=3000, exclude=[s.upper() + "." for s in banned])
    assert not set(banned) & set(sel.sentences)
    assert sel.n_excluded == len(set(banned))
    kept = [s for s in base if s not in set(banned)]
    assert sel.sentences[: len(kept)] == kept  # same shuffle, banned units only removed


@needs_wordnet
def test_errors():
    with pytest.raises(ValueError, match="only .* words available"):
        general_sentences(seed=0, n_words=general_pool().n_words + 1)
    with pytest.raises(ValueError, match="n_words"):
        general_sentences(seed=0, n_words=0)
    with pytest.raises(TypeError, match="exclude"):
        general_sentences(seed=0, n_words=10, exclude="one sentence")
