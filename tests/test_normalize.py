"""Spoken-style normalisation (mbasr.data.normalize)."""

import re

import pytest

from mbasr.data.normalize import spoken, words

CASES = [
    ("Hello, World!", "hello world"),
    ("In 1995 we met.", "in nineteen ninety five we met"),
    ("2005 and 1905", "two thousand and five and nineteen oh five"),
    ("42 apples", "forty two apples"),
    ("1,200 units", "one thousand two hundred units"),
    ("2.5 and .25", "two point five and point two five"),
    ("the 3rd and 21st", "the third and twenty first"),
    ("20% off", "twenty percent off"),
    ("$4.50", "four dollars and fifty cents"),
    ("$1", "one dollar"),
    ("\u00a32 million", "two million pounds"),
    ("at 7:05 or 10:00", "at seven oh five or ten o'clock"),
    ("the 1960s and '80s", "the nineteen sixties and eighties"),
    ("3/4 and 1/2", "three quarters and a half"),
    ("salt & pepper", "salt and pepper"),
    ("well-known and/or", "well known and or"),
    ("Don't 'quote' the students' books", "don't quote the students books"),
    ("caf\u00e9 na\u00efve \u00c6sop \u2014 it\u2019s", "cafe naive aesop it's"),
    (
        "e.g. Dr. Smith vs. Mr. Jones, No. 5, etc.",
        "for example doctor smith versus mister jones number five et cetera",
    ),
    ("B12 and 007", "b twelve and zero zero seven"),
    ("  many   spaces\there\n", "many spaces here"),
]


@pytest.mark.parametrize(("written", "expected"), CASES)
def test_spoken(written, expected):
    assert spoken(written) == expected


@pytest.mark.parametrize("text", ["", "   ", "!!! --- ...", "()[]{}", "\u2014"])
def test_nothing_speakable_is_empty(text):
    assert spoken(text) == ""


def test_alphabet_and_idempotence():
    text = "Fig. 3: \u00bd of R&D's \u20ac5.99 budget (\u00b130\u00b0C) went to A.I. research @ MIT #1!"
    out = spoken(text)
    assert re.fullmatch(r"[a-z' ]+", out)
    assert "  " not in out and out == out.strip()
    assert spoken(out) == out


def test_grammar_style_text_unchanged():
    s = "i'd like to check my balance of forty two dollars please"
    assert spoken(s) == s


def test_words():
    assert words("It's 5 o'clock.") == ["it's", "five", "o'clock"]
    assert words("") == []


def test_non_string_rejected():
    with pytest.raises(TypeError, match="text"):
        spoken(42)


def test_ranges():
    assert spoken("poet (1881-1958)") == "poet eighteen eighty one to nineteen fifty eight"
    assert spoken("2-3 voices") == "two to three voices"
