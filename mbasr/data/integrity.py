"""What a built corpus holds, recorded in its COMPLETE marker and checked each time the corpus is reused.

The marker lists every file the corpus consists of: its folder's own (manifests, general text, stats,
gap table, parameters) and every WAV its manifests name in the audio cache, each with its size and
SHA-256 (a manifest also with its number of utterances, a WAV with its duration and the key of an
utterance that uses it). `check` re-hashes them all, one after the other (threads measured slower on 2
shared cores). Measured here: 36-90 ms for the micro corpus's 310 files (292 WAVs, 37 MB); 1.1-1.3 s for
4,000 WAVs of ~128 KB (510 MB) from the page cache, 2.4 s from disk; extrapolated, 6-7 s for the
default corpus's 21,700 WAVs from the page cache. A mismatch is named (file, what differs); `prepare_corpus` then discards what differs and rebuilds.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from mbasr.data.manifest import Utterance
from mbasr.io import atomic_write_json

MARKER = "COMPLETE"
RECORD_VERSION = 1


@dataclass(frozen=True)
class Mismatch:
    path: Path
    what: str
    audio: bool = False  # a WAV of the audio cache (discarded, then made again)

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


def _digest(path: Path) -> tuple[int, str]:
    with open(path, "rb") as f:
        return os.fstat(f.fileno()).st_size, hashlib.file_digest(f, "sha256").hexdigest()


def _digests(paths: list[Path]) -> list[tuple[int, str] | None]:
    """(size, SHA-256) of each path, None where it cannot be read."""

    def one(p: Path) -> tuple[int, str] | None:
        try:
            return _digest(p)
        except OSError:
            return None

    return [one(p) for p in paths]


def write_marker(root: Path, manifests: dict[str, list[Utterance]]) -> None:
    """Record every file of the corpus at `root` (manifests by file name, with their utterances) and
    mark it complete. Written last: a corpus without it is not complete."""
    # (not a temporary file an interrupted atomic write left behind)
    own = sorted(p for p in root.iterdir() if p.is_file() and p.name != MARKER and not p.name.startswith("."))
    audio: dict[str, dict] = {}
    for utts in manifests.values():
        for u in utts:
            if u.source:
                rel = os.path.relpath(u.source, root)
                audio.setdefault(rel, {"seconds": u.duration, "key": u.key})
    counts = {name: len(utts) for name, utts in manifests.items()}
    files = {}
    for p, d in zip(own, _digests(own), strict=True):
        if d is None:
            raise OSError(f"{p}: cannot be read back after the build")
        files[p.name] = {"size": d[0], "sha256": d[1]} | (
            {"utterances": counts[p.name]} if p.name in counts else {}
        )
    rels = sorted(audio)
    for rel, d in zip(rels, _digests([root / r for r in rels]), strict=True):
        if d is None:
            raise OSError(f"{root / rel}: cannot be read back after the build")
        audio[rel] |= {"size": d[0], "sha256": d[1]}
    atomic_write_json(root / MARKER, {"version": RECORD_VERSION, "files": files, "audio": audio})


def _lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def _seconds(path: Path) -> str:
    try:
        return f"{sf.info(str(path)).duration:.2f} s"
    except RuntimeError:
        return "unreadable audio"


def check(root: Path) -> list[Mismatch]:
    """Every way the corpus at `root` differs from its record (empty when it is as built). Call only
    when the marker exists."""
    marker = root / MARKER
    try:
        rec = json.loads(marker.read_text(encoding="utf-8") or "{}")
    except json.JSONDecodeError:
        rec = {}
    if rec.get("version") != RECORD_VERSION:
        return [Mismatch(marker, "no record of the built files (an older or damaged marker)")]
    want = [(root / name, r, False) for name, r in sorted(rec["files"].items())]
    want += [(root / rel, r, True) for rel, r in sorted(rec["audio"].items())]
    out = []
    for (path, r, is_audio), got in zip(want, _digests([p for p, _, _ in want]), strict=True):
        shown = Path(os.path.normpath(path))
        if got is None:
            what = "missing" if not path.exists() else "unreadable"
            out.append(Mismatch(shown, what + (f" (audio of {r['key']})" if is_audio else ""), is_audio))
            continue
        size, digest = got
        if (size, digest) == (r["size"], r["sha256"]):
            continue
        what = f"{size:,} bytes, {r['size']:,} when built" if size != r["size"] else "same size"
        what += f"; SHA-256 {digest[:12]}, {r['sha256'][:12]} when built"
        if is_audio:
            what += f"; {_seconds(path)} of audio, {r['seconds']:.2f} s when built (audio of {r['key']})"
        elif "utterances" in r:
            what = f"{_lines(path)} utterances, {r['utterances']} when built; " + what
        out.append(Mismatch(shown, what, is_audio))
    return out


def discard(root: Path, mismatches: list[Mismatch]) -> None:
    """Remove the marker and every cached WAV that differs from its record: the cache is keyed by
    content, so a damaged file under its key would otherwise be taken as made."""
    (root / MARKER).unlink(missing_ok=True)
    for m in mismatches:
        if m.audio:
            m.path.unlink(missing_ok=True)


def recorded_sizes(work_dir: Path) -> dict[str, int]:
    """The size every built corpus of `work_dir` recorded for each cache file it uses, by absolute path
    (a file two records disagree on is left out): what a new build checks a cache hit against."""
    sizes: dict[str, int] = {}
    disputed: set[str] = set()
    for marker in sorted(Path(work_dir).glob(f"corpus/*/{MARKER}")):
        try:
            rec = json.loads(marker.read_text(encoding="utf-8") or "{}")
        except (OSError, json.JSONDecodeError):
            continue
        if rec.get("version") != RECORD_VERSION:
            continue
        for rel, r in rec["audio"].items():
            path = os.path.abspath(marker.parent / rel)
            if sizes.setdefault(path, r["size"]) != r["size"]:
                disputed.add(path)
    return {p: n for p, n in sizes.items() if p not in disputed}
