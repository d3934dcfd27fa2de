"""Scoring: normaliser rules, hallucination guard, hand-computed WERs, bootstrap CI, alignments file."""

import time

import numpy as np
import pytest

from mbasr.evaluation.scoring import bootstrap_ci, read_alignments, save_alignments, score
from mbasr.evaluation.wer_normalizer import HALLUCINATION_TOKEN, hallucination_guard, normalize


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Hello, World!", "HELLO WORLD"),
        ("Um, I'm OK... uh, hmm.", "I AM OKAY"),
        ("We don't know; it's all right.", "WE DO NOT KNOW IT IS ALRIGHT"),
        ("They can\u2019t, 'cause we're gonna leave", "THEY CAN NOT BECAUSE WE ARE GOING TO LEAVE"),
        ("Mr. Smith's e-mail", "MISTER SMITHS EMAIL"),
        ("uh-huh <noise> yes [laughter]", "YES"),
        ("10 of clubs", "TEN OF CLUBS"),
        ("the 21st of May 1995", "THE TWENTY FIRST OF MAY NINETEEN NINETY FIVE"),
        ("$1,500 at 3.5%", "ONE THOUSAND FIVE HUNDRED DOLLARS AT THREE POINT FIVE PERCENT"),
        ("Caf\u00e9   na\u00efve", "CAFE NAIVE"),
        ("  ", ""),
        ("ERROR HUMMUS OHIO", "ERROR HUMMUS OHIO"),  # fillers only as whole words
    ],
)
def test_normalize(raw, expected):
    assert normalize(raw) == expected


def test_normalize_is_idempotent():
    for text in ["I'm OK, Mr. Smith: 10 items!", "uh-huh all right", "we'd've"]:
        once = normalize(text)
        assert normalize(once) == once


def test_guard():
    assert hallucination_guard("A " * 8) == HALLUCINATION_TOKEN  # 8 words / 1 unique = 8 > 7
    assert hallucination_guard("A B " * 7) == "A B " * 7  # 14 / 2 = 7: not above 7
    assert hallucination_guard(" ".join(["A"] * 7 + ["B"] * 8)) == HALLUCINATION_TOKEN  # 15 / 2 = 7.5
    assert hallucination_guard("A A A A A") == "A A A A A"  # only 5 words: not more than 5
    assert hallucination_guard(" ".join(["A"] * 7)) == " ".join(["A"] * 7)  # ratio 7 does not exceed 7
    assert hallucination_guard("") == ""


def test_score_hand_computed():
    # utt 0: SAT->SIT (S), THE deleted (D): 2 errors / 6 words; utt 1: THERE inserted: 1 / 2.
    r = score(
        ["the cat sat on the mat", "hello world"], ["The cat sit on mat.", "hello there world"], n_boot=0
    )
    assert (r.subs, r.dels, r.ins, r.hits) == (1, 1, 1, 6)
    assert r.n_words == 8 and r.n_utts == 2
    assert r.wer == pytest.approx(3 / 8)
    assert r.rows[0]["pairs"] == [
        ["C", "THE", "THE"],
        ["C", "CAT", "CAT"],
        ["S", "SAT", "SIT"],
        ["C", "ON", "ON"],
        ["D", "THE", None],
        ["C", "MAT", "MAT"],
    ]
    assert r.rows[1]["pairs"][1] == ["I", None, "THERE"]
    assert r.rows[0]["wer"] == pytest.approx(2 / 6)


def test_score_normalisation_makes_equivalent_forms_match():
    r = score(["I AM OKAY MISTER SMITH"], ["Um, I'm ok, Mr. Smith."], n_boot=0)
    assert r.wer == 0.0


def test_score_empty_sides_and_guard():
    refs = ["one two three", "", "four five"]
    hyps = ["", "extra", "yes " * 10]
    r = score(refs, hyps, keys=["a", "b", "c"], n_boot=0)
    # a: 3 deletions; b: 1 insertion; c: guarded to UNK -> 1 sub + 1 del. 6 errors / 5 words.
    assert (r.subs, r.dels, r.ins) == (1, 4, 1)
    assert r.wer == pytest.approx(6 / 5)
    assert r.n_guarded == 1 and r.rows[2]["hyp"] == HALLUCINATION_TOKEN and r.rows[2]["guarded"]
    assert score(refs, hyps, n_boot=0, guard=False).n_guarded == 0


def test_score_validates_inputs():
    with pytest.raises(ValueError, match="`hyps` has 1"):
        score(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="duplicates"):
        score(["a", "b"], ["a", "b"], keys=["k", "k"])
    with pytest.raises(TypeError, match="sequences"):
        score("a b", "a b")
    with pytest.raises(ValueError, match="no words"):
        score(["uh"], ["a"])


def _corpus(n, seed=1):
    rng = np.random.default_rng(seed)
    words = "alpha beta gamma delta epsilon zeta eta theta".split()
    refs, hyps = [], []
    for _ in range(n):
        ref = list(rng.choice(words, size=rng.integers(3, 12)))
        hyp = [w if rng.random() > 0.2 else "oops" for w in ref]
        refs.append(" ".join(ref))
        hyps.append(" ".join(hyp))
    return refs, hyps


def test_ci_contains_wer_and_shrinks():
    refs, hyps = _corpus(50)
    small = score(refs, hyps, seed=0)
    big = score(refs * 20, hyps * 20, seed=0)
    assert small.ci_low <= small.wer <= small.ci_high
    assert big.ci_low <= big.wer <= big.ci_high
    assert big.wer == pytest.approx(small.wer)
    assert (big.ci_high - big.ci_low) < 0.5 * (small.ci_high - small.ci_low)


def test_bootstrap_is_deterministic_and_fast():
    errors = np.arange(1000) % 7
    words = np.full(1000, 10)
    assert bootstrap_ci(errors, words, seed=3) == bootstrap_ci(errors, words, seed=3)
    assert bootstrap_ci(errors, words, seed=3) != bootstrap_ci(errors, words, seed=4)
    t0 = time.perf_counter()
    bootstrap_ci(errors, words, n_boot=1000, seed=0)
    assert time.perf_counter() - t0 < 1.0


def test_score_deterministic_and_to_dict():
    refs, hyps = _corpus(30)
    a, b = score(refs, hyps, seed=5), score(refs, hyps, seed=5)
    assert a.to_dict() == b.to_dict()
    d = a.to_dict()
    assert (
        "rows" not in d
        and {"wer", "ci_low", "ci_high", "n_utts", "n_words", "subs", "ins", "dels"} <= d.keys()
    )
    assert len(a.to_dict(include_rows=True)["rows"]) == 30


def test_save_alignments_round_trip(tmp_path):
    r = score(["a b c", "d e"], ["a x c", "d e f"], keys=["u1", "u2"], n_boot=10)
    path = tmp_path / "sub" / "align.jsonl"
    save_alignments(r, path)
    rows = read_alignments(path)
    assert [row["key"] for row in rows] == ["u1", "u2"]
    assert rows[0]["subs"] == 1 and rows[1]["ins"] == 1
    assert rows[0]["pairs"][1] == ["S", "B", "X"]
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
