"""Transcript corruption (mbasr.method.corrupt): the paper's synthetic noise, its ablations, the measured rates
against their derived expectation, and projector-induced noise."""

import random
import string

import numpy as np
import pytest
import torch

from mbasr.method.corrupt import (
    PAPER_CORRUPTION,
    CorruptionConfig,
    corrupt,
    corrupt_all,
    decode_tokens,
    expected_rates,
    measure_rates,
    projector_noise_text,
    projector_tokens,
    sentence_cer,
)

TEXT = "i'd like to check the balance of my savings account before the transfer goes through please"


def test_paper_defaults():
    c = PAPER_CORRUPTION
    assert (c.mode, c.word_p, c.char_p, c.char_min, c.char_max) == ("synthetic", 0.15, 0.30, 1, 10)
    assert (c.dup_p, c.dup_max) == (0.1, 3)
    assert set(c.alphabet) == set(string.ascii_letters)  # both cases, no digits


def test_same_seed_same_output_whatever_ran_before():
    first = corrupt(TEXT, seed=7)
    random.seed(123)
    np.random.seed(5)
    torch.manual_seed(9)
    [random.random() for _ in range(1000)]
    assert corrupt(TEXT, seed=7) == first
    assert corrupt(TEXT, seed="7") == corrupt(TEXT, seed="7")
    assert len({corrupt(TEXT, seed=s) for s in range(20)}) > 15


def test_structure_preserved_and_only_letters_added():
    for seed in range(200):
        out = corrupt(TEXT, seed=seed)
        assert len(out.split()) == len(TEXT.split())
        assert [m.isspace() for m in out if m.isspace()] == [True] * TEXT.count(" ")
        new = set(out) - set(TEXT)
        assert all(ch in string.ascii_letters for ch in new), new


def test_counting_rule_exact():
    # 20 words of 10 characters: k = ceil(0.15 * 20) = 3 words, m = ceil(0.3 * 10) = 3 characters each;
    # an alphabet that never occurs in the text makes every substitution visible.
    words = ["abcdefghij"] * 20
    cfg = CorruptionConfig(dup_p=0.0, alphabet="#")
    for seed in range(50):
        out = corrupt(" ".join(words), cfg, seed=seed).split()
        changed = [w for w in out if w != "abcdefghij"]
        assert len(changed) == 3
        assert all(w.count("#") == 3 for w in changed)


def test_short_words_never_chosen_and_minimum_one_word():
    cfg = CorruptionConfig(dup_p=0.0, alphabet="#")
    text = "a bb ccc dddd"  # 4 words: ceil(0.6) = 1 word, only "dddd" is eligible
    for seed in range(30):
        out = corrupt(text, cfg, seed=seed).split()
        assert out[:3] == ["a", "bb", "ccc"]
        assert out[3].count("#") == 2  # ceil(0.3 * 4) = 2
    assert corrupt("a bb ccc", cfg, seed=0) == "a bb ccc"


def test_duplication_rule():
    cfg = CorruptionConfig(word_p=0.0, word_min=0, dup_p=1.0, dup_max=1)
    assert corrupt("ab c'd 42", cfg, seed=0) == "aabb cc'dd 42"
    cfg = CorruptionConfig(word_p=0.0, word_min=0, dup_p=1.0, dup_max=3)
    out = corrupt("x", cfg, seed=0)
    assert set(out) == {"x"} and 2 <= len(out) <= 4


def test_ablation_modes():
    rnd = corrupt(TEXT, CorruptionConfig(mode="random"), seed=1)
    assert len(rnd) == len(TEXT) and set(rnd) <= set(string.ascii_letters + " ") and rnd != TEXT
    assert corrupt(TEXT, CorruptionConfig(mode="echo"), seed=1) == TEXT
    assert corrupt(TEXT, CorruptionConfig(mode="empty"), seed=1) == ""


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"mode": "naive"}, "mode"),
        ({"word_p": 1.5}, "word_p"),
        ({"char_p": -0.1}, "char_p"),
        ({"dup_p": 2}, "dup_p"),
        ({"char_min": 5, "char_max": 2}, "char_min"),
        ({"word_max": -1}, "word_max"),
        ({"alphabet": "a b"}, "alphabet"),
        ({"alphabet": ""}, "alphabet"),
        ({"dup_max": 0}, "dup_max"),
    ],
)
def test_bad_config_names_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        CorruptionConfig(**kwargs)
    with pytest.raises(ValueError, match="unknown parameter"):
        CorruptionConfig.from_dict({"word_q": 0.1})


def test_expected_rates_small_cases():
    # No duplication and an alphabet absent from the text: touched words = chosen words exactly.
    cfg = CorruptionConfig(dup_p=0.0, alphabet="#")
    e = expected_rates(["abcdefghij " * 19 + "abcdefghij"], cfg)
    assert e.chosen == pytest.approx(3 / 20) and e.word_touch == pytest.approx(3 / 20)
    assert e.cer == pytest.approx(9 / (20 * 11 - 1))
    assert sentence_cer("abcd", "abXd") == pytest.approx(0.25)
    with pytest.raises(ValueError, match="mode"):
        expected_rates(["a b"], CorruptionConfig(mode="echo"))


@pytest.fixture(scope="module")
def corpus_sentences():
    from mbasr.data.grammar import domain_grammar, generate_sentences

    return generate_sentences(domain_grammar("source"), 10_000, seed=0)


@pytest.mark.parametrize(
    "cfg",
    [PAPER_CORRUPTION, CorruptionConfig(dup_p=0.0), CorruptionConfig(word_p=0.4, char_p=0.5, dup_p=0.2)],
    ids=["paper", "no-dup", "heavy"],
)
def test_measured_rates_match_expectation(corpus_sentences, cfg):
    """Over 10,000 corpus sentences, word-touch share and CER are within 2 points of the expectation."""
    corrupted = corrupt_all(corpus_sentences, cfg, seed=3)
    got = measure_rates(corpus_sentences, corrupted)
    want = expected_rates(corpus_sentences, cfg)
    assert abs(got.word_touch - want.word_touch) < 0.02, (got, want)
    assert abs(got.cer - want.cer) < 0.02, (got, want)
    assert want.chosen >= cfg.word_p  # the ceil and the one-word minimum only add


# ---------------------------------------------------------------------------- projector-induced noise
def _embedding():
    # token 0 points along x; token 1 along y with a large norm; token 2 along -x; token 3 along x+y
    return torch.tensor([[1.0, 0.0], [0.0, 10.0], [-1.0, 0.0], [0.7, 0.7]])


def test_projector_nearest_is_cosine_and_argmin_dot_is_least_similar():
    emb = _embedding()
    vec = torch.tensor([[2.0, 0.1], [0.1, 3.0], [1.0, 1.0], [-5.0, 0.0]])
    assert projector_tokens(vec, emb, "nearest").tolist() == [0, 1, 3, 2]
    # dot products: [2, 1, -2, 1.47], [0.1, 30, -0.1, 2.17], [1, 10, -1, 1.4], [-5, 0, 5, -3.5]
    assert projector_tokens(vec, emb, "argmin_dot").tolist() == [2, 2, 2, 0]
    # cosine ignores the norm: the large token 1 does not win for a vector closer to x+y
    assert projector_tokens(torch.tensor([[1.0, 0.9]]), emb, "nearest").tolist() == [3]


def test_projector_tokens_dtype_shapes_and_errors():
    emb = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    vec = torch.randn(600, 8, generator=torch.Generator().manual_seed(1))
    ids = projector_tokens(vec.bfloat16(), emb.bfloat16(), "nearest")
    assert ids.dtype == torch.long and ids.shape == (600,)
    assert torch.equal(projector_tokens(emb[:5] * 3, emb, "nearest"), torch.arange(5))
    assert projector_tokens(torch.zeros(0, 8), emb).shape == (0,)
    with pytest.raises(ValueError, match="mode"):
        projector_tokens(vec, emb, "farthest")
    with pytest.raises(ValueError, match="vectors"):
        projector_tokens(vec[0], emb)
    with pytest.raises(ValueError, match="embedding"):
        projector_tokens(vec, emb[:, :4])


class _Tokenizer:
    vocab = ["he", "llo", " wor", "ld"]

    def decode(self, ids):
        return "".join(self.vocab[i] for i in ids)


def test_decode_with_given_tokenizer():
    assert decode_tokens(torch.tensor([0, 1, 2, 3]), _Tokenizer()) == "hello world"
    emb = torch.eye(4)
    assert projector_noise_text(torch.eye(4)[[1, 0]], emb, _Tokenizer(), "nearest") == "llohe"
    with pytest.raises(ValueError, match="ids"):
        decode_tokens(torch.zeros(2, 2, dtype=torch.long), _Tokenizer())
