"""Text statistics and the Kneser-Ney n-gram LM (mbasr.data.textstats)."""

import math

import pytest

from mbasr.data.textstats import (
    BOS,
    UNK,
    NgramLM,
    distinct_trigram_share,
    domain_gap_table,
    oov_share,
)

BANK = [
    "i'd like to check my balance",
    "i want to check my savings balance",
    "please transfer money to savings",
    "i'd like to open a savings account",
    "can you check my account balance",
    "transfer money from checking",
    "i want to close my checking account",
    "please check my balance",
    "i'd like to transfer money",
]
FARM = ["the wheat harvest was late this year", "farmers planted corn in the north field"]


def test_distinct_trigram_share():
    # trigrams: (a b c) (b c a) (c a b) (a b c): 3 distinct of 4; a two-word sentence has none
    assert distinct_trigram_share(["a b c a b c", "x y"]) == pytest.approx(3 / 4)
    assert distinct_trigram_share(["a b c", "a b d"]) == 1.0
    with pytest.raises(ValueError, match="sentences"):
        distinct_trigram_share(["a b", "c"])


def test_oov_share():
    # test tokens: a b z z y -> z, z, y unseen: 3 / 5
    assert oov_share(["a b z", "z y"], ["a b c", "b d"]) == pytest.approx(3 / 5)
    assert oov_share(["a b"], ["b a"]) == 0.0
    with pytest.raises(ValueError, match="test_sentences"):
        oov_share([""], ["a"])
    with pytest.raises(TypeError, match="train_sentences"):
        oov_share(["a"], "a b")


def test_kneser_ney_by_hand():
    # corpus "a b", "a c"; bigram model.  Unigram continuation counts: a 1, b 1, c 1, </s> 2 (total 5);
    # counts of counts n1=3, n2=1, n3=0 -> single discount D = 3/(3+2) = 0.6; vocabulary {a,b,c,</s>,<unk>}.
    # p1(b) = (1-0.6)/5 + (4*0.6/5)/5 = 0.176.  Bigram context "a": counts (a b)=1, (a c)=1; all bigram
    # counts 2,1,1,1,1 -> n1=4, n2=1 -> D = 4/6.  p(b|a) = (1-2/3)/2 + (2*2/3)/2 * 0.176 = 0.284.
    lm = NgramLM(order=2).fit(["a b", "a c"])
    assert lm.prob("b") == pytest.approx(0.176)
    assert lm.prob(UNK) == pytest.approx(0.096)
    assert lm.prob("b", ["a"]) == pytest.approx(0.284)
    assert lm.prob("never-seen", ["a"]) == lm.prob(UNK, ["a"])


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_probabilities_sum_to_one(order):
    lm = NgramLM(order).fit(BANK)
    for context in [(), (BOS,), (BOS, "i'd"), ("check", "my"), ("my",), ("unseen", "words"), ("to", "zzz")]:
        assert sum(lm.prob(w, context) for w in lm.vocab) == pytest.approx(1.0, abs=1e-9), context


def test_perplexity_sane():
    lm = NgramLM(3).fit(BANK)
    in_domain = lm.perplexity(["i'd like to check my savings balance"])
    unrelated = lm.perplexity(FARM)
    assert math.isfinite(in_domain) and math.isfinite(unrelated)
    assert 1.0 < in_domain < unrelated
    with pytest.raises(ValueError, match="sentences"):
        lm.perplexity([])
    with pytest.raises(ValueError, match="order"):
        NgramLM(order=0)
    with pytest.raises(RuntimeError, match="fit"):
        NgramLM().prob("a")


def test_domain_gap_table():
    train = {"source": BANK, "farm": FARM * 3}
    test = {"source": ["please check my savings balance"], "farm": ["the corn harvest was late"]}
    table = domain_gap_table(train, test)
    assert list(table.index) == ["source", "farm"]
    src, farm = table.loc["source"], table.loc["farm"]
    assert src["ppl_ratio_vs_source"] == pytest.approx(1.0)
    assert src["oov_share_vs_source"] == 0.0
    assert farm["oov_share_vs_source"] == 1.0
    assert farm["ppl_ratio_vs_source"] > 1.0
    assert farm["ppl_own_lm"] < farm["ppl_source_lm"]
    assert farm["n_train"] == 6 and farm["n_test"] == 1
    assert farm["vocabulary"] == len({w for s in FARM for w in s.split()})
    with pytest.raises(KeyError, match="source"):
        domain_gap_table(train, test, source="banking")
    with pytest.raises(KeyError, match="farm"):
        domain_gap_table(train, {"source": test["source"]})
