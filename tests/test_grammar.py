"""The grammar engine: syntax, built-in number slots, validation messages, determinism."""

import random
import re

import pytest

from mbasr.data.grammar import (
    GRAMMAR_DIR,
    Grammar,
    GrammarError,
    generate_sentences,
    load_grammar,
    number_words,
)


def _g(templates, slots=None):
    g = Grammar("t", "", templates, slots or {}, path="t.yaml")
    g.validate()
    return g


def test_syntax_expands_optional_alternatives_and_slots():
    g = _g(["{greet} (a|b) [c]"], {"greet": ["hi", "hello {name}"], "name": ["ann"]})
    seen = {g.sentence(random.Random(i)) for i in range(200)}
    assert seen == {f"{h} {x}{c}" for h in ("hi", "hello ann") for x in "ab" for c in ("", " c")}


def test_builtins_speak_numbers():
    assert number_words(342) == "three hundred and forty two"
    g = _g(["{digits:3}", "{num:0-0}", "{money:1-1}", "{num:7}"])
    rng = random.Random(0)
    assert len(g.expand("{digits:3}", rng).split()) == 3
    assert g.expand("{num:0-0}", rng) == "zero"
    assert g.expand("{num:7}", rng) == "seven"
    assert all(g.expand("{money:1-1}", random.Random(i)).startswith("one dollar") for i in range(20))
    assert not any("one dollars" in g.expand("{money:1-1}", random.Random(i)) for i in range(50))


@pytest.mark.parametrize(
    "template, message",
    [
        ("{nope}", "unknown slot"),
        ("[a", "unclosed"),
        ("a)", "unbalanced"),
        ("{num:9-3}", "empty range"),
        ("[b|c]", "outside"),
    ],
)
def test_validation_names_file_and_problem(template, message):
    with pytest.raises(GrammarError, match=rf"t\.yaml: templates\[0\].*{message}"):
        _g([template])


def test_lexicon_file_and_determinism(tmp_path):
    (tmp_path / "lex.txt").write_text("# a comment\napple\n\npear\n")
    (tmp_path / "g.yaml").write_text(
        'domain: t\ntemplates: ["i like {fruit}s"]\nslots:\n  fruit: "@lex.txt"\n'
    )
    g = load_grammar(tmp_path / "g.yaml")
    assert g.slots["fruit"] == ["apple", "pear"]
    assert generate_sentences(g, 2, seed=1) == generate_sentences(g, 2, seed=1)
    with pytest.raises(GrammarError, match="only 2 distinct"):
        generate_sentences(g, 3, seed=1)
    (tmp_path / "bad.yaml").write_text('domain: t\ntemplates: ["{x}"]\nslots:\n  x: "@missing.txt"\n')
    with pytest.raises(GrammarError, match="bad.yaml: slot 'x' names lexicon"):
        load_grammar(tmp_path / "bad.yaml")


# Lexicon files each grammar may use, and what their entries may hold. Banking callers are the source's
# population (names, cities, streets), so banking may use source lexicons; source and banking entries
# may carry grammar syntax ({slot}); the far targets' lists (from WordNet) are plain words.
LEXICON_RULES = {
    "source": (("source_",), r"[a-z' {}_]+"),
    "banking": (("source_", "banking_"), r"[a-z' {}_]+"),
    "agriculture": (("agriculture_",), r"[a-z']+( [a-z']+)*"),
    "musical_instruments": (("musical_instruments_",), r"[a-z']+( [a-z']+)*"),
}


@pytest.mark.parametrize("domain", sorted(LEXICON_RULES))
def test_lexicons_say_where_they_come_from(domain):
    prefixes, pattern = LEXICON_RULES[domain]
    text = (GRAMMAR_DIR / f"{domain}.yaml").read_text(encoding="utf-8")
    files = re.findall(r'"@(\.\./lexicons/[\w.]+)"', text)
    assert files, f"{domain}.yaml uses no lexicon file"
    for rel in files:
        path = (GRAMMAR_DIR / rel).resolve()
        assert path.name.startswith(prefixes), f"{path}: not a lexicon {domain} may use ({prefixes})"
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines[0].startswith("# "), f"{path}: line 1 must say where the list comes from"
        entries = [ln for ln in lines if ln.strip() and not ln.startswith("#")]
        assert len(entries) == len(set(entries)), f"{path}: duplicate entries"
        bad = [ln for ln in entries if not re.fullmatch(pattern, ln)]
        assert not bad, f"{path}: entries outside {pattern} {bad[:3]}"
