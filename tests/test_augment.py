"""Generic channel augmentation of stage-0 encoder training (mbasr/data/augment.py)."""

from __future__ import annotations

import torch

from mbasr.data import augment

SR = 16000


def _sine(hz: float, n: int = SR) -> torch.Tensor:
    return torch.sin(2 * torch.pi * hz * torch.arange(n) / SR)


def _power_near(x: torch.Tensor, hz: float) -> float:
    spec = torch.fft.rfft(x).abs().pow(2)
    f = torch.fft.rfftfreq(len(x), 1 / SR)
    return float(spec[(f - hz).abs() < 50].sum() / spec.sum())


def test_band_limit_keeps_the_band_and_removes_what_lies_outside():
    x = torch.stack([_sine(1000) + _sine(6000) + _sine(100)])
    y = augment.band_limit(x, torch.tensor([3600.0]), torch.tensor([500.0]))[0]
    assert _power_near(y, 1000) > 0.99
    assert _power_near(y, 6000) < 1e-4 and _power_near(y, 100) < 1e-4


def test_mu_law_round_trip_is_close_at_8_bits_and_coarse_at_2():
    x = 0.5 * _sine(440)[None]
    err8 = (augment.mu_law(x, 8) - x).abs().max()
    err2 = (augment.mu_law(x, 2) - x).abs().max()
    assert err8 < 0.03 < err2


def test_room_impulse_response_has_unit_energy_and_decays_faster_in_a_drier_room():
    gen = torch.Generator().manual_seed(0)
    dry, wet = augment.synthetic_rir(0.15, gen), augment.synthetic_rir(0.9, gen)
    assert abs(float(dry.norm()) - 1) < 1e-5 and abs(float(wet.norm()) - 1) < 1e-5

    def tail(h):  # energy share after the first 50 ms
        return float(h[800:].pow(2).sum() / h.pow(2).sum())

    assert tail(dry) < tail(wet)


def test_coloured_noise_tilts_its_spectrum_with_alpha():
    gen = torch.Generator().manual_seed(0)
    noise = augment.coloured_noise((2, SR), torch.tensor([0.0, 2.0]), gen)
    spec = torch.fft.rfft(noise, dim=1).abs().pow(2)
    f = torch.fft.rfftfreq(SR, 1 / SR)
    low_share = spec[:, f < 500].sum(1) / spec.sum(1)
    assert low_share[0] < 0.15 < 0.8 < low_share[1]  # white ~6%, brown mostly below 500 Hz
    assert torch.allclose(noise.std(1), torch.ones(2), atol=1e-3)


def test_channel_is_seeded_finite_same_shape_and_leaves_padding_silent():
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    x = torch.randn(6, 20011) * 0.1
    n = torch.tensor([20011, 15000, 9000, 20011, 12000, 20011])
    x = x * (torch.arange(20011)[None] < n[:, None])
    a = augment.channel(x, n, gen(), p_band=1.0, p_reverb=1.0, p_noise=1.0)
    b = augment.channel(x, n, gen(), p_band=1.0, p_reverb=1.0, p_noise=1.0)
    assert a.shape == x.shape and torch.isfinite(a).all() and torch.equal(a, b)
    for i, k in enumerate(n.tolist()):
        assert (a[i, k:] == 0).all()
        assert not torch.allclose(a[i, :k], x[i, :k])
    untouched = augment.channel(x, n, gen(), p_band=0.0, p_reverb=0.0, p_noise=0.0)
    assert torch.allclose(untouched, x, atol=1e-6)
