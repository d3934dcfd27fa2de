"""Whisper on trimmed windows (the `tiny` and `small` presets) against the 30-s windows it was trained on:
same frame count, frames close to the full window's on real speech, and a cache identity of its own."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_model import tiny_whisper_config

from mbasr.config import load_preset
from mbasr.model.cache import load_audio
from mbasr.model.encoders import build_encoder
from mbasr.model.hub import REPO_ROOT
from mbasr.tools.pocketsphinx import pocketsphinx_clips

WEIGHTS = REPO_ROOT / "weights" / "whisper-tiny.en"


def _encoders(hf=None):
    cfg = load_preset("tiny").encoder
    if hf is not None:
        cfg = dataclasses.replace(cfg, dim=hf.d_model)
    return build_encoder(dataclasses.replace(cfg, window="trimmed"), hf), build_encoder(
        dataclasses.replace(cfg, window="full"), hf
    )


def test_window_is_part_of_the_cache_identity_and_frames_do_not_depend_on_the_batch():
    torch.manual_seed(0)
    trimmed, full = _encoders(tiny_whisper_config(50))
    full.load_state_dict(trimmed.state_dict())
    assert trimmed.identity() != full.identity()
    wavs, lengths = torch.randn(2, 16000) * 0.1, torch.tensor([16000, 7000])
    with torch.no_grad():
        both, n = trimmed(wavs, lengths)
        alone, m = trimmed(wavs[1:, :7000], lengths[1:])
    assert n.tolist() == [50, 22] and m.tolist() == [22]
    torch.testing.assert_close(both[1, :22], alone[0])  # a companion's length changes nothing
    assert both[1, 22:].abs().sum() == 0


@pytest.mark.slow
@pytest.mark.skipif(
    not WEIGHTS.is_dir(), reason="weights/whisper-tiny.en missing (scripts/setup_env.sh builds it)"
)
def test_trimmed_frames_match_the_full_window_on_real_speech():
    clips = pocketsphinx_clips()
    if not clips:
        pytest.skip("pocketsphinx-testdata missing (sudo apt-get install pocketsphinx-testdata)")
    trimmed, full = _encoders()
    cosines = []
    for _, wav, _ in clips[:4]:
        audio = load_audio(wav)[None]
        lengths = torch.tensor([audio.shape[1]])
        with torch.no_grad():
            a, n = trimmed(audio, lengths)
            b, m = full(audio, lengths)
        assert n.tolist() == m.tolist()
        cosines.append(float(torch.nn.functional.cosine_similarity(a[0], b[0], dim=-1).mean()))
    print(f"trimmed vs full-window frames, mean cosine per clip: {[round(c, 3) for c in cosines]}")
    assert min(cosines) > 0.9
