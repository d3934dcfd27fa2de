"""The scoring normaliser: the paper's "System" table, row "scoring" (docs/paper.md), applied to references and
hypotheses before WER, and the paper's hallucination guard (row "decoding").

In the spirit of the authors' `wer_result.py`: upper case, punctuation off, fillers removed, contractions
expanded, a few spelling merges; every rule lives in the module-level tables below, so a reader sees the
whole normaliser in one place. Deviation from the authors' list, on purpose: their sed file also merges
plurals into singulars (CARDS -> CARD), CAN -> COULD, WILL -> WOULD, YEAH -> YES and company names of their
call-centre data. Those hide real recognition errors on general English and are left out; add them to
`PHRASES` to restore the authors' scoring.

Not to be confused with `mbasr.data.normalize`, which writes text in the corpus's spoken style."""

from __future__ import annotations

import re
import unicodedata

from num2words import num2words

# --- The hallucination guard (paper, "decoding" row; authors' HALLUCINATION_NEW_HYP, WORD_RATIO_THRESHOLD).
HALLUCINATION_MIN_WORDS = 5  # the guard looks only at hypotheses of MORE than this many words


HALLUCINATION_RATIO = 7.0  # ... whose words / unique-words ratio exceeds this


HALLUCINATION_TOKEN = "UNK"  # ... and replaces them by this one word


# --- Fillers: removed wherever they stand as a whole word (authors' list, plus ER/ERM/UHM/UHH/HMMM).
FILLERS = frozenset(
    "AAH AAHH AAHM AH AHA AHH AHM AW EH ER ERM HA HM HMM HMMM HO HUH MM MMM MMMM OH OOH OW UH UHH UHM UM UMM".split()
)


# --- Contractions, expanded before the apostrophes go (authors' table, completed).
CONTRACTIONS = {
    "I'M": "I AM",
    "I'VE": "I HAVE",
    "I'LL": "I WILL",
    "I'D": "I WOULD",
    "YOU'RE": "YOU ARE",
    "YOU'VE": "YOU HAVE",
    "YOU'LL": "YOU WILL",
    "YOU'D": "YOU WOULD",
    "HE'S": "HE IS",
    "HE'LL": "HE WILL",
    "HE'D": "HE WOULD",
    "SHE'S": "SHE IS",
    "SHE'LL": "SHE WILL",
    "SHE'D": "SHE WOULD",
    "IT'S": "IT IS",
    "IT'LL": "IT WILL",
    "IT'D": "IT WOULD",
    "WE'RE": "WE ARE",
    "WE'VE": "WE HAVE",
    "WE'LL": "WE WILL",
    "WE'D": "WE WOULD",
    "THEY'RE": "THEY ARE",
    "THEY'VE": "THEY HAVE",
    "THEY'LL": "THEY WILL",
    "THEY'D": "THEY WOULD",
    "THAT'S": "THAT IS",
    "THAT'LL": "THAT WILL",
    "THAT'D": "THAT WOULD",
    "THERE'S": "THERE IS",
    "HERE'S": "HERE IS",
    "WHAT'S": "WHAT IS",
    "WHERE'S": "WHERE IS",
    "WHO'S": "WHO IS",
    "HOW'S": "HOW IS",
    "LET'S": "LET US",
    "NAME'S": "NAME IS",
    "DON'T": "DO NOT",
    "DOESN'T": "DOES NOT",
    "DIDN'T": "DID NOT",
    "ISN'T": "IS NOT",
    "AREN'T": "ARE NOT",
    "WASN'T": "WAS NOT",
    "WEREN'T": "WERE NOT",
    "HAVEN'T": "HAVE NOT",
    "HASN'T": "HAS NOT",
    "HADN'T": "HAD NOT",
    "WON'T": "WILL NOT",
    "WOULDN'T": "WOULD NOT",
    "CAN'T": "CAN NOT",
    "COULDN'T": "COULD NOT",
    "SHOULDN'T": "SHOULD NOT",
    "MUSTN'T": "MUST NOT",
    "SHAN'T": "SHALL NOT",
    "SHOULD'VE": "SHOULD HAVE",
    "WOULD'VE": "WOULD HAVE",
    "COULD'VE": "COULD HAVE",
    "MUST'VE": "MUST HAVE",
    "Y'ALL": "YOU ALL",
    "'CAUSE": "BECAUSE",
    "GOIN'": "GOING",
    "MA'AM": "MAM",
}


# --- Spelling merges and multi-word rules, applied to the word sequence (longest match first). A filler
# phrase maps to nothing. Keys and values are space-separated words.
PHRASES = {
    "UH HUH": "",
    "UM HUM": "",
    "MM HMM": "",
    "OK": "OKAY",
    "ALL RIGHT": "ALRIGHT",
    "AL RIGHT": "ALRIGHT",
    "CANNOT": "CAN NOT",
    "GONNA": "GOING TO",
    "WANNA": "WANT TO",
    "GOTTA": "GOT TO",
    "GIMME": "GIVE ME",
    "LEMME": "LET ME",
    "KINDA": "KIND OF",
    "MR": "MISTER",
    "MRS": "MISSUS",
    "MAAM": "MAM",
    "MADAM": "MAM",
    "E MAIL": "EMAIL",
    "ON LINE": "ONLINE",
    "LOG IN": "LOGIN",
    "PER CENT": "PERCENT",
    "ANY MORE": "ANYMORE",
    "ANY WAY": "ANYWAY",
    "MAY BE": "MAYBE",
    "GOOD BYE": "GOODBYE",
    "IN TO": "INTO",
    "A M": "AM",
    "P M": "PM",
    "U S": "US",
    "U K": "UK",
    "T V": "TV",
}


# --- Symbols spoken as words (applied before punctuation is removed).
SYMBOLS = {"%": " PERCENT ", "&": " AND ", "+": " PLUS ", "@": " AT "}


# --- Numbers written with digits become words the way the project's grammar writes them (num2words,
# hyphens and commas dropped); four-digit integers in YEAR_RANGE are read as years (NINETEEN NINETY FIVE).
YEAR_RANGE = (1100, 2099)


_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})


_TAGS = re.compile(r"<[^>]*>|\[[^\]]*\]")  # <NOISE>, [LAUGHTER], <UNK> ...


_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"  # 1,500 / 1500 / 3.5


_DOLLARS = re.compile(rf"\$\s?({_NUM})")


_ORDINAL = re.compile(r"\b(\d+)(?:ST|ND|RD|TH)\b")


_NUMBER = re.compile(_NUM)


_NOT_WORD = re.compile(r"[^A-Z0-9'\s]")


_PHRASE_TABLE = {tuple(k.split()): tuple(v.split()) for k, v in PHRASES.items()}


_MAX_PHRASE = max(len(k) for k in _PHRASE_TABLE)


def _spell(n: str, to: str = "cardinal", years: bool = True) -> str:
    """Digits -> words; a bare four-digit integer in YEAR_RANGE (no comma, no $) is read as a year."""
    value: int | float = float(n.replace(",", "")) if "." in n else int(n.replace(",", ""))
    if to == "cardinal" and years and n.isdigit() and len(n) == 4 and YEAR_RANGE[0] <= value <= YEAR_RANGE[1]:
        to = "year"
    return " " + re.sub(r"[-,]", " ", num2words(value, to=to)).upper() + " "


def normalize(text: str) -> str:
    """Normalise a transcript for scoring: see the module tables for every rule, applied in this order:
    unicode folding and upper case, tags (<NOISE>, [LAUGH]) removed, symbols and digits spelled out,
    contractions expanded, punctuation and apostrophes removed, fillers dropped, phrase merges."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).translate(_QUOTES).upper()
    text = _TAGS.sub(" ", text)
    text = _DOLLARS.sub(lambda m: _spell(m.group(1), years=False) + "DOLLARS ", text)
    for sym, word in SYMBOLS.items():
        text = text.replace(sym, word)
    text = _ORDINAL.sub(lambda m: _spell(m.group(1), to="ordinal"), text)
    text = _NUMBER.sub(lambda m: _spell(m.group(0)), text)
    words: list[str] = []
    for token in _NOT_WORD.sub(" ", text).split():
        expanded = CONTRACTIONS.get(token) or CONTRACTIONS.get(token.strip("'"))
        words.extend((expanded or token.replace("'", "")).split())
    words = [w for w in words if w and w not in FILLERS]
    out: list[str] = []
    i = 0
    while i < len(words):
        for n in range(min(_MAX_PHRASE, len(words) - i), 0, -1):
            repl = _PHRASE_TABLE.get(tuple(words[i : i + n]))
            if repl is not None:
                out.extend(repl)
                i += n
                break
        else:
            out.append(words[i])
            i += 1
    return " ".join(out)


def hallucination_guard(hyp: str) -> str:
    """The paper's guard: a hypothesis of more than HALLUCINATION_MIN_WORDS words whose words/unique-words
    ratio exceeds HALLUCINATION_RATIO (a decoding loop) is replaced by HALLUCINATION_TOKEN."""
    words = hyp.split()
    if len(words) > HALLUCINATION_MIN_WORDS and len(words) / len(set(words)) > HALLUCINATION_RATIO:
        return HALLUCINATION_TOKEN
    return hyp
