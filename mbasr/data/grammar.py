"""Sentence grammars for the synthetic domains (files under `data/grammars/`).

A grammar is a YAML file:

    domain: banking
    description: one line on what the domain mirrors in the paper
    templates:                 # sentence patterns, one is drawn per sentence
      - "i'd like to {action} [please]"
    slots:                     # named lists; a value may itself use the syntax below
      action: ["check my balance", "(open|close) an account"]
      crop: "@../lexicons/crops.txt"   # or a lexicon file, one value a line, path relative to the
                                       # grammar file; blank lines and lines starting with # skipped

Pattern syntax, spoken style (lower case, no punctuation but apostrophes, numbers as words):
- `{name}`: a random value of slot `name` (recursively expanded);
- `[text]`: optional, included with probability 1/2;
- `(a|b|c)`: one alternative, uniformly;
- built-in number slots, written out as words: `{num:LO-HI}` a cardinal, `{ordinal:LO-HI}`,
  `{digits:N}` N digits read one by one, `{year}`, `{money:LO-HI}` ("forty two dollars [and
  five cents]"), `{time}` ("half past seven", "seven fifteen"), `{percent:LO-HI}`.

Every draw uses the caller's `random.Random`, so a seed fixes the corpus.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from num2words import num2words

GRAMMAR_DIR = Path(__file__).resolve().parents[2] / "data" / "grammars"
_BUILTIN = re.compile(r"^(num|ordinal|digits|year|money|time|percent)(?::(\d+)(?:-(\d+))?)?$")
_DIGITS = "zero one two three four five six seven eight nine".split()


class GrammarError(ValueError):
    """A grammar file with a syntax error or an unknown slot; the message names file and slot."""


def number_words(n: int) -> str:
    """Cardinal as spoken words without punctuation: 342 -> 'three hundred and forty two'."""
    return re.sub(r"[-,]", " ", num2words(n)).replace("  ", " ")


_DEFAULT_RANGE = {
    "num": (0, 100),
    "ordinal": (1, 31),
    "digits": (4, 4),
    "year": (1950, 2030),
    "percent": (1, 99),
    "money": (1, 1000),
}


def _range(name: str, lo: int | None, hi: int | None) -> tuple[int, int]:
    """The range of a built-in: `{num}` uses the default, `{num:7}` is 7 (for digits: 7 digits), `{num:2-9}`."""
    dlo, dhi = _DEFAULT_RANGE.get(name, (0, 0))
    if lo is None:
        return dlo, dhi
    return lo, lo if hi is None else hi


def _builtin(name: str, lo: int | None, hi: int | None, rng: random.Random) -> str:
    lo, hi = _range(name, lo, hi)
    if name == "num":
        return number_words(rng.randint(lo, hi))
    if name == "ordinal":
        return re.sub(r"[-,]", " ", num2words(rng.randint(lo, hi), to="ordinal"))
    if name == "digits":
        return " ".join(rng.choice(_DIGITS) for _ in range(rng.randint(lo, hi)))
    if name == "year":
        return re.sub(r"[-,]", " ", num2words(rng.randint(lo, hi), to="year"))
    if name == "percent":
        return number_words(rng.randint(lo, hi)) + " percent"
    if name == "money":
        dollars = rng.randint(lo, hi)
        amount = number_words(dollars) + (" dollar" if dollars == 1 else " dollars")
        if rng.random() < 0.25:
            cents = rng.randint(1, 99)
            amount += " and " + number_words(cents) + (" cent" if cents == 1 else " cents")
        return amount
    if name == "time":
        h = number_words(rng.randint(1, 12))
        minutes = number_words(rng.choice([10, 15, 20, 30, 40, 45, 50]))
        period = rng.choice(["morning", "afternoon", "evening"])
        return rng.choice(
            [
                f"{h} o'clock",
                f"half past {h}",
                f"quarter past {h}",
                f"quarter to {h}",
                f"{h} {minutes}",
                f"{h} in the {period}",
            ]
        )
    raise AssertionError(name)


@dataclass
class Grammar:
    domain: str
    description: str
    templates: list[str]
    slots: dict[str, list[str]]
    path: str = "<memory>"

    def validate(self) -> None:
        """Fail on an unknown slot or unbalanced brackets anywhere in the grammar."""
        for where, text in self._all_patterns():
            depth = {"[": 0, "(": 0, "{": 0}
            pairs = {"]": "[", ")": "(", "}": "{"}
            for ch in text:
                if ch in depth:
                    depth[ch] += 1
                elif ch in pairs:
                    depth[pairs[ch]] -= 1
                    if depth[pairs[ch]] < 0:
                        raise GrammarError(f"{self.path}: {where}: unbalanced '{ch}' in {text!r}")
            if any(depth.values()):
                raise GrammarError(f"{self.path}: {where}: unclosed bracket in {text!r}")
            for ref in re.findall(r"\{([^{}]+)\}", text):
                m = _BUILTIN.match(ref)
                if ref not in self.slots and not m:
                    raise GrammarError(f"{self.path}: {where}: unknown slot {{{ref}}} in {text!r}")
                if m and ref not in self.slots and m.group(2):
                    lo, hi = _range(m.group(1), int(m.group(2)), int(m.group(3)) if m.group(3) else None)
                    if lo > hi:
                        raise GrammarError(f"{self.path}: {where}: empty range in {{{ref}}} ({lo} > {hi})")
            if _has_stray_bar(text):
                raise GrammarError(f"{self.path}: {where}: '|' outside '( )' in {text!r}")

    def _all_patterns(self):
        for i, t in enumerate(self.templates):
            yield f"templates[{i}]", t
        for name, values in self.slots.items():
            for i, v in enumerate(values):
                yield f"slots.{name}[{i}]", v

    def sentence(self, rng: random.Random) -> str:
        text = self.expand(rng.choice(self.templates), rng)
        return " ".join(text.split())

    def expand(self, pattern: str, rng: random.Random, depth: int = 0) -> str:
        if depth > 20:
            raise GrammarError(f"{self.path}: slots recurse more than 20 levels deep near {pattern!r}")
        out, i = [], 0
        while i < len(pattern):
            ch = pattern[i]
            if ch in "[({":
                j = _matching(pattern, i)
                inner = pattern[i + 1 : j]
                if ch == "[":
                    if rng.random() < 0.5:
                        out.append(self.expand(inner, rng, depth + 1))
                elif ch == "(":
                    out.append(self.expand(rng.choice(_split_top(inner)), rng, depth + 1))
                else:
                    out.append(self._slot(inner, rng, depth))
                i = j + 1
            else:
                out.append(ch)
                i += 1
        return "".join(out)

    def _slot(self, ref: str, rng: random.Random, depth: int) -> str:
        m = _BUILTIN.match(ref)
        if m and ref not in self.slots:
            lo = int(m.group(2)) if m.group(2) else None
            hi = int(m.group(3)) if m.group(3) else None
            return _builtin(m.group(1), lo, hi, rng)
        if ref not in self.slots:
            raise GrammarError(f"{self.path}: unknown slot {{{ref}}}")
        return self.expand(rng.choice(self.slots[ref]), rng, depth + 1)


def _has_stray_bar(s: str) -> bool:
    """A '|' is only meaningful directly inside '( )'."""
    stack = []
    for ch in s:
        if ch in "[({":
            stack.append(ch)
        elif ch in "])}" and stack:
            stack.pop()
        elif ch == "|" and (not stack or stack[-1] != "("):
            return True
    return False


def _matching(s: str, i: int) -> int:
    close = {"[": "]", "(": ")", "{": "}"}[s[i]]
    depth = 0
    for j in range(i, len(s)):
        if s[j] == s[i]:
            depth += 1
        elif s[j] == close:
            depth -= 1
            if depth == 0:
                return j
    raise GrammarError(f"unclosed {s[i]!r} in {s!r}")


def _split_top(s: str) -> list[str]:
    """Split on '|' at bracket depth 0."""
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch in "[({":
            depth += 1
        elif ch in "])}":
            depth -= 1
        if ch == "|" and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _slot_values(grammar_path: Path, name: str, values) -> list[str]:
    if isinstance(values, str) and values.startswith("@"):
        lex = (grammar_path.parent / values[1:]).resolve()
        if not lex.exists():
            raise GrammarError(f"{grammar_path}: slot '{name}' names lexicon {lex}, which does not exist")
        lines = [ln.strip() for ln in lex.read_text(encoding="utf-8").splitlines()]
        values = [ln for ln in lines if ln and not ln.startswith("#")]
    if not isinstance(values, list) or not values:
        raise GrammarError(f"{grammar_path}: slot '{name}' must be a non-empty list or '@lexicon-file'")
    return [str(v) for v in values]


def load_grammar(path: str | Path) -> Grammar:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise GrammarError(f"{path}: not valid YAML: {e}") from None
    for field in ("domain", "templates", "slots"):
        if field not in (raw or {}):
            raise GrammarError(f"{path}: missing top-level field '{field}'")
    g = Grammar(
        domain=raw["domain"],
        description=raw.get("description", ""),
        templates=[str(t) for t in raw["templates"]],
        slots={k: _slot_values(path, k, vs) for k, vs in raw["slots"].items()},
        path=str(path),
    )
    g.validate()
    return g


@cache
def domain_grammar(domain: str) -> Grammar:
    path = GRAMMAR_DIR / f"{domain}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in GRAMMAR_DIR.glob("*.yaml"))
        raise GrammarError(f"no grammar for domain {domain!r} (looked for {path}); known: {known}")
    return load_grammar(path)


def generate_sentences(grammar: Grammar, n: int, seed: int, max_tries: int | None = None) -> list[str]:
    """`n` distinct sentences, in draw order; fails loudly if the grammar cannot produce that many."""
    rng = random.Random(f"{grammar.domain}-{seed}")
    seen: dict[str, None] = {}
    tries = 0
    limit = max_tries or 50 * n
    while len(seen) < n and tries < limit:
        seen.setdefault(grammar.sentence(rng), None)
        tries += 1
    if len(seen) < n:
        raise GrammarError(
            f"{grammar.path}: only {len(seen)} distinct sentences in {tries} draws, {n} asked: "
            "add templates or slot values"
        )
    return list(seen)
