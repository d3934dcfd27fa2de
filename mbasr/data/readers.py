"""Readers of the four bring-your-own formats (`mbasr.data.byod`): each turns a file or folder into
raw records, one per line or file pair, with the problem of any line it could not parse; `detect_format`
tells the format from every line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from mbasr.data.validate import (
    DataError,
    LineProblem,
    Origin,
    audio_path,
    clean_transcript,
    decode_utf8,
    jsonl_rows,
    number_field,
    str_field,
)

FORMATS = ("authors", "nemo", "folder", "text")
AUDIO_SUFFIXES = (".wav", ".flac")  # folder mode: audio files paired with a .txt of the same stem


@dataclass(frozen=True)
class RawRecord:
    """One line (or file pair) as read, before validation."""

    origin: Origin
    key: str = ""
    source: str = ""  # absolute audio path, "" for text-only
    target: str = ""
    duration: float | None = None  # the duration the input claims (NeMo), None when it has none
    problem: str = ""  # why the line could not be parsed ("" when it could)


def _read_jsonl(path: str | Path, parse: Callable[[dict, Origin, Path], RawRecord]) -> list[RawRecord]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (parameter path)")
    base = path.parent.resolve()
    out = []
    for origin, row, problem in jsonl_rows(path):
        if row is None:
            out.append(RawRecord(origin, problem=problem))
            continue
        try:
            out.append(parse(row, origin, base))
        except LineProblem as e:
            out.append(RawRecord(origin, problem=str(e)))
    return out


def read_authors(path: str | Path) -> list[RawRecord]:
    """The authors' JSONL: {"key", "source", "target"} (extra fields are ignored, `duration` is checked)."""

    def parse(row: dict, origin: Origin, base: Path) -> RawRecord:
        key = str_field(row, "key", allow_int=True)
        source = audio_path(base, str_field(row, "source"))
        return RawRecord(
            origin, key, source, clean_transcript(str_field(row, "target")), number_field(row, "duration")
        )

    return _read_jsonl(path, parse)


def read_nemo(path: str | Path) -> list[RawRecord]:
    """NeMo JSONL {"audio_filepath", "duration", "text"}; key = audio file stem, suffixed -2, -3... if taken."""

    def parse(row: dict, origin: Origin, base: Path) -> RawRecord:
        source = audio_path(base, str_field(row, "audio_filepath"))
        if not source:
            raise LineProblem("missing audio: empty 'audio_filepath'")
        return RawRecord(
            origin, "", source, clean_transcript(str_field(row, "text")), number_field(row, "duration")
        )

    records, used = [], set()
    for rec in _read_jsonl(path, parse):
        if not rec.problem:
            stem = key = Path(rec.source).stem
            n = 2
            while key in used:
                key, n = f"{stem}-{n}", n + 1
            used.add(key)
            rec = replace(rec, key=key)
        records.append(rec)
    return records


def read_text(path: str | Path) -> list[RawRecord]:
    """Text-only JSONL: {"key", "target"} or {"text"} (key then `<file stem>-<line>`); source stays ""."""

    def parse(row: dict, origin: Origin, base: Path) -> RawRecord:
        if "target" in row or "text" not in row:
            target = str_field(row, "target")
        else:
            target = str_field(row, "text")
        key = (
            str_field(row, "key", allow_int=True)
            if "key" in row
            else f"{Path(origin.file).stem}-{origin.line}"
        )
        return RawRecord(origin, key, "", clean_transcript(target))

    return _read_jsonl(path, parse)


def read_folder(path: str | Path) -> list[RawRecord]:
    """`<name>.wav` (or .flac) + `<name>.txt` pairs anywhere under `path`; an unpaired file is a problem."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found (parameter path, fmt='folder')")
    audio: dict[Path, list[Path]] = {}
    texts: dict[Path, Path] = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES:
            audio.setdefault(p.with_suffix(""), []).append(p)
        elif p.is_file() and p.suffix == ".txt":
            texts[p.with_suffix("")] = p
    records = []
    for stem in sorted(audio.keys() | texts.keys()):
        key = stem.relative_to(root).as_posix()
        wavs, txt = audio.get(stem, []), texts.get(stem)
        if txt is None:
            records.append(
                RawRecord(Origin(str(wavs[0])), key, problem="audio without transcript: no .txt beside it")
            )
            continue
        origin = Origin(str(txt), 1)
        if not wavs:
            records.append(
                RawRecord(origin, key, problem=f"transcript without audio: no {stem.name}.wav beside it")
            )
        elif len(wavs) > 1:
            names = ", ".join(w.name for w in wavs)
            records.append(RawRecord(origin, key, problem=f"several audio files for one transcript: {names}"))
        else:
            try:
                target = clean_transcript(decode_utf8(txt.read_bytes()))
                records.append(RawRecord(origin, key, str(wavs[0].resolve()), target))
            except LineProblem as e:
                records.append(RawRecord(origin, key, problem=str(e)))
    return records


READERS: dict[str, Callable[[str | Path], list[RawRecord]]] = {
    "authors": read_authors,
    "nemo": read_nemo,
    "folder": read_folder,
    "text": read_text,
}


def _row_format(row: dict) -> str:
    """The format one JSONL row belongs to; "" for {"source": "", "target"}: an authors' line without
    audio and the text-only lines of an mbasr manifest look alike, so the other lines decide."""
    if "audio_filepath" in row:
        return "nemo"
    if "source" in row:
        return "authors" if row["source"] else ""
    if "target" in row or "text" in row:
        return "text"
    return "?"


def detect_format(path: str | Path) -> str:
    """A folder is "folder"; a JSONL file is told by the fields of all its readable lines. Lines of two
    formats (e.g. some with a `source`, some without) are refused: reading the file as either would drop
    the other lines' audio or text."""
    path = Path(path)
    if path.is_dir():
        return "folder"
    if not path.is_file():
        raise DataError(f"{path}: not found (parameter path)")
    first: dict[str, Origin] = {}  # format -> its first line
    for origin, row, _ in jsonl_rows(path):
        if row is None:
            continue
        kind = _row_format(row)
        if kind == "?":
            raise DataError(
                f"{origin}: cannot detect the format from fields {sorted(row)}; pass fmt= one of {FORMATS}"
            )
        first.setdefault(kind, origin)
    if not first:
        raise DataError(
            f"{path}: no readable JSON line to detect the format from; pass fmt= one of {FORMATS}"
        )
    kinds = sorted(k for k in first if k)
    if len(kinds) > 1 or (kinds == ["nemo"] and "" in first):
        where = "; ".join(f"{k or 'authors without audio'} from {first[k]}" for k in sorted(first))
        raise DataError(
            f"{path}: lines of several formats ({where}); split the file by format, or pass fmt= to "
            "read every line as one format (lines without its fields are then skipped and listed)"
        )
    return kinds[0] if kinds else "text"
