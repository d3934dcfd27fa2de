"""Acoustic conditions: telephone band limit, outdoor SNR, reverb decay, determinism, shapes."""

from __future__ import annotations

import numpy as np
import pytest

from mbasr.data import acoustics as A

SR = 16000


def speechlike(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """A deterministic stand-in for speech: a wide-band harmonic buzz in syllable-rate bursts, with pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 120 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    buzz = sum(np.sin(k * phase) / k for k in range(1, 60) if k * 120 < 7500)
    env = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) * (t > 0.2) * (t < seconds - 0.2)
    x = buzz * env + 0.01 * rng.standard_normal(len(t)) * env
    return (0.9 * x / np.abs(x).max()).astype(np.float32)


def rms(v: np.ndarray) -> float:
    return float(np.sqrt(np.mean(v.astype(np.float64) ** 2)))


def band_db(y: np.ndarray, lo: float, hi: float = SR / 2) -> float:
    """Energy in [lo, hi) Hz relative to the total, in dB."""
    s = np.abs(np.fft.rfft(y.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(len(y), 1 / SR)
    return float(10 * np.log10(s[(f >= lo) & (f < hi)].sum() / s.sum()))


def measured_snr(clean: np.ndarray, noisy: np.ndarray) -> float:
    """SNR of `noisy` against `clean`, whatever gain was applied after mixing (least-squares fit)."""
    x, y = clean.astype(np.float64), noisy.astype(np.float64)
    g = (y @ x) / (x @ x)
    return float(10 * np.log10(np.sum((g * x) ** 2) / np.sum((y - g * x) ** 2)))


def test_table():
    assert set(A.DEFAULT_CONDITION.values()) <= set(A.CONDITIONS)
    assert A.condition_for("banking") == "telephone"
    assert A.condition_for("agriculture", enabled=False) == "clean"
    with pytest.raises(KeyError, match="unknown; known"):
        A.condition_for("astrology")


@pytest.mark.parametrize("name", A.CONDITIONS)
def test_shape_dtype_peak_and_seed(name):
    x = speechlike()
    a = A.apply_condition(x, name, np.random.default_rng(7))
    b = A.apply_condition(x, name, np.random.default_rng(7))
    assert a.dtype == np.float32 and a.shape == x.shape
    assert np.array_equal(a, b)
    assert np.abs(a).max() <= A.PEAK_LIMIT + 1e-6
    if name == "clean":
        assert np.array_equal(a, x)
    else:
        assert not np.array_equal(a, A.apply_condition(x, name, np.random.default_rng(8)))


def test_telephone_removes_high_band():
    noise = np.random.default_rng(0).standard_normal(2 * SR).astype(np.float32) * 0.1
    assert band_db(noise, 4000) > -4  # white noise: half its energy lies above 4 kHz
    for seed in range(3):
        y = A.apply_condition(noise, "telephone", np.random.default_rng(seed))
        assert band_db(y, 4000) < -30
        assert band_db(y, 0, 200) < -20  # and the low end below the 300 Hz band edge
    y = A.apply_condition(speechlike(), "telephone", np.random.default_rng(0))
    assert band_db(y, 4000) < -30


def test_outdoor_hits_requested_snr():
    x = speechlike()
    for seed, snr in [(0, 10.0), (1, 15.0), (2, 20.0), (3, 12.5)]:
        y = A.outdoor(x, np.random.default_rng(seed), snr_db=snr)
        assert abs(measured_snr(x, y) - snr) < 0.5
    for seed in range(6):
        rng = np.random.default_rng(seed)
        requested = np.random.default_rng(seed).uniform(*A.OUTDOOR_SNR_DB)  # the first draw outdoor() makes
        got = measured_snr(x, A.apply_condition(x, "outdoor", rng))
        assert abs(got - requested) < 0.5 and A.OUTDOOR_SNR_DB[0] - 0.5 < got < A.OUTDOOR_SNR_DB[1] + 0.5


def test_outdoor_noise_components():
    noise = A.outdoor_noise(4 * SR, np.random.default_rng(0))
    assert abs(rms(noise) - 1.0) < 1e-6
    assert band_db(noise, 0, 1000) > -3  # mostly low-frequency (wind, engine)
    with pytest.raises(ValueError, match="differ"):
        A.add_noise(np.ones(10), np.ones(11), 10.0)
    with pytest.raises(ValueError, match="all zeros"):
        A.add_noise(np.zeros(10), np.ones(10), 10.0)


def test_reverb_lengthens_decay():
    burst = np.zeros(SR, dtype=np.float32)
    burst[: SR // 2] = np.random.default_rng(0).standard_normal(SR // 2) * 0.3
    after = slice(SR // 2 + int(0.05 * SR), SR // 2 + int(0.3 * SR))  # 50-300 ms after the burst ends
    for seed in range(3):
        y = A.apply_condition(burst, "reverb", np.random.default_rng(seed)).astype(np.float64)
        tail_db = 10 * np.log10(np.sum(y[after] ** 2) / np.sum(y[: SR // 2] ** 2))
        assert tail_db > -40, f"seed {seed}: no reverberant tail ({tail_db:.1f} dB)"
    for rt60 in (0.3, 0.5, 0.8):  # Schroeder backward integration, T20 from -10 to -30 dB, times 3
        h = A.room_impulse_response(np.random.default_rng(1), rt60=rt60)
        e = np.cumsum(h[::-1] ** 2)[::-1]
        level = 10 * np.log10(e / e[0])
        t30 = 3 * (np.argmax(level < -30) - np.argmax(level < -10)) / SR
        assert abs(t30 - rt60) < 0.25 * rt60


def test_reverb_keeps_level():
    x = speechlike()
    y = A.apply_condition(x, "reverb", np.random.default_rng(0))
    assert abs(rms(y) / rms(x) - 1) < 0.01 or np.abs(y).max() >= A.PEAK_LIMIT - 1e-6


def test_bad_arguments():
    x = speechlike(1.0)
    with pytest.raises(ValueError, match="unknown; choose one of"):
        A.apply_condition(x, "underwater", np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        A.apply_condition(x, "reverb", 0)
    with pytest.raises(ValueError, match="1-D"):
        A.apply_condition(np.zeros((10, 2)), "clean", np.random.default_rng(0))


def test_biquad_is_butterworth():
    from scipy.signal import butter

    for btype, f in [("lowpass", 0.4), ("lowpass", 1234.5), ("highpass", 20.0), ("lowpass", 2999.0)]:
        sr = 100 if f < 1 else SR
        want = butter(2, f, btype=btype, fs=sr, output="sos")
        assert np.allclose(A._biquad(btype, f, sr), want, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="btype"):
        A._biquad("bandpass", 100.0, SR)


def test_smooth_noise_is_slow():
    c = A._smooth_noise(8 * SR, np.random.default_rng(0), SR, 0.5)
    assert len(c) == 8 * SR and abs(rms(c) - 1.0) < 1e-6 and abs(c.mean()) < 1e-9
    assert band_db(c, 0, 5.0) > -1  # nearly all its energy below 5 Hz
    with pytest.raises(ValueError, match="cutoff_hz"):
        A._smooth_noise(SR, np.random.default_rng(0), SR, 50.0)


def test_every_condition_has_a_cache_version():
    assert set(A.CONDITION_VERSIONS) == set(A.CONDITIONS)


def test_generic_does_not_depend_on_torch_threads():
    """torch's FFTs give other samples on other thread counts: the generic channel runs on one thread,
    so the general pool's audio is the same on every machine (and the caller's setting is kept)."""
    import torch

    x = np.random.default_rng(1).standard_normal(16000 * 3).astype(np.float32) * 0.1
    threads = torch.get_num_threads()
    try:
        out = {}
        for n in (1, 4):
            torch.set_num_threads(n)
            out[n] = [A.generic(x, np.random.default_rng(s)) for s in range(8)]
            assert torch.get_num_threads() == n
    finally:
        torch.set_num_threads(threads)
    assert all(np.array_equal(a, b) for a, b in zip(out[1], out[4], strict=True))
