"""Line and audio checks for bring-your-own data (`mbasr.data.byod`).

Lines: each JSONL line must be UTF-8 and a JSON object with the fields its format needs; a problem is
raised as LineProblem with a message that the importer prefixes with the line's file:line (Origin).

The system takes 16 kHz mono waveforms (WavLM's input, docs/paper.md "System"), so every imported file is
checked with libsndfile (through soundfile) and, when it is anything other than a 16 kHz mono 16-bit
PCM WAV (another rate, stereo, 8/24/32-bit or float samples, FLAC, ...), converted to one: channels
averaged, resampled with a polyphase filter (scipy.signal.resample_poly), written as PCM_16.
"""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SAMPLE_RATE = 16_000  # Hz: WavLM's input rate
MIN_DURATION = 0.1  # seconds: shorter is a truncated or empty recording, not an utterance
MAX_DURATION = 60.0  # seconds: longer is a whole session, not one utterance
_TARGET = ("WAV", "PCM_16", SAMPLE_RATE, 1)  # (container, sample format, rate, channels) kept as is


class DataError(ValueError):
    """User data that cannot be imported; the message is the whole report, naming file:line."""


class LineProblem(ValueError):
    """A line that cannot be kept; the message says why (without the origin, which the report adds)."""


class AudioProblem(LineProblem):
    """A line whose audio file is missing, unreadable or empty."""


@dataclass(frozen=True, order=True)
class Origin:
    file: str
    line: int | None = None  # None: the whole file (folder mode)

    def __str__(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"


def decode_utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LineProblem(f"not UTF-8: byte 0x{raw[e.start]:02x} at offset {e.start}") from None


def clean_transcript(text: str) -> str:
    """Whitespace only: strip each line and join the lines with one space."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def str_field(row: dict, name: str, allow_int: bool = False) -> str:
    if name not in row:
        raise LineProblem(f"missing field {name!r}")
    value = row[name]
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise LineProblem(f"field {name!r} must be a string, got {type(value).__name__}")
    return value


def number_field(row: dict, name: str) -> float | None:
    """The number in `row[name]`, None when the field is absent or null."""
    value = row.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LineProblem(f"field {name!r} must be a number, got {type(value).__name__}")
    return float(value)


def audio_path(base: Path, src: str) -> str:
    """`src` resolved against `base` (the JSONL file's folder) when relative; "" when blank."""
    if not src.strip():
        return ""
    p = Path(src.strip()).expanduser()
    return str(p if p.is_absolute() else base / p)


def jsonl_rows(path: Path) -> Iterator[tuple[Origin, dict | None, str]]:
    """(origin, row, problem) for each non-blank line; row is None when problem says why."""
    for lineno, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        origin = Origin(str(path), lineno)
        if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        try:
            text = decode_utf8(raw)
        except LineProblem as e:
            yield origin, None, str(e)
            continue
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as e:
            yield origin, None, f"bad JSON: {e.msg} at column {e.colno}"
            continue
        if not isinstance(row, dict):
            yield origin, None, f"bad JSON: expected an object, got {type(row).__name__}"
            continue
        yield origin, row, ""


@dataclass(frozen=True)
class AudioInfo:
    path: Path
    samplerate: int
    channels: int
    frames: int
    format: str  # libsndfile container name: "WAV", "FLAC", ...
    subtype: str  # sample format: "PCM_16", "PCM_24", "FLOAT", ...

    @property
    def duration(self) -> float:
        return self.frames / self.samplerate

    @property
    def needs_conversion(self) -> bool:
        return (self.format, self.subtype, self.samplerate, self.channels) != _TARGET

    def describe(self) -> str:
        chans = "mono" if self.channels == 1 else f"{self.channels} channels"
        return f"{self.format}/{self.subtype}, {self.samplerate} Hz, {chans}"


def probe(path: str | Path) -> AudioInfo:
    """Header facts of an audio file; raises AudioProblem when it is missing, unreadable or empty."""
    path = Path(path)
    if not path.is_file():
        raise AudioProblem(f"missing audio: {path} not found")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioProblem(f"unreadable audio: {path} ({e})") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioProblem(f"unreadable audio: {path} holds no samples")
    return AudioInfo(path, info.samplerate, info.channels, info.frames, info.format, info.subtype)


def duration_problem(seconds: float) -> str:
    """'' when `seconds` is a plausible utterance length, else the reason it is not."""
    if seconds < MIN_DURATION or seconds > MAX_DURATION:
        return f"absurd duration: {seconds:.3f} s (allowed {MIN_DURATION}-{MAX_DURATION} s)"
    return ""


def to_16k_mono(info: AudioInfo) -> tuple[bytes, float]:
    """`info.path` as the bytes of a 16 kHz mono PCM_16 WAV file, and its duration. Bytes, not a file: the
    importer names the file by its content, so a name never holds two different recordings."""
    try:
        data, sr = sf.read(str(info.path), dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioProblem(f"unreadable audio: {info.path} ({e})") from None
    if data.shape[0] == 0:
        raise AudioProblem(f"unreadable audio: {info.path} holds no samples")
    mono = data.mean(axis=1)
    if sr != SAMPLE_RATE:
        g = gcd(int(sr), SAMPLE_RATE)
        mono = resample_poly(mono, SAMPLE_RATE // g, int(sr) // g)
    mono = np.clip(mono, -1.0, 1.0)
    buf = io.BytesIO()
    sf.write(buf, mono, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    return buf.getvalue(), len(mono) / SAMPLE_RATE
