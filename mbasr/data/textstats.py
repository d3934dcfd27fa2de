"""Text statistics for domain selection and the "domain gap" (the paper's "Data": in-domain targets
Banking/Insurance versus out-of-domain SlideSpeech targets).

- `distinct_trigram_share`: how varied a text is (1.0: no word trigram repeats; templated text is low);
- `oov_share`: share of test tokens whose word never occurs in a training text;
- `NgramLM`: a word n-gram LM with interpolated modified Kneser-Ney smoothing (Chen & Goodman 1999),
  sentence boundaries `<s>`/`</s>` and an `<unk>` class, pure Python;
- `domain_gap_table`: these per domain, with the perplexity of each domain's test text under its own
  training LM and under the source's, and the ratio to the source's own perplexity.

Sentences are whitespace-tokenised strings (spoken style, see `mbasr.data.normalize`).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

import pandas as pd

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


def _tokens(sentences: Iterable[str], name: str) -> list[list[str]]:
    if isinstance(sentences, str):
        raise TypeError(f"{name}: expected an iterable of sentences, got one str")
    return [s.split() for s in sentences]


def _trigrams(sent: list[str]):
    return zip(sent, sent[1:], sent[2:], strict=False)


def distinct_trigram_share(sentences: Iterable[str]) -> float:
    """Distinct word trigrams / all word trigrams (within sentences, no boundary tokens)."""
    counts = Counter(
        tri for sent in _tokens(sentences, "distinct_trigram_share(sentences)") for tri in _trigrams(sent)
    )
    total = sum(counts.values())
    if total == 0:
        raise ValueError("distinct_trigram_share(sentences): no sentence has 3 or more words")
    return len(counts) / total


def oov_share(test_sentences: Iterable[str], train_sentences: Iterable[str]) -> float:
    """Share of the test tokens whose word never occurs in the train sentences."""
    vocab = {w for sent in _tokens(train_sentences, "oov_share(train_sentences)") for w in sent}
    test = [w for sent in _tokens(test_sentences, "oov_share(test_sentences)") for w in sent]
    if not test:
        raise ValueError("oov_share(test_sentences): no tokens")
    return sum(w not in vocab for w in test) / len(test)


def _discounts(count_of_counts: Counter) -> tuple[float, float, float]:
    """Modified KN discounts D1, D2, D3+ from the counts of counts n1..n4 (Chen & Goodman, eq. 26);
    falls back to one absolute discount n1/(n1+2 n2) (or 0.5) where n1..n4 are too sparse."""
    n1, n2, n3, n4 = (count_of_counts.get(k, 0) for k in (1, 2, 3, 4))
    y = n1 / (n1 + 2 * n2) if n1 and n2 else 0.5
    if n1 and n2 and n3 and n4:
        d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
        if all(0 < dk <= k for k, dk in enumerate(d, start=1)):
            return d
    return (y, y, y)


class NgramLM:
    """Word n-gram LM, interpolated modified Kneser-Ney.

    Counts: raw counts at the highest order; at lower orders, continuation counts (number of distinct
    left neighbours), except for n-grams starting with `<s>`, which keep raw counts (they cannot have a
    left neighbour). The unigram level is interpolated with a uniform distribution over the vocabulary
    (training words, `</s>` and `<unk>`), which is what gives `<unk>` its probability. A word outside
    the training vocabulary is scored as `<unk>`; `perplexity` counts every word and `</s>` (not `<s>`).
    """

    def __init__(self, order: int = 3):
        if not isinstance(order, int) or order < 1:
            raise ValueError(f"NgramLM(order={order!r}): must be an int >= 1")
        self.order = order
        self.vocab: set[str] = set()
        self._counts: list[dict[tuple[str, ...], int]] = []
        self._ctx: list[dict[tuple[str, ...], tuple[float, float]]] = []
        self._d: list[tuple[float, float, float]] = []

    def fit(self, sentences: Iterable[str]) -> NgramLM:
        sents = _tokens(sentences, "NgramLM.fit(sentences)")
        if not any(sents):
            raise ValueError("NgramLM.fit(sentences): no tokens to train on")
        n = self.order
        self.vocab = {w for s in sents for w in s} | {EOS, UNK}
        raw: Counter = Counter()
        for s in sents:
            padded = [BOS, *s, EOS]
            for i in range(1, len(padded)):
                raw[tuple(padded[max(0, i - n + 1) : i + 1])] += 1
        # counts[k]: adjusted counts of (k+1)-grams
        counts: list[dict[tuple[str, ...], int]] = [defaultdict(int) for _ in range(n)]
        for gram, c in raw.items():
            counts[len(gram) - 1][gram] += c  # full-order n-grams and short ones starting with <s>
        for k in range(n - 1, 0, -1):
            # continuation counts for the order below: distinct left neighbours of each suffix (a suffix
            # never starts with <s>, so the raw counts kept above are not overwritten)
            for low, c in Counter(gram[1:] for gram in counts[k]).items():
                counts[k - 1][low] = c
        self._counts = [dict(c) for c in counts]
        self._d, self._ctx = [], []
        for k in range(n):
            d = _discounts(Counter(self._counts[k].values()))
            ctx: dict[tuple[str, ...], list[float]] = {}
            for gram, c in self._counts[k].items():
                entry = ctx.setdefault(gram[:-1], [0.0, 0.0])
                entry[0] += c
                entry[1] += d[min(c, 3) - 1]
            self._d.append(d)
            self._ctx.append({h: (total, disc) for h, (total, disc) in ctx.items()})
        return self

    def prob(self, word: str, context: Sequence[str] = ()) -> float:
        """P(word | context); the context is cut to the last order-1 words, unknown words are `<unk>`."""
        if not self._counts:
            raise RuntimeError("NgramLM.prob: call fit() first")
        if word == BOS:
            raise ValueError("NgramLM.prob(word='<s>'): <s> is never predicted")
        w = word if word in self.vocab else UNK
        hist = tuple(c if c in self.vocab or c == BOS else UNK for c in context)
        hist = hist[len(hist) - self.order + 1 :] if self.order > 1 else ()
        p = 1.0 / len(self.vocab)
        for k in range(len(hist) + 1):  # from unigram up to the full context
            h = hist[len(hist) - k :] if k else ()
            stats = self._ctx[k].get(h)
            if stats is None:
                continue  # unseen context: keep the lower-order estimate
            total, disc = stats
            c = self._counts[k].get((*h, w), 0)
            d = self._d[k][min(c, 3) - 1] if c else 0.0
            p = (c - d) / total + disc / total * p
        return p

    def logprob(self, sentence: str) -> float:
        """Natural-log probability of one sentence, `</s>` included."""
        toks = sentence.split()
        ctx = [BOS]
        lp = 0.0
        for w in [*toks, EOS]:
            lp += math.log(self.prob(w, ctx))
            ctx.append(w)
        return lp

    def perplexity(self, sentences: Iterable[str]) -> float:
        """exp of the mean negative log-probability per token (words and `</s>`)."""
        sents = [s for s in sentences] if not isinstance(sentences, str) else None
        if not sents:
            raise ValueError("NgramLM.perplexity(sentences): expected a non-empty iterable of sentences")
        n_tokens = sum(len(s.split()) + 1 for s in sents)
        return math.exp(-sum(self.logprob(s) for s in sents) / n_tokens)


def domain_gap_table(
    train_by_domain: Mapping[str, Sequence[str]],
    test_by_domain: Mapping[str, Sequence[str]],
    source: str = "source",
    order: int = 3,
) -> pd.DataFrame:
    """One row per domain: sizes, vocabulary, variety, OOV share versus the source's training text, and
    the perplexity of its test text under its own training LM and under the source's training LM;
    `ppl_ratio_vs_source` is the latter divided by the source test text's perplexity under the source LM
    (the "perplexity ratio target/source"; 1.0 for the source)."""
    if source not in train_by_domain or source not in test_by_domain:
        raise KeyError(
            f"domain_gap_table(source={source!r}): not a key of both train_by_domain "
            f"({sorted(train_by_domain)}) and test_by_domain ({sorted(test_by_domain)})"
        )
    missing = sorted(set(train_by_domain) ^ set(test_by_domain))
    if missing:
        raise KeyError(
            f"domain_gap_table: domains {missing} are in only one of train_by_domain and test_by_domain"
        )
    lms = {d: NgramLM(order).fit(train) for d, train in train_by_domain.items()}
    src_lm, src_train = lms[source], train_by_domain[source]
    src_ppl = src_lm.perplexity(test_by_domain[source])
    rows = []
    for d, train in train_by_domain.items():
        test = test_by_domain[d]
        ppl_src = src_lm.perplexity(test)
        rows.append(
            {
                "domain": d,
                "n_train": len(train),
                "n_test": len(test),
                "vocabulary": len({w for s in train for w in s.split()}),
                "distinct_trigram_share": distinct_trigram_share(train),
                "oov_share_vs_source": oov_share(test, src_train),
                "ppl_own_lm": lms[d].perplexity(test),
                "ppl_source_lm": ppl_src,
                "ppl_ratio_vs_source": ppl_src / src_ppl,
            }
        )
    return pd.DataFrame(rows).set_index("domain")
