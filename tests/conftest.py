"""Shared fixtures: one micro corpus per test session (about a minute to build)."""

from __future__ import annotations

import pytest

from mbasr.data import tts
from mbasr.data.corpus import prepare_corpus
from mbasr.model.hub import REPO_ROOT

HAVE_TTS = all(tts.check_engines().get(e) for e in ("espeak-ng", "flite"))
needs_tts = pytest.mark.skipif(
    not HAVE_TTS, reason="espeak-ng and flite are needed (sudo apt-get install espeak-ng flite)"
)


# the tiny preset's encoder: Whisper tiny.en, converted offline by scripts/setup_env.sh
HAVE_WHISPER = (REPO_ROOT / "weights" / "whisper-tiny.en" / "SOURCE.md").is_file()
needs_whisper = pytest.mark.skipif(
    not HAVE_WHISPER,
    reason="weights/whisper-tiny.en missing: run scripts/setup_env.sh (it converts it offline)",
)


@pytest.fixture(scope="session")
def micro_work_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def micro(micro_work_dir):
    if not HAVE_TTS:
        pytest.skip("espeak-ng and flite are needed (sudo apt-get install espeak-ng flite)")
    return prepare_corpus(micro_work_dir, scale="micro", seed=0, progress=False)
