"""The corpus's audio cache: one WAV per utterance under `work_dir/audio/`, named by a hash of everything
that shapes its samples (text, voice, speed and pitch jitter, acoustic condition, synthesis and
condition versions), made by worker processes (`mbasr.data.workers`).

Nothing about where the work folder lies enters the samples: the condition's noise is drawn from a seed
made of the same content hash, so one corpus built in two folders is the same audio, byte for byte.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from mbasr.data import acoustics, tts
from mbasr.data.workers import worker_pool
from mbasr.io import stable_hash
from mbasr.progress import bar as progress_bar


@dataclass(frozen=True)
class AudioJob:
    key: str
    text: str
    voice: str
    speed: float
    pitch: float
    condition: str
    path: str
    noise_seed: int  # the condition's randomness, from the content hash alone
    size: int | None = None  # the file's size in bytes as a built corpus recorded it, when one did


def plan_audio(
    domain: str,
    split: str,
    sentences: list[str],
    voices: Sequence[str],
    condition: str,
    seed: int,
    audio_dir: Path,
) -> list[AudioJob]:
    """One job per sentence: voices in turn, then drawn; jitter drawn; the cache path from the content."""
    rng = random.Random(f"audio-{domain}-{split}-{seed}")
    synth = tts.SYNTHESIS_VERSION
    jobs = []
    for i, text in enumerate(sentences):
        voice = voices[i % len(voices)] if i < len(voices) else rng.choice(list(voices))
        speed, pitch = tts.jitter(rng)
        key = [text, voice, round(speed, 4), round(pitch, 4), condition, synth]
        if acoustics.CONDITION_VERSIONS[condition]:  # (absent from the key of a condition never changed)
            key.append(acoustics.CONDITION_VERSIONS[condition])
        h = stable_hash(key, n=20)
        name = f"{h}.wav"
        # the seed is the one earlier versions drew from the file's name: the cached audio stays valid
        noise_seed = int(stable_hash(["condition", name], n=8), 16)
        path = audio_dir / h[:2] / name
        jobs.append(
            AudioJob(f"{domain}-{split}-{i:05d}", text, voice, speed, pitch, condition, str(path), noise_seed)
        )
    return jobs


def synth_job(job: AudioJob) -> tuple[str, float]:
    """Synthesise one utterance into its cache file (if not there yet); returns (key, duration).

    Cache files are written without a per-file fsync (`synthesize_all` syncs once at the end); one left
    unreadable by a crash before that sync is made again, and so is one whose size is not the one a
    built corpus recorded for it (cut short or damaged since)."""
    path = Path(job.path)
    if _cached(job):
        try:
            info = sf.info(str(path))
            if info.frames > 0:
                return job.key, info.duration
        except RuntimeError:  # soundfile's error for an unreadable file
            pass
    wave = tts.synthesize(job.text, job.voice, speed=job.speed, pitch=job.pitch)
    wave = acoustics.apply_condition(wave, job.condition, np.random.default_rng(job.noise_seed))
    tts.write_wav(path, wave, durable=False)
    return job.key, len(wave) / 16000.0


def _cached(job: AudioJob) -> bool:
    try:
        size = os.stat(job.path).st_size
    except FileNotFoundError:
        return False
    return job.size is None or size == job.size


def with_recorded_sizes(jobs: list[AudioJob], recorded: dict[str, int]) -> list[AudioJob]:
    """`jobs` with the sizes built corpora recorded for their cache files (`integrity.recorded_sizes`,
    by absolute path): a cached file of another size is made again."""
    return [replace(j, size=recorded.get(os.path.abspath(j.path))) for j in jobs]


def to_make(jobs: list[AudioJob]) -> int:
    """How many of `jobs` have no usable cache file."""
    return sum(not _cached(j) for j in jobs)


def synthesize_all(
    jobs: list[AudioJob], processes: int, desc: str, progress: bool = True, chunksize: int = 16
) -> dict[str, float]:
    """Every job's duration by key, made by `processes` workers that end with this call (also when it is
    interrupted); the new cache files are synced to disk before it returns."""
    durations: dict[str, float] = {}
    if not jobs:
        return durations
    new = to_make(jobs)
    with worker_pool(min(processes, len(jobs))) as ex:
        it = ex.map(synth_job, jobs, chunksize=chunksize)
        for key, dur in progress_bar(it, total=len(jobs), desc=desc, disable=not progress, mininterval=5):
            durations[key] = dur
    if new:
        os.sync()  # the cache files were written without fsync: durable before any manifest names them
    return durations
