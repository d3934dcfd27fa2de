"""Spoken-style text normalisation: written English -> the corpus's transcript style.

The paper's transcripts are spoken-style (its scoring normaliser upper-cases, removes fillers and expands
contractions; see "System" in docs/paper.md). Our synthetic domains are written directly in spoken style by
the grammars (`mbasr.data.grammar`): lower case, numbers as words, no punctuation but in-word
apostrophes. `spoken` brings written text (WordNet glosses for the `general` pool, bring-your-own
transcripts) into the same style, so that every text the models see uses one alphabet: `[a-z' ]`.

Rules, in order: Unicode folded to ASCII (accents dropped, typographic quotes and dashes made plain);
a few abbreviations expanded (e.g., i.e., etc., vs., Dr., Mr., Mrs., No. before a number); currency
("$5.50" -> "five dollars and fifty cents"; $, £, €; "$2 million" -> "two million dollars"); times
("7:30" -> "seven thirty"); decades ("1960s" -> "nineteen sixties"); ordinals ("3rd" -> "third");
simple fractions ("3/4" -> "three quarters"); ranges ("1902-1979" -> "nineteen oh two to nineteen
seventy nine"); years (1100-2099 read as years); decimals ("2.5" -> "two point five"); other numbers as
cardinals (`mbasr.data.grammar.number_words`), numbers with a leading zero or over 15 digits read digit
by digit; `%` -> "percent", `&` -> "and", `+` -> "plus", `°` -> "degrees"; hyphens, slashes and all
other punctuation become spaces; apostrophes are kept only between letters.
"""

from __future__ import annotations

import re
import unicodedata

from num2words import num2words

from mbasr.data.grammar import number_words

_DIGIT_WORDS = "zero one two three four five six seven eight nine".split()
_FOLD = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u02bc": "'",
        "\u2032": "'",
        "\u00b4": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u00e6": "ae",
        "\u00c6": "ae",
        "\u0153": "oe",
        "\u0152": "oe",
        "\u00df": "ss",
        "\u00f8": "o",
        "\u00d8": "o",
        "\u0142": "l",
        "\u0141": "l",
        "\u00f0": "d",
        "\u00fe": "th",
        "\u00a0": " ",
    }
)
_ABBREVIATIONS = [
    (re.compile(r"\be\.\s?g\.", re.I), " for example "),
    (re.compile(r"\bi\.\s?e\.", re.I), " that is "),
    (re.compile(r"\betc\.", re.I), " et cetera "),
    (re.compile(r"\bvs\.", re.I), " versus "),
    (re.compile(r"\bdr\.", re.I), " doctor "),
    (re.compile(r"\bmrs\.", re.I), " missus "),
    (re.compile(r"\bmr\.", re.I), " mister "),
    (re.compile(r"\bms\.", re.I), " miz "),
    (re.compile(r"\bno\.\s?(?=\d)", re.I), " number "),
]
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_CURRENCY = re.compile(
    r"([$\u00a3\u20ac])\s?(" + _NUMBER + r")(?:\s?(thousand|million|billion|trillion)\b)?", re.I
)
_UNITS = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "\u00a3": ("pound", "pounds", "penny", "pence"),
    "\u20ac": ("euro", "euros", "cent", "cents"),
}
_TIME = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\b")
_DECADE = re.compile(r"(?<![A-Za-z\d.,])(?:(\d{1,3}0)|'(\d0))'?s\b")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.I)
_RANGE = re.compile(r"(?<![\d\-.,/])(\d+)\s?-\s?(\d+)(?![\d\-]|[.,/]\d)")
_FRACTION = re.compile(r"(?<![\d/.,])(\d+)/(\d+)(?![\d/]|[.,]\d)")
_NUMBER_RE = re.compile(r"(?<!\d)(" + _NUMBER + r"|\.\d+)")
_LETTER_DIGIT = re.compile(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")
_APOSTROPHE = re.compile(r"(?<![a-z])'|'(?![a-z])")
_HAS_DIGIT = re.compile(r"\d")
_NOT_SPOKEN = re.compile(r"[^a-z' ]+")


def _words(s: str) -> str:
    return re.sub(r"[-,]", " ", s)


def _digits(s: str) -> str:
    return " ".join(_DIGIT_WORDS[int(c)] for c in s)


def _cardinal(s: str) -> str:
    """A digit string (commas allowed as thousands separators, one optional decimal point) as words."""
    s = s.replace(",", "")
    whole, _, frac = s.partition(".")
    if not whole:
        return f"point {_digits(frac)}"
    if (len(whole) > 1 and whole.startswith("0")) or len(whole) > 15:
        text = _digits(whole)
    else:
        text = number_words(int(whole))
    return f"{text} point {_digits(frac)}" if frac else text


def _number(s: str) -> str:
    """A number as read in running text: four-digit numbers 1100-2099 are years."""
    if re.fullmatch(r"\d{4}", s) and 1100 <= int(s) <= 2099:
        return _words(num2words(int(s), to="year"))
    return _cardinal(s)


def _plural(text: str) -> str:
    head, _, last = text.rpartition(" ")
    last = last[:-1] + "ies" if last.endswith("y") else last + "s"
    return f"{head} {last}".strip()


def _currency(m: re.Match) -> str:
    one, many, sub_one, sub_many = _UNITS[m.group(1)]
    amount, scale = m.group(2).replace(",", ""), m.group(3)
    if scale:
        return f" {_cardinal(amount)} {scale.lower()} {many} "
    whole, _, frac = amount.partition(".")
    text = f"{_cardinal(whole)} {one if int(whole) == 1 else many}"
    if frac:
        cents = int((frac + "0")[:2])
        if cents:
            text += f" and {number_words(cents)} {sub_one if cents == 1 else sub_many}"
    return f" {text} "


def _time(m: re.Match) -> str:
    hour, minute = number_words(int(m.group(1))), int(m.group(2))
    if minute == 0:
        return f" {hour} o'clock "
    return f" {hour} {'oh ' if minute < 10 else ''}{number_words(minute)} "


def _decade(m: re.Match) -> str:
    if m.group(2):
        return " " + _plural(number_words(int(m.group(2)))) + " "
    return " " + _plural(_number(m.group(1))) + " "


def _fraction(m: re.Match) -> str:
    num, den = int(m.group(1)), int(m.group(2))
    if not 2 <= den <= 10 or num == 0:
        return f" {_cardinal(m.group(1))} over {_cardinal(m.group(2))} "
    if den == 2:
        name = "half" if num == 1 else "halves"
    elif den == 4:
        name = "quarter" if num == 1 else "quarters"
    else:
        name = _words(num2words(den, to="ordinal")) + ("" if num == 1 else "s")
    return f" {'a' if num == 1 else number_words(num)} {name} "


def spoken(text: str) -> str:
    """Written English as spoken-style words: only `[a-z' ]`, single spaces, "" if nothing speakable.

    >>> spoken("In 1995, Acme paid $4.50 (20%) & left at 7:05.")
    'in nineteen ninety five acme paid four dollars and fifty cents twenty percent and left at seven oh five'
    """
    if not isinstance(text, str):
        raise TypeError(f"spoken(text=...): expected str, got {type(text).__name__}")
    t = text
    if not t.isascii():
        t = unicodedata.normalize("NFKC", t).translate(_FOLD)
        t = "".join(c for c in unicodedata.normalize("NFKD", t) if not unicodedata.combining(c))
    if "." in t:
        for pattern, repl in _ABBREVIATIONS:
            t = pattern.sub(repl, t)
    if _HAS_DIGIT.search(t):
        t = _CURRENCY.sub(_currency, t)
        t = _TIME.sub(_time, t)
        t = _DECADE.sub(_decade, t)
        t = _ORDINAL.sub(lambda m: " " + _words(num2words(int(m.group(1)), to="ordinal")) + " ", t)
        t = _FRACTION.sub(_fraction, t)
        t = _RANGE.sub(r" \1 to \2 ", t)
        t = _LETTER_DIGIT.sub(" ", t)
        t = _NUMBER_RE.sub(lambda m: " " + _number(m.group(1)) + " ", t)
    t = (
        t.replace("%", " percent ")
        .replace("&", " and ")
        .replace("+", " plus ")
        .replace("\u00b0", " degrees ")
    )
    t = _NOT_SPOKEN.sub(" ", t.lower())
    t = _APOSTROPHE.sub(" ", t)
    return " ".join(t.split())


def words(text: str) -> list[str]:
    """The spoken-style words of `text` (`spoken(text).split()`)."""
    return spoken(text).split()
