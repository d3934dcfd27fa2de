"""The `source` and `banking` sentence grammars (data/grammars/*.yaml; the paper's "Data": a general
call-centre source and an in-domain Banking target that is near it but has its own vocabulary)."""

import re

import pytest

from mbasr.data.corpus import SCALES
from mbasr.data.grammar import GRAMMAR_DIR, generate_sentences, load_grammar
from mbasr.data.textstats import oov_share

# sentences drawn per domain: at least what the default corpus scale takes (train + dev + test)
N_DRAW = {"source": 7000, "banking": 3700}
SPOKEN = re.compile(r"[a-z' ]+")


@pytest.fixture(scope="module")
def sentences():
    return {
        d: generate_sentences(load_grammar(GRAMMAR_DIR / f"{d}.yaml"), n, seed=0) for d, n in N_DRAW.items()
    }


@pytest.mark.parametrize("domain, min_templates", [("source", 150), ("banking", 100)])
def test_grammar_loads_and_validates(domain, min_templates):
    g = load_grammar(GRAMMAR_DIR / f"{domain}.yaml")
    g.validate()
    assert g.domain == domain
    assert len(g.templates) >= min_templates, f"{g.path}: only {len(g.templates)} templates"


@pytest.mark.parametrize("domain", ["source", "banking"])
def test_enough_distinct_spoken_sentences(sentences, domain):
    sents = sentences[domain]
    assert len(sents) == len(set(sents)) == N_DRAW[domain]
    bad = [s for s in sents if not SPOKEN.fullmatch(s) or s != " ".join(s.split())]
    assert not bad, f"{domain}: {len(bad)} sentences outside [a-z' ], e.g. {bad[:3]}"
    lengths = [len(s.split()) for s in sents]
    assert 8 <= sum(lengths) / len(lengths) <= 20, f"{domain}: mean length out of the 8-20 words aimed at"


def test_deterministic_for_a_seed():
    g = load_grammar(GRAMMAR_DIR / "banking.yaml")
    assert generate_sentences(g, 50, seed=3) == generate_sentences(g, 50, seed=3)
    assert generate_sentences(g, 50, seed=3) != generate_sentences(g, 50, seed=4)


def test_draws_cover_the_default_corpus():
    assert N_DRAW["source"] >= sum(SCALES["default"]["source"])
    assert N_DRAW["banking"] >= sum(SCALES["default"]["target"])


def test_banking_is_near_but_not_identical_to_source(sentences):
    # corpus.py splits in draw order: test, dev, train. Banking's first 2,000 sentences (its test and dev
    # text and some training text) against the source training text of the default scale.
    n_train, n_dev, n_test = SCALES["default"]["source"]
    source_train = sentences["source"][n_test + n_dev : n_test + n_dev + n_train]
    share = oov_share(sentences["banking"][:2000], source_train)
    assert 0.01 < share < 0.10, f"banking OOV share versus source is {share:.1%}; aim for 3-8%"
