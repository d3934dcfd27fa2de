"""Utterance manifests: one JSONL line per utterance, in the authors' format
`{"key", "source", "target"}` (source = path to a 16 kHz mono WAV, target = transcript), extended with
`duration` (seconds), `domain`, `voice` and `split`.

Audio paths are written relative to the manifest's folder, so a work folder can be moved or shared;
`read_manifest` resolves them to absolute paths.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from mbasr.io import atomic_write_text

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Utterance:
    key: str
    source: str  # path to the WAV ("" for a text-only utterance)
    target: str  # transcript
    duration: float = 0.0  # seconds (0 for text-only)
    domain: str = ""
    voice: str = ""
    split: str = ""

    @property
    def has_audio(self) -> bool:
        return bool(self.source)


class ManifestError(ValueError):
    """A manifest that cannot be read; the message names the file and line."""


def read_manifest(path: str | Path) -> list[Utterance]:
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"{path}: manifest not found")
    utts = []
    base = path.parent.resolve()
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ManifestError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
        missing = {"key", "target"} - row.keys()
        if missing:
            raise ManifestError(f"{path}:{lineno}: missing field(s) {sorted(missing)}")
        src = row.get("source", "") or ""
        if src and not Path(src).is_absolute():
            src = str((base / src).resolve())
        utts.append(
            Utterance(
                key=str(row["key"]),
                source=src,
                target=str(row["target"]),
                duration=float(row.get("duration", 0.0) or 0.0),
                domain=str(row.get("domain", "")),
                voice=str(row.get("voice", "")),
                split=str(row.get("split", "")),
            )
        )
    return utts


def write_manifest(path: str | Path, utts: Iterable[Utterance]) -> Path:
    """Write atomically; audio paths are stored relative to the manifest's folder."""
    path = Path(path)
    base = path.parent.resolve()
    lines = []
    for u in utts:
        row = asdict(u)
        if u.source:
            row["source"] = os.path.relpath(Path(u.source).resolve(), base)
        lines.append(json.dumps(row, ensure_ascii=False))
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
    return path


def total_hours(utts: Iterable[Utterance]) -> float:
    return sum(u.duration for u in utts) / 3600.0


def subset(utts: list[Utterance], p: float, seed: int, verbose: bool = False) -> list[Utterance]:
    """The paper's audio share p: a seeded random subset of round(p * N) utterances.

    Subsets are nested: for one seed, the p=0.1 subset lies inside the p=0.2 one, because both are
    prefixes of the same seeded permutation (taken over the keys in sorted order, so the input order
    does not matter). Returned in the input order.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p={p}: the audio share p must lie in [0, 1]")
    keys = sorted(u.key for u in utts)
    random.Random(f"subset-{seed}").shuffle(keys)
    chosen = set(keys[: round(p * len(keys))])
    out = [u for u in utts if u.key in chosen]
    if verbose:
        print(f"audio share p={p}: {len(out)} of {len(utts)} utterances, {total_hours(out):.2f} h")
    return out
