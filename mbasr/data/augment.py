"""Waveform augmentation for pretraining the from-scratch encoder (stage 0 of `tiny`).

A pretrained encoder such as WavLM-Large has heard thousands of hours of real recordings: phone lines,
rooms, street noise. Ours hears a few hours of clean synthetic speech, so without help it learns features
that break on any other channel (measured: CTC CER 23% on clean held-out voices, 50% on the telephone
domain). `channel` draws generic channels at random per utterance: band limits with optional 8-bit
mu-law coding, synthetic room impulse responses and coloured noise. They are deliberately not the
corpus's own condition generators (`mbasr.data.acoustics`) and never see target-domain audio: the
encoder learns invariance to channels in general, as a real pretrained encoder would have.

All draws come from a `torch.Generator`, so the same seed gives the same batch.
"""

from __future__ import annotations

import math

import torch

SAMPLE_RATE = 16000


def _u(gen: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _real(lengths: torch.Tensor, T: int) -> torch.Tensor:
    return (torch.arange(T)[None, :] < lengths.cpu()[:, None]).float()


def _rms(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return ((x * mask).pow(2).sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp(min=1)).sqrt()


def band_limit(x: torch.Tensor, low_hz: torch.Tensor, high_hz: torch.Tensor, sr: int = SAMPLE_RATE):
    """Keep high_hz..low_hz of each row whole; raised-cosine edges 300 Hz wide outside that band."""
    T = x.shape[1]
    f = torch.fft.rfftfreq(T, 1 / sr)[None, :]
    width = 300.0
    lp = (0.5 + 0.5 * torch.cos(math.pi * ((f - low_hz[:, None]) / width).clamp(0, 1))).clamp(0, 1)
    hp = (0.5 - 0.5 * torch.cos(math.pi * ((f - high_hz[:, None] + width) / width).clamp(0, 1))).clamp(0, 1)
    return torch.fft.irfft(torch.fft.rfft(x, dim=1) * lp * hp, n=T, dim=1)


def mu_law(x: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Round trip through mu-law coding at `bits` bits (the telephone codec's kind of quantisation)."""
    mu = 2**bits - 1
    peak = x.abs().amax(1, keepdim=True).clamp(min=1e-8)
    y = x / peak
    q = torch.sign(y) * torch.log1p(mu * y.abs()) / math.log1p(mu)
    q = torch.round((q + 1) / 2 * mu) / mu * 2 - 1
    return torch.sign(q) * ((1 + mu) ** q.abs() - 1) / mu * peak


def synthetic_rir(rt60: float, gen: torch.Generator, sr: int = SAMPLE_RATE) -> torch.Tensor:
    """Exponentially decaying noise with a direct path: a room of reverberation time `rt60` seconds."""
    n = max(int(min(rt60, 1.0) * sr), 16)
    t = torch.arange(n) / sr
    h = torch.randn(n, generator=gen) * torch.exp(-6.9 * t / rt60) * 0.3
    h[0] = 1.0
    return h / h.norm()


def coloured_noise(shape: tuple[int, int], alpha: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Noise with power falling as 1/f^alpha per row (alpha 0: white, 1: pink, 2: brown, <0: blue)."""
    B, T = shape
    white = torch.randn(B, T, generator=gen)
    f = torch.fft.rfftfreq(T)[None, :].clamp(min=1.0 / T)
    shaped = torch.fft.irfft(torch.fft.rfft(white, dim=1) * f ** (-alpha[:, None] / 2), n=T, dim=1)
    return shaped / shaped.std(1, keepdim=True).clamp(min=1e-8)


def channel(
    wavs: torch.Tensor,
    lengths: torch.Tensor,
    gen: torch.Generator,
    p_band: float = 0.35,
    p_reverb: float = 0.35,
    p_noise: float = 0.6,
    snr_db: tuple[float, float] = (3.0, 30.0),
) -> torch.Tensor:
    """Random generic channels for a padded batch (B, T) on any device; padding stays zero."""
    device, B, T0 = wavs.device, wavs.shape[0], wavs.shape[1]
    T = -(-T0 // 4096) * 4096  # FFTs of odd lengths are several times slower
    x = torch.nn.functional.pad(wavs.detach().float().cpu(), (0, T - T0))
    mask = _real(lengths, T)
    level = _rms(x, mask)
    pick = torch.rand(B, 3, generator=gen)
    rooms = torch.nonzero(pick[:, 1] < p_reverb).flatten()
    if len(rooms):
        rirs = [synthetic_rir(float(_u(gen, 1, 0.15, 0.9)), gen) for _ in rooms]
        n = 1 << (T + max(len(h) for h in rirs)).bit_length()  # one batched power-of-2 FFT
        h = torch.stack([torch.nn.functional.pad(h, (0, n - len(h))) for h in rirs])
        wet = torch.fft.irfft(torch.fft.rfft(x[rooms], n=n, dim=1) * torch.fft.rfft(h, dim=1), n=n, dim=1)
        x[rooms] = wet[:, :T]
    band = pick[:, 0] < p_band
    if band.any():
        low = torch.where(
            torch.rand(B, generator=gen) < 0.5, torch.full((B,), 3600.0), _u(gen, B, 2500, 7000)
        )
        high = _u(gen, B, 0, 400)
        limited = band_limit(x, low, high)
        coded = torch.where((torch.rand(B, generator=gen) < 0.5)[:, None], mu_law(limited), limited)
        x = torch.where(band[:, None], coded, x)
    x = x * mask
    x = x * (level / _rms(x, mask).clamp(min=1e-8))
    noisy = pick[:, 2] < p_noise
    if noisy.any():
        noise = coloured_noise((B, T), _u(gen, B, -1.0, 2.0), gen)
        snr = _u(gen, B, *snr_db)[:, None]
        x = torch.where(noisy[:, None], x + noise * level / 10 ** (snr / 20), x)
    return (x * mask)[:, :T0].to(device)
