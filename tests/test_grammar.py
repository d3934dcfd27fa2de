"""The grammar engine: syntax, built-in number slots, validation messages, determinism."""

import random

import pytest

from mbasr.data.grammar import Grammar, GrammarError, generate_sentences, load_grammar, number_words


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
