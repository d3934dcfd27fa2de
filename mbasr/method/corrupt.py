"""Transcript corruption for text-only items (the paper's "Corruption (synthetic noise)" and the
predecessor paper's ablations), the measured-vs-expected check of its rates, and "projector-induced
noise" (projected speech vectors mapped to vocabulary tokens and decoded).

Synthetic noise, as the authors' `noise_text` (nlpaug `RandomCharAug`, then letter duplication):
1. word choice: of a transcript's N whitespace-separated words, k = clip(ceil(word_p * N), word_min,
   word_max) are drawn without replacement among the words of at least `min_word_len` characters
   (all of them when fewer are eligible); in each chosen word of L characters,
   m = min(clip(ceil(char_p * L), char_min, char_max), L) distinct positions get a character drawn
   uniformly from `alphabet` (which may, by chance, be the original character);
2. every letter of the result (`str.isalpha`) is followed, with probability `dup_p`, by 1 to `dup_max`
   extra copies of itself (uniform).
The counting rules (ceil, the clip, `min_word_len` = 4) are nlpaug 1.1.11's defaults as the authors
called it, so "15% of the words" is 15% rounded up, at least one word, among words of 4+ characters.

Own implementation rather than nlpaug, because nlpaug (1.1.11, its last release):
- draws from the global `random` module, so its output depends on whatever ran before and cannot be
  seeded per item without touching global state; here every call gets its own `random.Random(seed)`;
- tokenises on every non-word character and joins tokens with spaces, so "i'd" comes back as "i ' d"
  whether or not the word was chosen: a change of the transcript that is not part of the noise;
- adds `!@#$%^&*()_+` to the substitution alphabet unless `spec_char` is cleared (the authors did not
  clear it), while the paper describes letters only;
- rounds `ceil(0.3 * 10)` to 4 through floating point (3.0000000000000004); here ceil ignores 1e-9.
Deviations, each restorable: words are whitespace tokens kept whole (apostrophes are characters of
the word); the alphabet is letters only by default (`alphabet=string.ascii_letters + "!@#$%^&*()_+"`
gives nlpaug's).

Ablation modes (`CorruptionConfig.mode`): "synthetic" (the above; "naive" in the authors' code),
"random" (characters uniform over letters and space, same length), "echo" (the clean transcript),
"empty" (no input).
"""

from __future__ import annotations

import math
import random
import re
import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace

import torch
from rapidfuzz.distance import Levenshtein  # installed with jiwer

_WORDS = re.compile(r"(\s+)")
MODES = ("synthetic", "random", "echo", "empty")
PROJECTOR_MODES = ("nearest", "argmin_dot")


@dataclass(frozen=True)
class CorruptionConfig:
    mode: str = "synthetic"  # one of MODES
    word_p: float = 0.15  # share of words chosen (paper; nlpaug aug_word_p)
    word_min: int = 1  # at least this many words per transcript (nlpaug aug_word_min default)
    word_max: int = 10  # at most this many (nlpaug aug_word_max default)
    min_word_len: int = 4  # shorter words are never chosen (nlpaug min_char default)
    char_p: float = 0.30  # share of a chosen word's characters replaced (paper; aug_char_p)
    char_min: int = 1  # at least (paper; aug_char_min)
    char_max: int = 10  # at most (paper; aug_char_max)
    alphabet: str = string.ascii_letters  # replacements: letters, both cases, no digits (paper)
    dup_p: float = 0.1  # each letter duplicated with this probability (paper)
    dup_max: int = 3  # ... 1 to dup_max extra times (paper)
    random_alphabet: str = string.ascii_letters + " "  # the "random" ablation's characters

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"CorruptionConfig.mode={self.mode!r}: unknown; choose one of {MODES}")
        for name in ("word_p", "char_p", "dup_p"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"CorruptionConfig.{name}={v}: a probability must lie in [0, 1]")
        for name in ("word_min", "word_max", "min_word_len", "char_min", "char_max", "dup_max"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ValueError(f"CorruptionConfig.{name}={v!r}: must be a non-negative integer")
        if self.word_min > self.word_max:
            raise ValueError(f"CorruptionConfig.word_min={self.word_min} exceeds word_max={self.word_max}")
        if self.char_min > self.char_max:
            raise ValueError(f"CorruptionConfig.char_min={self.char_min} exceeds char_max={self.char_max}")
        if self.dup_p > 0 and self.dup_max < 1:
            raise ValueError(f"CorruptionConfig.dup_max={self.dup_max}: must be >= 1 when dup_p > 0")
        for name in ("alphabet", "random_alphabet"):
            v = getattr(self, name)
            if not v:
                raise ValueError(f"CorruptionConfig.{name}: must not be empty")
        if any(c.isspace() for c in self.alphabet):
            raise ValueError("CorruptionConfig.alphabet: must not contain whitespace (words would split)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CorruptionConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"CorruptionConfig: unknown parameter(s) {unknown}; known: {sorted(known)}")
        return cls(**d)


PAPER_CORRUPTION = CorruptionConfig()  # the paper's synthetic noise, every default as above


def _count(p: float, size: int, lo: int, hi: int) -> int:
    """nlpaug's count: ceil(p * size) clipped to [lo, hi] (ceil ignoring float noise below 1e-9)."""
    return min(max(math.ceil(p * size - 1e-9), lo), hi)


def _n_words(cfg: CorruptionConfig, n_words: int, n_eligible: int) -> int:
    return min(_count(cfg.word_p, n_words, cfg.word_min, cfg.word_max), n_eligible)


def _n_chars(cfg: CorruptionConfig, length: int) -> int:
    return min(_count(cfg.char_p, length, cfg.char_min, cfg.char_max), length)


def corrupt(text: str, config: CorruptionConfig = PAPER_CORRUPTION, seed: int | str = 0) -> str:
    """The corrupted transcript. A function of (text, config, seed) only: it uses its own
    `random.Random(seed)` and touches no global random state."""
    cfg = config
    rng = random.Random(seed)
    if cfg.mode == "echo":
        return text
    if cfg.mode == "empty":
        return ""
    if cfg.mode == "random":
        return "".join(rng.choice(cfg.random_alphabet) for _ in text)
    parts = _WORDS.split(text)  # words at even indices (maybe ""), separators at odd ones, kept as they are
    words = [i for i in range(0, len(parts), 2) if parts[i]]
    eligible = [i for i in words if len(parts[i]) >= cfg.min_word_len]
    for i in rng.sample(eligible, _n_words(cfg, len(words), len(eligible))):
        chars = list(parts[i])
        for j in rng.sample(range(len(chars)), _n_chars(cfg, len(chars))):
            chars[j] = rng.choice(cfg.alphabet)
        parts[i] = "".join(chars)
    out = []
    for ch in "".join(parts):
        out.append(ch)
        if ch.isalpha() and rng.random() < cfg.dup_p:
            out.append(ch * rng.randint(1, cfg.dup_max))
    return "".join(out)


# --------------------------------------------------------------------------- rates: measured vs expected
@dataclass(frozen=True)
class CorruptionRates:
    word_touch: float  # share of words that differ from the clean word (position by position)
    cer: float  # character edits / clean characters, over the whole set (corpus-level)
    chosen: float = float("nan")  # expected share of words chosen for substitution (expectation only)


def _mean_subset_product(stay: Sequence[float], m: int) -> float:
    """E over uniform m-subsets S of positions of prod_{j in S} stay[j]: e_m(stay) / C(L, m)."""
    e = [1.0] + [0.0] * m  # elementary symmetric polynomials e_0..e_m, by dynamic programming
    for s in stay:
        for j in range(m, 0, -1):
            e[j] += e[j - 1] * s
    return e[m] / math.comb(len(stay), m)


def expected_rates(texts: Sequence[str], config: CorruptionConfig = PAPER_CORRUPTION) -> CorruptionRates:
    """What the parameters imply for these texts, in "synthetic" mode, computed exactly per sentence.

    For a sentence of N words, E the words of at least `min_word_len` characters and
    k = min(clip(ceil(word_p N), word_min, word_max), |E|), word i is chosen with probability
    pi_i = k/|E| if i in E, else 0. In a chosen word of L characters each position is substituted with
    probability m/L (m = min(clip(ceil(char_p L), char_min, char_max), L)). With A the alphabet, a
    substitution leaves character c unchanged with probability stay(c) = [c in A]/|A|, and produces a
    letter with probability q = (letters in A)/|A|. Write l(c) = [c is a letter] and
    D_i = prod_{c in w_i} (1 - dup_p l(c)), the chance that no letter of word i is duplicated.

    Words touched: a word is untouched iff it was not chosen, or every substituted position drew its
    own character back, and no letter was duplicated (an unchanged character keeps its letter status,
    so D_i applies to both cases):
        P(touched_i) = 1 - D_i [(1 - pi_i) + pi_i e_m(stay(c_1..c_L)) / C(L, m)]
    with e_m the elementary symmetric polynomial (the mean of prod stay over the m-subsets).
    word_touch = sum_i P(touched_i) / sum N.

    Character error rate: substitutions contribute pi_i (m/L) sum_c (1 - stay(c)) edits per word; each
    character is a letter after substitution with probability
        P(letter_j) = (1 - pi_i m/L) l(c_j) + pi_i (m/L) q,
    and each letter gets dup_p (1 + dup_max)/2 inserted copies on average, so
        E[edits] = sum_i [pi_i (m/L) sum_j (1 - stay(c_j)) + dup_p (1 + dup_max)/2 sum_j P(letter_j)]
    and cer = sum E[edits] / sum len(text). This counts one edit per substitution and inserted copy;
    the Levenshtein distance is at most that (rarely less, when a cheaper alignment exists), so the
    measured CER sits at or slightly below it.

    `chosen` = sum pi_i / sum N: what "word_p of the words" becomes under the counting rule (more than
    word_p in short sentences, because of the ceil and the minimum).
    """
    cfg = config
    if cfg.mode != "synthetic":
        raise ValueError(
            f"expected_rates: config.mode={cfg.mode!r}; the expectation is derived for 'synthetic'"
        )
    alpha = set(cfg.alphabet)
    q = sum(c.isalpha() for c in cfg.alphabet) / len(cfg.alphabet)
    dup_mean = cfg.dup_p * (1 + cfg.dup_max) / 2
    n_words = n_chars = 0
    touched = edits = chosen = 0.0
    for text in texts:
        words = text.split()
        n_words += len(words)
        n_chars += len(text)
        eligible = [w for w in words if len(w) >= cfg.min_word_len]
        k = _n_words(cfg, len(words), len(eligible))
        for w in words:
            pi = k / len(eligible) if len(w) >= cfg.min_word_len else 0.0
            m = _n_chars(cfg, len(w))
            r = m / len(w)
            stay = [(c in alpha) / len(cfg.alphabet) for c in w]
            letter = [c.isalpha() for c in w]
            no_dup = math.prod(1 - cfg.dup_p * ell for ell in letter)
            untouched_if_chosen = _mean_subset_product(stay, m) if pi else 0.0
            touched += 1 - no_dup * ((1 - pi) + pi * untouched_if_chosen)
            edits += pi * r * sum(1 - s for s in stay)
            edits += dup_mean * sum((1 - pi * r) * ell + pi * r * q for ell in letter)
            chosen += pi
    if not n_words:
        raise ValueError("expected_rates: texts: no words")
    return CorruptionRates(word_touch=touched / n_words, cer=edits / n_chars, chosen=chosen / n_words)


def sentence_cer(clean: str, corrupted: str) -> float:
    """Levenshtein distance / clean length (the clean text is the reference)."""
    return Levenshtein.distance(corrupted, clean) / max(len(clean), 1)


def measure_rates(clean: Sequence[str], corrupted: Sequence[str]) -> CorruptionRates:
    """Measured word-touch share (word i of the corrupted text compared with word i of the clean one;
    a missing word counts as touched) and corpus-level CER."""
    if len(clean) != len(corrupted):
        raise ValueError(f"measure_rates: {len(clean)} clean texts but {len(corrupted)} corrupted ones")
    n_words = n_touched = n_chars = n_edits = 0
    for a, b in zip(clean, corrupted, strict=True):
        wa, wb = a.split(), b.split()
        n_words += len(wa)
        n_touched += sum(i >= len(wb) or w != wb[i] for i, w in enumerate(wa))
        n_chars += len(a)
        n_edits += Levenshtein.distance(b, a)
    if not n_words:
        raise ValueError("measure_rates: clean: no words")
    return CorruptionRates(word_touch=n_touched / n_words, cer=n_edits / n_chars)


def corrupt_all(
    texts: Sequence[str], config: CorruptionConfig = PAPER_CORRUPTION, seed: int = 0
) -> list[str]:
    """Corrupt each text with its own seed, derived from `seed` and its index."""
    return [corrupt(t, config, seed=f"{seed}-{i}") for i, t in enumerate(texts)]


def ablation_examples(
    texts: Sequence[str], config: CorruptionConfig = PAPER_CORRUPTION, seed: int = 0
) -> list[dict]:
    """For each text, a row {clean, synthetic, random, echo}: the same seed under each mode ("empty" is
    always ""), with the synthetic rates of `config`."""
    modes = ("synthetic", "random", "echo")
    cfgs = {m: replace(config, mode=m) for m in modes}
    return [
        {"clean": t, **{m: corrupt(t, cfgs[m], seed=f"{seed}-{i}") for m in modes}}
        for i, t in enumerate(texts)
    ]


# --------------------------------------------------------------------------- projector-induced noise
def projector_tokens(vectors: torch.Tensor, embedding: torch.Tensor, mode: str = "nearest") -> torch.Tensor:
    """Map each projected speech vector to a vocabulary token id.

    vectors (T, D): projector outputs of one utterance; embedding (V, D): the LLM's input-embedding
    matrix. mode "nearest": the token of highest cosine similarity (what the paper's text describes,
    "nearest vocabulary entry"); "argmin_dot": the token of lowest dot product (what the authors' code,
    `noise_from_audio`, computes: the least similar token by dot product). Returns a LongTensor (T,).
    Ties go to the lowest id.
    """
    if mode not in PROJECTOR_MODES:
        raise ValueError(f"projector_tokens: mode={mode!r}: unknown; choose one of {PROJECTOR_MODES}")
    if vectors.dim() != 2:
        raise ValueError(f"projector_tokens: vectors must be (T, D), got shape {tuple(vectors.shape)}")
    if embedding.dim() != 2:
        raise ValueError(f"projector_tokens: embedding must be (V, D), got shape {tuple(embedding.shape)}")
    if vectors.shape[1] != embedding.shape[1]:
        raise ValueError(
            f"projector_tokens: vectors have D={vectors.shape[1]} but embedding has D={embedding.shape[1]}"
        )
    with torch.no_grad():
        v = vectors.detach().float()  # (T, D)
        e = embedding.detach().float().to(v.device)  # (V, D)
        if mode == "nearest":
            v = torch.nn.functional.normalize(v, dim=-1)
            e = torch.nn.functional.normalize(e, dim=-1)
        out = []
        for chunk in v.split(256):  # bounds the (chunk, V) score matrix
            scores = chunk @ e.T  # (chunk, V)
            out.append(scores.argmax(-1) if mode == "nearest" else scores.argmin(-1))
        return torch.cat(out).long() if out else torch.zeros(0, dtype=torch.long)


def decode_tokens(ids: torch.Tensor, tokenizer) -> str:
    """Decode token ids (T,) to text with the caller's tokenizer (anything with `.decode(list[int])`),
    as the authors' code does (`tokenizer.decode(noise_tokens)`)."""
    if ids.dim() != 1:
        raise ValueError(f"decode_tokens: ids must be (T,), got shape {tuple(ids.shape)}")
    return tokenizer.decode(ids.tolist())


def projector_noise_text(
    vectors: torch.Tensor, embedding: torch.Tensor, tokenizer, mode: str = "nearest"
) -> str:
    """Projector-induced noise for one utterance: `projector_tokens` then `decode_tokens`."""
    return decode_tokens(projector_tokens(vectors, embedding, mode), tokenizer)
