"""No process outlives a corpus build: its synthesis workers and their TTS engine servers end with it,
whether the build is interrupted (KeyboardInterrupt), terminated (SIGTERM) or killed outright (SIGKILL,
as a notebook kernel is), and nothing goes on writing into its work folder."""

from __future__ import annotations

import sys

import pytest
from conftest import needs_tts
from orphans import survivors

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a Linux child subreaper counts")

BUILD = "from mbasr.data.corpus import prepare_corpus\nprepare_corpus({work!r}, scale='micro', jobs=2, progress=False)"
SPEAK = """
from mbasr.data import tts
for v in ("espeak_us_m", "espeak_nyc_f5", "flite_slt"):
    tts.synthesize("one two three", v)
open({flag!r}, "w").close()
import time
time.sleep(60)
"""


@needs_tts
@pytest.mark.slow
@pytest.mark.parametrize("signal", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_killed_build_leaves_no_process(tmp_path, signal):
    """Killed mid-build (two workers synthesising, each with its engine server and voice zygotes),
    nothing it started is alive a moment later."""
    work = tmp_path / "w"
    report = survivors(BUILD.format(work=str(work)), signal, work / "audio", files=8)
    assert not report["exited_early"] and report["made"] >= 8, report["stderr"]
    assert report["running"] >= 5, report  # the build, 2 workers, their engine servers and zygotes
    assert report["left"] == [], report["left"]


@needs_tts
def test_killed_client_leaves_no_engine_process(tmp_path):
    """The engine server and its zygotes (one per voice) end when the process they serve is killed."""
    report = survivors(SPEAK.format(flag=str(tmp_path / "spoken")), "SIGKILL", tmp_path, 1, pattern="spoken")
    assert not report["exited_early"], report["stderr"]
    assert report["running"] >= 5, report  # the client, its server, 3 zygotes
    assert report["left"] == [], report["left"]
