"""Per-domain acoustic conditions: the recording conditions that set the paper's target domains apart.

In the paper the targets differ from the source not only in words but in sound: Banking/Insurance are
call-centre telephone speech, the SlideSpeech domains are lecture videos recorded in rooms and outdoors.
Synthetic speech is studio-clean, so each target domain gets a procedural condition (no noise files):

- "clean": unchanged.
- "telephone" (the source and Banking: both are call-centre calls in the paper): 300-3400 Hz band-pass,
  an 8 kHz round trip (down- then up-sampled), mild soft clipping and 8-bit mu-law (G.711-like)
  quantisation at 8 kHz.
- "lecture" (Agriculture and Musical Instruments: the paper's SlideSpeech lecture videos): a room
  (`reverb`, RT60 from LECTURE_RT60_S), a lecture microphone's colouring (high-pass, a random low-pass
  from LECTURE_LOWPASS_HZ) and mild room noise (ventilation-like low-passed noise with a mains hum) at an
  SNR from LECTURE_SNR_DB.
- "generic" (the general pool, on which stage 0 pretrains): a third of the utterances clean, the rest
  through a random generic channel of `mbasr.data.augment.channel` (band limits, rooms, coloured noise): the
  pretraining speech spans channels in general, never the targets' own generators.
- "outdoor" (field recordings: wind, bird chirps and/or a tractor-engine hum at an SNR drawn from
  OUTDOOR_SNR_DB) and "reverb" (a room alone): not used by default, kept for imported domains and
  ablations (`conditions={...}`).

`DEFAULT_CONDITION` maps each domain to its condition; pass `enabled=False` to `condition_for` (or use
"clean") to switch them off. Every output is float32, as long as its input, its RMS matched to the input
(outdoor: the speech keeps its level, the noise is added), and scaled down when its peak would exceed
PEAK_LIMIT. All randomness comes from the caller's numpy Generator, so a seed fixes the result.

Speed (about 21,700 utterances go through here for the default corpus): fixed filters are designed once
(`_fixed_sos`, `_poly_taps`); filters with a random cutoff are second-order Butterworth sections written
out (`_biquad`, the same coefficients as scipy's `butter`, without its general-purpose design cost);
slow random curves (gusts, engine-speed wobble) are drawn at CONTROL_RATE and interpolated; the engine
hum is read from a one-period wavetable rather than summing 15 sinusoids over every sample.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.signal import butter, fftconvolve, firwin, resample_poly, sosfilt, sosfiltfilt

CONDITIONS = ("clean", "telephone", "lecture", "generic", "outdoor", "reverb")
DEFAULT_CONDITION = {
    "source": "telephone",
    "general": "generic",
    "banking": "telephone",
    "agriculture": "lecture",
    "musical_instruments": "lecture",
}
PEAK_LIMIT = 0.99  # outputs are scaled down (never up) so that |sample| <= PEAK_LIMIT
# Keys the corpus's audio cache with tts.SYNTHESIS_VERSION: give a condition a new value whenever a change
# alters its output, so that only its cached audio is made again ("" is the key of the first version).
CONDITION_VERSIONS = {
    "clean": "",
    "telephone": "",
    "lecture": "1",
    "generic": "2",  # 2: on one thread (the samples no longer depend on the machine's cores)
    "outdoor": "2",  # 2: faster noise
    "reverb": "",
}

TELEPHONE_BAND_HZ = (300.0, 3400.0)  # ITU-T narrowband telephony
TELEPHONE_RATE = 8000
TELEPHONE_DRIVE = (1.0, 2.0)  # gain into the tanh soft clipper, uniform: 1 is barely audible, 2 is mild
MU_LAW_MU = 255.0  # G.711 mu-law, 8-bit
MU_LAW_BITS = 8

OUTDOOR_SNR_DB = (10.0, 20.0)  # speech-to-noise ratio, uniform
OUTDOOR_P_BIRDS = 0.5  # chance an utterance has bird chirps
OUTDOOR_P_TRACTOR = 0.5  # chance an utterance has a tractor engine

REVERB_RT60_S = (0.3, 0.8)  # reverberation time, uniform
REVERB_EARLY_TO_LATE_DB = (0.0, 6.0)  # (direct path + early reflections) / late tail energy, uniform
REVERB_N_EARLY = (4, 10)  # number of early reflections, within 3-40 ms

LECTURE_RT60_S = (0.4, 0.9)  # a classroom or lecture hall
LECTURE_LOWPASS_HZ = (4500.0, 7000.0)  # the microphone's top end, uniform
LECTURE_HIGHPASS_HZ = 120.0
LECTURE_SNR_DB = (18.0, 30.0)  # speech-to-room-noise ratio, uniform
GENERIC_P_CLEAN = 1 / 3

CONTROL_RATE = 100  # Hz: sample rate of slowly varying random curves (cutoffs <= 5 Hz), then interpolated
TRACTOR_HARMONICS = 15  # engine hum: firing rate and its harmonics
WAVETABLE_SIZE = 4096  # points per period of the engine hum (a power of two)


def condition_for(domain: str, enabled: bool = True) -> str:
    """The acoustic condition of `domain` (DEFAULT_CONDITION); "clean" for all when `enabled` is False."""
    if domain not in DEFAULT_CONDITION:
        raise KeyError(
            f"mbasr/data/acoustics.py: condition_for(domain={domain!r}): unknown; "
            f"known: {list(DEFAULT_CONDITION)}"
        )
    return DEFAULT_CONDITION[domain] if enabled else "clean"


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@functools.lru_cache(maxsize=16)
def _fixed_sos_design(order: int, cutoff: float | tuple[float, float], btype: str, sr: int) -> np.ndarray:
    return butter(order, cutoff, btype=btype, fs=sr, output="sos")


def _fixed_sos(order: int, cutoff: float | tuple[float, float], btype: str, sr: int) -> np.ndarray:
    """A Butterworth filter with fixed parameters, designed once (a copy: scipy's sosfilt wants it
    writable)."""
    return _fixed_sos_design(order, cutoff, btype, sr).copy()


def _biquad(btype: str, cutoff_hz: float, sr: int) -> np.ndarray:
    """Second-order Butterworth low- or high-pass as one sos row: bilinear transform with prewarping,
    the coefficients of butter(2, cutoff_hz, btype, fs=sr, output="sos") in closed form."""
    k = math.tan(math.pi * cutoff_hz / sr)
    norm = 1.0 / (1.0 + math.sqrt(2.0) * k + k * k)
    a1, a2 = 2.0 * (k * k - 1.0) * norm, (1.0 - math.sqrt(2.0) * k + k * k) * norm
    if btype == "lowpass":
        b = (k * k * norm, 2.0 * k * k * norm, k * k * norm)
    elif btype == "highpass":
        b = (norm, -2.0 * norm, norm)
    else:
        raise ValueError(f"mbasr/data/acoustics.py: _biquad(btype={btype!r}): lowpass or highpass")
    return np.array([[*b, 1.0, a1, a2]])


@functools.lru_cache(maxsize=8)
def _poly_taps(up: int, down: int) -> np.ndarray:
    """The anti-aliasing filter resample_poly designs for up/down (float64), designed once."""
    max_rate = max(up, down)
    taps = firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))
    taps.setflags(write=False)
    return taps


def _resample(y: np.ndarray, up: int, down: int) -> np.ndarray:
    """resample_poly(y, up, down) for float64 `y`, with its filter designed once."""
    g = math.gcd(up, down)
    return resample_poly(y, up // g, down // g, window=_poly_taps(up // g, down // g))


def _finish(y: np.ndarray, like: np.ndarray | None) -> np.ndarray:
    """Match the RMS of `like` (when given) and limit the peak to PEAK_LIMIT; float32."""
    y = np.asarray(y, dtype=np.float64)
    if like is not None:
        r = _rms(y)
        if r > 0:
            y = y * (_rms(like) / r)
    peak = float(np.abs(y).max()) if len(y) else 0.0
    if peak > PEAK_LIMIT:
        y = y * (PEAK_LIMIT / peak)
    return y.astype(np.float32)


def telephone(wave: np.ndarray, rng: np.random.Generator, sr: int = 16000) -> np.ndarray:
    """Narrowband telephone channel: band-pass, 8 kHz round trip, soft clip and mu-law at 8 kHz."""
    x = np.asarray(wave, dtype=np.float64)
    y = sosfiltfilt(_fixed_sos(6, TELEPHONE_BAND_HZ, "bandpass", sr), x)
    y = _resample(y, TELEPHONE_RATE, sr)
    peak = float(np.abs(y).max())
    if peak > 0:
        y = np.tanh(rng.uniform(*TELEPHONE_DRIVE) * y / peak)  # soft clip relative to the peak
    q = 2 ** (MU_LAW_BITS - 1)
    enc = np.sign(y) * np.log1p(MU_LAW_MU * np.abs(y)) / np.log1p(MU_LAW_MU)
    enc = np.round(enc * q) / q
    y = np.sign(enc) * np.expm1(np.abs(enc) * np.log1p(MU_LAW_MU)) / MU_LAW_MU
    y = _resample(y, sr, TELEPHONE_RATE)
    return _finish(_fit(y, len(x)), x)


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


def _smooth_noise(n: int, rng: np.random.Generator, sr: int, cutoff_hz: float) -> np.ndarray:
    """Zero-mean, unit-RMS noise low-passed at `cutoff_hz` (a slowly varying random curve): drawn and
    filtered at CONTROL_RATE, then linearly interpolated to `n` samples at `sr`."""
    if not 0.0 < cutoff_hz <= CONTROL_RATE / 20:
        raise ValueError(
            f"mbasr/data/acoustics.py: _smooth_noise(cutoff_hz={cutoff_hz}) must be in (0, 5] Hz"
        )
    m = int(math.ceil(n * CONTROL_RATE / sr)) + 1  # control points covering the n samples
    pad = int(2 * CONTROL_RATE / cutoff_hz)  # let the filter settle before the part we keep
    c = sosfilt(_biquad("lowpass", cutoff_hz, CONTROL_RATE), rng.standard_normal(m + pad))[pad:]
    c = np.interp(np.arange(n) * (CONTROL_RATE / sr), np.arange(m), c)
    c -= c.mean()
    return c / (_rms(c) + 1e-12)


def _wind(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Rumble (brown noise, 20-800 Hz) plus rustle (white noise low-passed at 1-3 kHz), in slow gusts."""
    brown = np.cumsum(rng.standard_normal(n))
    band = np.concatenate([_biquad("highpass", 20.0, sr), _biquad("lowpass", rng.uniform(300.0, 800.0), sr)])
    rumble = sosfilt(band, brown)
    rustle = sosfilt(_biquad("lowpass", rng.uniform(1000.0, 3000.0), sr), rng.standard_normal(n))
    w = rumble / (_rms(rumble) + 1e-12) + rng.uniform(0.3, 1.0) * rustle / (_rms(rustle) + 1e-12)
    gusts = np.clip(0.6 + 0.35 * _smooth_noise(n, rng, sr, rng.uniform(0.3, 1.0)), 0.1, None)
    return w * gusts


def _birds(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    out = np.zeros(n)
    n_calls = rng.poisson(1.5 * n / sr) + 1
    for _ in range(n_calls):
        n_chirps, f0 = int(rng.integers(1, 5)), rng.uniform(2500.0, 5500.0)
        start = int(rng.integers(0, n))
        for _k in range(n_chirps):
            d = int(rng.uniform(0.04, 0.12) * sr)
            t = np.arange(d) / sr
            f = f0 * (1.0 + rng.uniform(-0.3, 0.3) * t / t[-1])  # a short up or down sweep
            chirp = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.hanning(d) * rng.uniform(0.3, 1.0)
            seg = out[start : start + d]
            seg += chirp[: len(seg)]
            start += d + int(rng.uniform(0.02, 0.08) * sr)
            if start >= n:
                break
    return out


def _tractor(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    f_fire = rng.uniform(20.0, 40.0) * (1.0 + 0.03 * _smooth_noise(n, rng, sr, 0.5))  # firing rate, wobbling
    # The hum is a periodic function of the engine's phase: one period of its harmonics (a wavetable),
    # read at every sample with linear interpolation.
    grid = np.arange(WAVETABLE_SIZE) * (2 * np.pi / WAVETABLE_SIZE)
    table = np.zeros(WAVETABLE_SIZE + 1)
    for k in range(1, TRACTOR_HARMONICS + 1):
        amp = rng.uniform(0.2, 1.0) / k
        table[:-1] += amp * np.sin(k * grid + rng.uniform(0, 2 * np.pi))
    table[-1] = table[0]
    pos = np.cumsum(f_fire) * (WAVETABLE_SIZE / sr)  # engine cycles so far, in table steps
    i = pos.astype(np.int64)
    frac = pos - i
    i &= WAVETABLE_SIZE - 1  # a power of two
    hum = table[i] + frac * (table[i + 1] - table[i])
    rumble = sosfilt(_fixed_sos(2, 400.0, "lowpass", sr), rng.standard_normal(n))
    return (hum / (_rms(hum) + 1e-12) + 0.5 * rumble / (_rms(rumble) + 1e-12)) * (1.0 + 0.1 * np.sin(2 * t))


def outdoor_noise(n: int, rng: np.random.Generator, sr: int = 16000) -> np.ndarray:
    """`n` samples of procedural outdoor noise: wind, plus bird chirps and/or a tractor engine (unit RMS)."""
    noise = _wind(n, rng, sr)
    noise /= _rms(noise) + 1e-12
    if rng.random() < OUTDOOR_P_BIRDS:
        b = _birds(n, rng, sr)
        noise += rng.uniform(0.2, 0.6) * b / (_rms(b) + 1e-12)
    if rng.random() < OUTDOOR_P_TRACTOR:
        noise += rng.uniform(0.3, 1.0) * _tractor(n, rng, sr)
    return noise / (_rms(noise) + 1e-12)


def add_noise(wave: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`wave` + `noise` scaled so that 10 log10(P_wave / P_noise) is exactly `snr_db` (float64)."""
    x, v = np.asarray(wave, dtype=np.float64), np.asarray(noise, dtype=np.float64)
    if x.shape != v.shape:
        raise ValueError(f"mbasr/data/acoustics.py: add_noise: wave {x.shape} and noise {v.shape} differ")
    ps, pn = _rms(x) ** 2, _rms(v) ** 2
    if ps == 0.0 or pn == 0.0:
        raise ValueError(
            "mbasr/data/acoustics.py: add_noise: wave or noise is all zeros; the SNR is undefined"
        )
    return x + v * np.sqrt(ps / (pn * 10 ** (snr_db / 10.0)))


def outdoor(
    wave: np.ndarray, rng: np.random.Generator, sr: int = 16000, snr_db: float | None = None
) -> np.ndarray:
    """Outdoor recording: outdoor_noise added at `snr_db` (default: drawn uniformly from OUTDOOR_SNR_DB)."""
    snr = rng.uniform(*OUTDOOR_SNR_DB) if snr_db is None else float(snr_db)
    return _finish(add_noise(wave, outdoor_noise(len(wave), rng, sr), snr), None)


def room_impulse_response(rng: np.random.Generator, sr: int = 16000, rt60: float | None = None) -> np.ndarray:
    """A synthetic RIR: unit direct path, early reflections, then an exponentially decaying noise tail
    (60 dB down after `rt60` s, default drawn from REVERB_RT60_S) at an early-to-late energy ratio drawn
    from REVERB_EARLY_TO_LATE_DB. The tail darkens with time (air and wall absorption of high frequencies)."""
    rt60 = rng.uniform(*REVERB_RT60_S) if rt60 is None else float(rt60)
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    h = np.zeros(n)
    h[0] = 1.0
    for _ in range(int(rng.integers(REVERB_N_EARLY[0], REVERB_N_EARLY[1] + 1))):
        h[int(rng.uniform(0.003, 0.040) * sr)] += rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 0.7)
    tail = rng.standard_normal(n) * np.exp(-6.908 * t / rt60)  # ln(1000): amplitude -60 dB at rt60
    tail_lp = sosfilt(_fixed_sos(1, 2000.0, "lowpass", sr), tail)
    mix = np.clip(t / rt60 * 2.0, 0.0, 1.0)  # bright at first, darker later
    tail = (1 - mix) * tail + mix * tail_lp * (_rms(tail) / (_rms(tail_lp) + 1e-12))
    tail[: int(0.005 * sr)] *= np.linspace(0.0, 1.0, int(0.005 * sr))  # onset after the direct path
    early_to_late_db = rng.uniform(*REVERB_EARLY_TO_LATE_DB)
    e_early = float(np.sum(h**2))
    tail *= np.sqrt(e_early / (10 ** (early_to_late_db / 10.0) * float(np.sum(tail**2))))
    return h + tail


def reverb(
    wave: np.ndarray, rng: np.random.Generator, sr: int = 16000, rt60: float | None = None
) -> np.ndarray:
    """Room reverberation: convolution with room_impulse_response, cut to the input's length."""
    x = np.asarray(wave, dtype=np.float64)
    y = fftconvolve(x, room_impulse_response(rng, sr, rt60))[: len(x)]
    return _finish(y, x)


def room_noise(n: int, rng: np.random.Generator, sr: int = 16000) -> np.ndarray:
    """`n` samples of a room's background (unit RMS): ventilation-like noise (white noise low-passed at
    300-800 Hz) with a faint 50 or 60 Hz mains hum and its harmonics."""
    noise = sosfilt(_biquad("lowpass", rng.uniform(300.0, 800.0), sr), rng.standard_normal(n))
    noise /= _rms(noise) + 1e-12
    t = np.arange(n) / sr
    mains = rng.choice([50.0, 60.0])
    hum = sum(np.sin(2 * np.pi * mains * h * t + rng.uniform(0, 2 * np.pi)) / h for h in (1, 2, 3))
    noise += rng.uniform(0.1, 0.4) * hum / (_rms(hum) + 1e-12)
    return noise / (_rms(noise) + 1e-12)


def lecture(wave: np.ndarray, rng: np.random.Generator, sr: int = 16000) -> np.ndarray:
    """A lecture recording: a room, a lecture microphone's band and mild room noise (module docstring)."""
    x = np.asarray(wave, dtype=np.float64)
    y = fftconvolve(x, room_impulse_response(rng, sr, rng.uniform(*LECTURE_RT60_S)))[: len(x)]
    y = sosfilt(_fixed_sos(2, LECTURE_HIGHPASS_HZ, "highpass", sr), y)
    y = sosfilt(_biquad("lowpass", rng.uniform(*LECTURE_LOWPASS_HZ), sr), y)
    y *= _rms(x) / (_rms(y) + 1e-12)
    return _finish(add_noise(y, room_noise(len(y), rng, sr), rng.uniform(*LECTURE_SNR_DB)), None)


def generic(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Clean (GENERIC_P_CLEAN of the time) or through one random generic channel (`mbasr.data.augment`)."""
    x = np.asarray(wave, dtype=np.float32)
    if rng.random() < GENERIC_P_CLEAN:
        return x.copy()
    import torch

    from mbasr.data import augment

    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # torch's FFTs give other samples on other thread counts: one, always
    try:
        y = augment.channel(torch.from_numpy(x)[None], torch.tensor([len(x)]), gen)[0].numpy()
    finally:
        torch.set_num_threads(threads)
    return _finish(y.astype(np.float64), x)


def apply_condition(wave: np.ndarray, name: str, rng: np.random.Generator, sr: int = 16000) -> np.ndarray:
    """Apply the acoustic condition `name` (one of CONDITIONS) to a mono waveform; float32, same length."""
    wave = np.asarray(wave)
    if name not in CONDITIONS:
        raise ValueError(
            f"mbasr/data/acoustics.py: apply_condition(name={name!r}): unknown; choose one of {CONDITIONS}"
        )
    if wave.ndim != 1 or len(wave) == 0:
        raise ValueError(
            f"mbasr/data/acoustics.py: apply_condition(wave=...) must be non-empty 1-D, got {wave.shape}"
        )
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"mbasr/data/acoustics.py: apply_condition(rng=...) needs a numpy Generator, got {type(rng)}"
        )
    if name == "clean":
        return wave.astype(np.float32)
    if name == "telephone":
        return telephone(wave, rng, sr)
    if name == "lecture":
        return lecture(wave, rng, sr)
    if name == "generic":
        return generic(wave, rng)
    if name == "outdoor":
        return outdoor(wave, rng, sr)
    return reverb(wave, rng, sr)
