"""Bring-your-own data: read a user's corpus, validate every line loudly, write an mbasr manifest.

The paper adapts to target domains of its own (docs/paper.md "Data in the paper"); a user brings theirs in
one of four formats:

- "authors": the authors' JSONL, `{"key", "source": "<wav path>", "target": "TRANSCRIPT"}`;
- "nemo": NeMo-style JSONL manifests, `{"audio_filepath", "duration", "text"}` (key = the audio file's
  name, made unique);
- "folder": a folder of `<name>.wav` + `<name>.txt` pairs, searched recursively (key = the relative
  path without suffix);
- "text": text-only JSONL, `{"key", "target"}` or `{"text"}`: target text, spoken with the corpus's
  voices when imported with `--synthesize` (mbasr.data.domains), else text only (source stays "").

The format is detected from every line; a file whose lines have two formats' fields is refused (the readers
and the detection: `mbasr.data.readers`).

Relative audio paths are resolved against the JSONL file's folder. `import_data` checks every line
(missing/unreadable audio, empty or non-UTF-8 transcript, duplicate keys or audio, absurd durations,
bad JSON), converts audio that is not 16 kHz mono 16-bit WAV (`mbasr.data.validate`; the file is named by
domain, split, key and content, so no import replaces another's audio), and never drops a line silently:
each skipped, converted or corrected line is listed with its file:line. A failed import leaves nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mbasr.data.manifest import SPLITS, Utterance, total_hours, write_manifest
from mbasr.data.readers import (  # re-exported: callers import the formats' readers from here
    AUDIO_SUFFIXES,
    FORMATS,
    READERS,
    RawRecord,
    detect_format,
    read_authors,
    read_folder,
    read_nemo,
    read_text,
)
from mbasr.data.validate import (
    AudioInfo,
    DataError,
    LineProblem,
    Origin,
    duration_problem,
    probe,
    to_16k_mono,
)
from mbasr.io import atomic_write_bytes

DURATION_TOLERANCE = 0.5  # seconds: a NeMo `duration` further than this from the file's is replaced
USER_VOICE = "user"  # the `voice` of imported audio (synthesised audio names its TTS voice instead)
_DOMAIN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass
class ImportReport:
    path: Path
    fmt: str
    domain: str
    split: str
    n_records: int = 0
    utterances: list[Utterance] = field(default_factory=list)
    skipped: list[tuple[Origin, str]] = field(default_factory=list)
    converted: list[tuple[Origin, str]] = field(default_factory=list)
    corrected: list[tuple[Origin, str]] = field(default_factory=list)  # kept, with a value replaced
    manifest_path: Path | None = None

    @property
    def kept(self) -> int:
        return len(self.utterances)

    def __str__(self) -> str:
        return describe(self)


def describe(report: ImportReport, limit: int | None = None) -> str:
    """A readable report: counts, skips by reason, then every skipped, converted and corrected line
    (at most `limit` of each, the rest counted, when `limit` is given)."""
    out = report.manifest_path or "no manifest written"
    lines = [
        f"import {report.path} (fmt={report.fmt}, domain={report.domain}, split={report.split}) -> {out}",
        f"  {report.n_records} lines: {report.kept} kept ({len(report.converted)} converted, "
        f"{len(report.corrected)} corrected), {len(report.skipped)} skipped; "
        f"{total_hours(report.utterances):.2f} h ({sum(u.duration for u in report.utterances):.1f} s) of audio",
    ]
    if report.skipped:
        reasons = Counter(reason.split(":")[0] for _, reason in report.skipped)
        lines.append("  skipped by reason: " + ", ".join(f"{r} {n}" for r, n in sorted(reasons.items())))
    for title, items in (
        ("skipped", report.skipped),
        ("converted", report.converted),
        ("corrected", report.corrected),
    ):
        if items:
            lines.append(f"{title}:")
            shown = items if limit is None else items[:limit]
            lines += [f"  {origin}: {msg}" for origin, msg in shown]
            if len(shown) < len(items):
                lines.append(f"  ... and {len(items) - len(shown)} more")
    return "\n".join(lines)


def _file_name(key: str, data: bytes) -> str:
    """The file name of `key`'s converted audio: the key made safe, plus a hash of the audio itself, so
    one name never stands for two different recordings (and a re-import finds its own file again)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", key)
    return f"{safe}-{hashlib.sha256(data).hexdigest()[:12]}.wav"


def audio_dir(out_dir: str | Path, domain: str, split: str) -> Path:
    """Where an import's converted audio goes: one folder per domain and split, so imports of other
    domains or splits never touch it."""
    return Path(out_dir) / "audio" / domain / split


def _check(
    rec: RawRecord,
    keys: dict[str, Origin],
    sources: dict[str, Origin],
    report: ImportReport,
    text_ok: bool,
) -> AudioInfo | None:
    """Raise LineProblem when `rec` cannot be kept; else its audio's facts (None for text-only)."""
    if rec.problem:
        raise LineProblem(rec.problem)
    if not rec.key:
        raise LineProblem("empty key")
    if rec.key in keys:
        raise LineProblem(f"duplicate key: {rec.key!r} (first at {keys[rec.key]})")
    keys[rec.key] = rec.origin
    if not rec.target:
        raise LineProblem("empty transcript")
    if report.fmt == "text" or (text_ok and not rec.source):
        return None
    if not rec.source:
        raise LineProblem("missing audio: no audio path given (import with --synthesize to speak it)")
    resolved = str(Path(rec.source).resolve())
    if resolved in sources:
        raise LineProblem(f"duplicate audio: {rec.source} (first at {sources[resolved]})")
    sources[resolved] = rec.origin
    info = probe(rec.source)
    problem = duration_problem(info.duration)
    if problem:
        raise LineProblem(problem)
    if rec.duration is not None and abs(rec.duration - info.duration) > DURATION_TOLERANCE:
        msg = f"duration {rec.duration:.3f} s disagrees with the audio's {info.duration:.3f} s; using the audio's"
        report.corrected.append((rec.origin, msg))
    return info


def check_parameters(fmt: str, domain: str, split: str) -> None:
    if fmt != "auto" and fmt not in FORMATS:
        raise ValueError(f"fmt={fmt!r}: must be 'auto' or one of {FORMATS}")
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: must be one of {SPLITS}")
    if not _DOMAIN_RE.fullmatch(domain):
        raise ValueError(
            f"domain={domain!r}: must be letters, digits, '_', '.' or '-' (it names the manifest file)"
        )


def import_data(
    path: str | Path,
    fmt: str,
    domain: str,
    split: str,
    out_dir: str | Path,
    strict: bool = False,
    verbose: bool = True,
    synthesize: Callable[[list[Utterance]], list[Utterance]] | None = None,
) -> ImportReport:
    """Read `path` in format `fmt` ("auto" detects it), validate every line and write the kept ones to
    `out_dir/{domain}_{split}.jsonl`; converted audio goes to `audio_dir(out_dir, domain, split)`.

    Bad lines are skipped and listed (printed when `verbose`); with `strict=True` any bad line raises
    DataError carrying the whole report, and nothing stays written. `synthesize` (mbasr.data.domains)
    gives the kept lines without audio their speech before the manifest is written; with it, an authors'
    line with an empty `source` is text to speak rather than a line with its audio missing.
    """
    check_parameters(fmt, domain, split)
    path, out_dir = Path(path), Path(out_dir)
    fmt = detect_format(path) if fmt == "auto" else fmt
    records = READERS[fmt](path)
    report = ImportReport(path=path, fmt=fmt, domain=domain, split=split, n_records=len(records))
    keys: dict[str, Origin] = {}
    sources: dict[str, Origin] = {}
    planned: list[tuple[RawRecord, AudioInfo | None]] = []
    dest_dir = audio_dir(out_dir, domain, split)
    for rec in records:
        try:
            info = _check(rec, keys, sources, report, text_ok=synthesize is not None)
        except LineProblem as e:
            report.skipped.append((rec.origin, str(e)))
            continue
        if info is not None and info.needs_conversion:
            report.converted.append(
                (rec.origin, f"{info.describe()} -> 16 kHz mono PCM_16 WAV in {dest_dir}/")
            )
        planned.append((rec, info))
    if strict and report.skipped:
        raise DataError(f"strict import refused {path} (nothing written):\n{report}")
    written: list[Path] = []  # made by this import: removed again if it fails
    try:
        for rec, info in planned:
            source, duration = rec.source if info is not None else "", 0.0
            if info is not None:
                duration = info.duration
                if info.needs_conversion:
                    try:
                        data, duration = to_16k_mono(info)
                    except LineProblem as e:
                        report.converted = [c for c in report.converted if c[0] != rec.origin]
                        report.corrected = [c for c in report.corrected if c[0] != rec.origin]
                        report.skipped.append((rec.origin, str(e)))
                        continue
                    dest = dest_dir / _file_name(rec.key, data)
                    if not dest.exists():  # same name, same content: a re-import keeps the file
                        atomic_write_bytes(dest, data)
                        written.append(dest)
                    source = str(dest)
            voice = USER_VOICE if source else ""
            utt = Utterance(rec.key, source, rec.target, duration, domain=domain, voice=voice, split=split)
            report.utterances.append(utt)
        if report.kept + len(report.skipped) != report.n_records:
            raise RuntimeError(
                f"{path}: {report.n_records} lines but {report.kept} kept + {len(report.skipped)} skipped"
            )
        if strict and report.skipped:
            raise DataError(f"strict import refused {path} (nothing written):\n{report}")
        if not report.utterances:
            raise DataError(f"{path}: no usable line (fmt={fmt}):\n{report}")
        if synthesize is not None:
            report.utterances = synthesize(report.utterances)
        report.manifest_path = write_manifest(out_dir / f"{domain}_{split}.jsonl", report.utterances)
    except BaseException:
        for f in written:
            f.unlink(missing_ok=True)
        raise
    if verbose:
        print(report)
    return report


__all__ = [
    "AUDIO_SUFFIXES",
    "FORMATS",
    "READERS",
    "DataError",
    "ImportReport",
    "RawRecord",
    "audio_dir",
    "check_parameters",
    "describe",
    "detect_format",
    "import_data",
    "read_authors",
    "read_folder",
    "read_nemo",
    "read_text",
    "to_16k_mono",
]
