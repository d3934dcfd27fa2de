"""Offline speech synthesis with many voices: the stand-in for the paper's recorded speech ("Data").

The paper's corpora (DefinedAI call-centre speech, SlideSpeech lectures) are real recordings of many
speakers. Offline we synthesise instead, with Debian's rule-based engines, all run as subprocesses:

- espeak-ng (formant synthesis; accents come from its language variants, voice quality from its
  `+variant` files, e.g. `en-us+f3`). Note: `en-gb+f2` silently ignores the variant, so British voices
  are spelled `en+...`.
- flite (CMU; `kal16` is a diphone voice, `slt`, `rms`, `awb` are statistical voices).
- festival (`kal_diphone`, through `text2wave`). It is the same recorded speaker as flite's `kal16`,
  so both carry `speaker="kal"` and always fall on the same side of the train/test split.

piper-tts (neural, far more natural) is deliberately not used: its voices are downloads, and the corpus
must be buildable with no network beyond the Debian and PyPI mirrors.

Every voice is listed in `VOICES`. `TEST_VOICES` are held out of every training set, `TRAIN_VOICES` are
the rest; no `Voice.speaker` falls on both sides (tests/test_tts.py checks it). Speed and pitch
jitter go through the engine's own options where it has them (espeak-ng `-s`/`-p`, flite
`duration_stretch`, festival `Duration_Stretch`); flite and festival have no pitch option, so their
output is replayed faster or slower (a resampling: pitch and formants move together). Output is float32,
16 kHz mono, with leading and trailing silence set to `SILENCE_PAD_S` and peak-normalised to
`PEAK_LEVEL`; the same arguments always give the same samples.

Speed: starting an engine program costs more than the sentence, so each process that synthesises keeps
one engine server (`mbasr.tools.tts_server`: the libraries loaded once, one forked process per sentence,
the programs' samples exactly; `MBASR_TTS_SERVER=0` forces the programs). festival always runs as a
program.
"""

from __future__ import annotations

import functools
import io
import math
import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import firwin, resample_poly

from mbasr.io import atomic_write_bytes

SAMPLE_RATE = 16000
SILENCE_PAD_S = 0.15  # leading/trailing silence kept (or zero-padded to) around the speech
SILENCE_DB = -40.0  # a 10 ms frame counts as speech when within this many dB of the loudest frame
PEAK_LEVEL = 0.9  # output peak after normalisation (engines differ in level by >10 dB)
SPEED_RANGE = (0.85, 1.15)  # corpus jitter: speaking-rate factor, uniform
PITCH_RANGE = (0.9, 1.1)  # corpus jitter: F0 factor, uniform
ESPEAK_WPM = 175  # espeak-ng's default rate, scaled by `speed`
ESPEAK_PITCH_PER_OCTAVE = 75.0  # espeak-ng -p units per octave of F0 (measured: -p 25/50/75: 81/102/131 Hz)
TIMEOUT_S = 60
# Keys the corpus's audio cache (with the text, voice, jitter and acoustic condition): set a new value
# whenever a change here alters the samples, so cached audio is made again (a change in acoustics.py:
# bump that condition's acoustics.CONDITION_VERSIONS entry instead, so only its audio is made again).
SYNTHESIS_VERSION = "9d90b5a48f0b5d98"

# engine -> (binaries it needs, Debian packages that provide them)
ENGINES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "espeak-ng": (("espeak-ng",), ("espeak-ng",)),
    "flite": (("flite",), ("flite",)),
    "festival": (("text2wave",), ("festival", "festvox-kallpc16k")),
}


@dataclass(frozen=True)
class Voice:
    name: str  # registry key, used in manifests
    engine: str  # a key of ENGINES
    engine_voice: str  # the engine's own voice argument (espeak-ng -v, flite -voice, festival voice_*)
    speaker: str  # identity: voices sharing a speaker are never split between train and test
    sex: str  # "F" or "M" (as the engine's voice sounds)
    accent: str
    note: str = ""


_VOICE_LIST = (
    Voice("espeak_us_m", "espeak-ng", "en-us", "espeak_us_m", "M", "US", "espeak-ng default US voice"),
    Voice("espeak_us_f3", "espeak-ng", "en-us+f3", "espeak_us_f3", "F", "US", "female variant 3, breathy"),
    Voice("espeak_gb_m3", "espeak-ng", "en+m3", "espeak_gb_m3", "M", "British", "male variant 3"),
    Voice("espeak_gb_f2", "espeak-ng", "en+f2", "espeak_gb_f2", "F", "British", "female variant 2"),
    Voice(
        "espeak_scot_m7",
        "espeak-ng",
        "en-gb-scotland+m7",
        "espeak_scot_m7",
        "M",
        "Scottish",
        "male variant 7, darker timbre",
    ),
    Voice(
        "espeak_rp_f4", "espeak-ng", "en-gb-x-rp+f4", "espeak_rp_f4", "F", "British RP", "female variant 4"
    ),
    Voice(
        "espeak_us_klatt2",
        "espeak-ng",
        "en-us+klatt2",
        "espeak_us_klatt2",
        "M",
        "US",
        "Klatt formant synthesiser instead of espeak's own",
    ),
    Voice("espeak_car_m2", "espeak-ng", "en-029+m2", "espeak_car_m2", "M", "Caribbean", "male variant 2"),
    Voice(
        "espeak_nyc_f5",
        "espeak-ng",
        "en-us-nyc+f5",
        "espeak_nyc_f5",
        "F",
        "US, New York City",
        "female variant 5, breathy",
    ),
    Voice(
        "espeak_lanc_m4",
        "espeak-ng",
        "en-gb-x-gbclan+m4",
        "espeak_lanc_m4",
        "M",
        "British, Lancashire",
        "male variant 4, low pitch",
    ),
    Voice("flite_kal16", "flite", "kal16", "kal", "M", "US", "CMU diphone voice, 16 kHz"),
    Voice("flite_slt", "flite", "slt", "slt", "F", "US", "CMU ARCTIC slt, statistical (clustergen)"),
    Voice("flite_rms", "flite", "rms", "rms", "M", "US", "CMU ARCTIC rms, statistical (clustergen)"),
    Voice("flite_awb", "flite", "awb", "awb", "M", "Scottish", "CMU ARCTIC awb, statistical (clustergen)"),
    Voice(
        "festival_kal",
        "festival",
        "kal_diphone",
        "kal",
        "M",
        "US",
        "festival diphone voice; same speaker as flite_kal16",
    ),
)
VOICES: dict[str, Voice] = {v.name: v for v in _VOICE_LIST}

# Held out of every training set: one unseen espeak-ng accent per sex and one unseen flite speaker.
TEST_VOICES: tuple[str, ...] = ("espeak_nyc_f5", "espeak_lanc_m4", "flite_rms")
# festival is registered (a third engine for your own corpora) but not in the default training set: at
# ~0.8 s per utterance, mostly start-up, it alone would take about half the default corpus's build time.
TRAIN_VOICES: tuple[str, ...] = tuple(
    n for n in VOICES if n not in TEST_VOICES and VOICES[n].engine != "festival"
)


def voice(name: str) -> Voice:
    """The registered voice `name`; an unknown name fails listing the known ones."""
    return _lookup(name)


def _lookup(name: str) -> Voice:
    if name not in VOICES:
        raise KeyError(f"mbasr/data/tts.py: unknown voice {name!r}; known voices: {', '.join(VOICES)}")
    return VOICES[name]


def check_engines() -> dict[str, bool]:
    """Whether each engine (with every binary it needs) is on PATH."""
    return {eng: all(shutil.which(b) for b in bins) for eng, (bins, _) in ENGINES.items()}


def require_engines(voices: Iterable[str] = tuple(VOICES)) -> None:
    """Fail, naming the Debian packages to install, when an engine that `voices` use is missing."""
    voices = sorted(voices)
    have = check_engines()
    engines = sorted({_lookup(v).engine for v in voices})
    missing = [e for e in engines if not have[e]]
    if missing:
        pkgs = sorted({p for e in missing for p in ENGINES[e][1]})
        raise RuntimeError(
            f"mbasr/data/tts.py: speech engine(s) {', '.join(missing)} not found on PATH (voices={voices}); "
            f"install them with `sudo apt-get install {' '.join(pkgs)}`"
        )


_VERSION_COMMANDS = {  # binary -> the command that prints its version
    "espeak-ng": ["espeak-ng", "--version"],
    "flite": ["flite", "--version"],
    "text2wave": ["festival", "--version"],
}


def engine_versions() -> dict[str, str]:
    """Each needed binary's version line, "missing" when absent: worth recording with a built corpus,
    since another version of an engine may speak the same text differently."""
    out = {}
    for b, cmd in _VERSION_COMMANDS.items():
        if not shutil.which(cmd[0]):
            out[b] = "missing"
            continue
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
        lines = [ln.strip() for ln in (res.stdout + res.stderr).splitlines()]
        out[b] = next(
            (ln for ln in lines if "copyright" not in ln.lower() and any(c.isdigit() for c in ln)), "?"
        )
    return out


def jitter(rng: np.random.Generator | random.Random) -> tuple[float, float]:
    """Draw the corpus's default (speed, pitch) jitter: uniform in SPEED_RANGE, then in PITCH_RANGE."""
    if not isinstance(rng, (np.random.Generator, random.Random)):
        raise TypeError(
            "mbasr/data/tts.py: jitter(rng=...) needs a numpy Generator or random.Random, "
            f"got {type(rng).__name__}"
        )
    return float(rng.uniform(*SPEED_RANGE)), float(rng.uniform(*PITCH_RANGE))


def _run(cmd: list[str]) -> None:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except FileNotFoundError as e:
        raise RuntimeError(f"mbasr/data/tts.py: {cmd[0]} not found; see require_engines()") from e
    if res.returncode != 0:
        raise RuntimeError(
            f"mbasr/data/tts.py: {' '.join(cmd)} failed (rc={res.returncode}): {res.stderr.strip()}"
        )


def _engine_args(v: Voice, speed: float, pitch: float) -> dict[str, str]:
    """The engine's own settings for `speed` and `pitch`, as the strings its program takes."""
    if v.engine == "espeak-ng":
        p = 50.0 + ESPEAK_PITCH_PER_OCTAVE * math.log2(pitch)
        return {"rate": str(round(ESPEAK_WPM * speed)), "pitch": str(int(np.clip(round(p), 0, 99)))}
    if v.engine in ("flite", "festival"):
        return {"stretch": f"{1.0 / speed:.6f}"}
    raise ValueError(
        f"mbasr/data/tts.py: voice {v.name!r} has unknown engine {v.engine!r}; known: {list(ENGINES)}"
    )


def _engine_command(v: Voice, text_file: Path, out: Path, speed: float, pitch: float) -> list[str]:
    a = _engine_args(v, speed, pitch)
    if v.engine == "espeak-ng":
        return [
            "espeak-ng",
            "-v",
            v.engine_voice,
            "-s",
            a["rate"],
            "-p",
            a["pitch"],
            "-w",
            str(out),
            "-f",
            str(text_file),
        ]
    if v.engine == "flite":
        return [
            "flite",
            "-voice",
            v.engine_voice,
            "--setf",
            f"duration_stretch={a['stretch']}",
            "-f",
            str(text_file),
            "-o",
            str(out),
        ]
    return [
        "text2wave",
        "-o",
        str(out),
        "-eval",
        f"(voice_{v.engine_voice})",
        "-eval",
        f"(Parameter.set 'Duration_Stretch {a['stretch']})",
        str(text_file),
    ]


def _speak(v: Voice, text: str, speed: float, pitch: float) -> tuple[np.ndarray, int]:
    """The engine's samples (float32, 2-D) for `text` and their sample rate, from the engine server when
    it serves the engine, else from the engine's program."""
    server = None
    if v.engine != "festival":
        from mbasr.tools.tts_server import server as engine_server  # it imports this module

        server = engine_server()
    if server is not None and v.engine in server.engines:
        return sf.read(io.BytesIO(server.speak(v, text, speed, pitch)), dtype="float32", always_2d=True)
    with tempfile.TemporaryDirectory(prefix="mbasr_tts_") as tmp:
        text_file, out = Path(tmp) / "text.txt", Path(tmp) / "engine.wav"
        text_file.write_text(text + "\n", encoding="utf-8")
        _run(_engine_command(v, text_file, out, speed, pitch))
        return sf.read(out, dtype="float32", always_2d=True)


@functools.lru_cache(maxsize=64)
def _resample_taps(up: int, down: int) -> np.ndarray:
    """The low-pass filter resample_poly designs for up/down (its default Kaiser window), in float32."""
    max_rate = max(up, down)
    return firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0)).astype(np.float32)


def _resample(x: np.ndarray, sr: int) -> np.ndarray:
    """float32 `x` from `sr` to SAMPLE_RATE: resample_poly with its filter designed once per ratio
    (the same samples as resample_poly's own design, without redesigning it for every sentence)."""
    g = math.gcd(sr, SAMPLE_RATE)
    up, down = SAMPLE_RATE // g, sr // g
    return resample_poly(x, up, down, window=_resample_taps(up, down)).astype(np.float32)


def trim_silence(x: np.ndarray, sr: int = SAMPLE_RATE, pad_s: float = SILENCE_PAD_S) -> np.ndarray:
    """Cut leading/trailing silence to `pad_s` seconds (zero-padding where the engine left less)."""
    hop = sr // 100
    n = len(x) // hop
    if n == 0:
        raise ValueError("mbasr/data/tts.py: trim_silence got under 10 ms of audio")
    rms = np.sqrt(np.mean(x[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1)) + 1e-12
    active = np.flatnonzero(20 * np.log10(rms / rms.max()) > SILENCE_DB)
    pad = int(round(pad_s * sr))
    start, end = active[0] * hop, min(len(x), (active[-1] + 1) * hop)
    lo, hi = max(0, start - pad), min(len(x), end + pad)
    return np.concatenate(
        [np.zeros(pad - (start - lo), x.dtype), x[lo:hi], np.zeros(pad - (hi - end), x.dtype)]
    )


_ENGINES_FOUND: set[str] = set()


def synthesize(text: str, voice: str, speed: float = 1.0, pitch: float = 1.0) -> np.ndarray:
    """Speak `text` with registered `voice`; float32 samples at 16 kHz mono.

    `speed` > 1 speaks faster, `pitch` > 1 raises F0 (ratios; the corpus draws them with `jitter`).
    """
    v = _lookup(voice)
    text = " ".join(text.split())
    if not text:
        raise ValueError("mbasr/data/tts.py: synthesize(text=...) is empty")
    for pname, val in (("speed", speed), ("pitch", pitch)):
        if not 0.5 <= val <= 2.0:
            raise ValueError(f"mbasr/data/tts.py: synthesize({pname}={val}) must lie in [0.5, 2.0]")
    if v.engine not in _ENGINES_FOUND:  # looked up once per process (a PATH search costs ~1 ms)
        require_engines([voice])
        _ENGINES_FOUND.add(v.engine)
    if v.engine == "espeak-ng":
        x, sr = _speak(v, text, speed, pitch)
    else:
        # flite and festival have no pitch option: the engine speaks at speed/pitch and the result is
        # replayed `pitch` times faster (a resampling, which also shifts formants a little: more voice
        # variety, and 4-5x cheaper than a sox pitch shift in another process).
        pitch = round(pitch, 2)
        x, sr = _speak(v, text, speed / pitch, pitch)
        sr = round(sr * pitch)
    x = x.mean(axis=1)
    if sr != SAMPLE_RATE:
        x = _resample(x, sr)
    x = trim_silence(x)
    peak = float(np.abs(x).max())
    if peak == 0.0:
        raise RuntimeError(f"mbasr/data/tts.py: voice {voice!r} produced silence for text {text!r}")
    return (x * (PEAK_LEVEL / peak)).astype(np.float32)


def write_wav(path: str | Path, samples: np.ndarray, sr: int = SAMPLE_RATE, durable: bool = True) -> None:
    """Write mono `samples` (float in [-1, 1]) as 16-bit PCM WAV, atomically (a temporary file renamed:
    never half-written). `durable=False` skips the fsync (a few ms of waiting per file); the caller then
    syncs once for many files (the corpus does, before it marks itself complete)."""
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise ValueError(
            f"mbasr/data/tts.py: write_wav(samples=...) must be 1-D mono, got shape {samples.shape}"
        )
    buf = io.BytesIO()
    sf.write(buf, np.clip(samples, -1.0, 1.0), sr, subtype="PCM_16", format="WAV")
    if durable:
        atomic_write_bytes(path, buf.getvalue())
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a mono WAV as (float32 samples, sample rate)."""
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    if x.shape[1] != 1:
        raise ValueError(f"mbasr/data/tts.py: read_wav({path}) has {x.shape[1]} channels, expected mono")
    return x[:, 0], sr
