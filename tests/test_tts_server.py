"""The TTS engine server (mbasr.tools.tts_server): the programs' samples, no state carried over between
sentences, errors reported, and no process of its tree outliving the process it serves."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mbasr.data import tts
from mbasr.tools import tts_server

SENTENCE = "please check the balance of my savings account"
HAVE = tts.check_engines()


@pytest.mark.parametrize(
    "name", ["espeak_us_m", "espeak_us_f3", "espeak_us_klatt2", "espeak_lanc_m4", "flite_kal16", "flite_slt"]
)
def test_engine_server_speaks_as_the_programs(name, monkeypatch):
    """The engine server (libraries loaded once, one forked process per sentence) gives the programs'
    samples exactly, so the audio cache does not depend on which path made a file."""
    eng = tts.voice(name).engine
    if not HAVE[eng]:
        pytest.skip(f"TTS engine {eng} not installed")
    server = tts_server.server()
    if shutil.which(eng) == f"/usr/bin/{eng}":  # the Debian packages ship the libraries with the programs
        assert server is not None and eng in server.engines, "engine server unavailable: synthesis is slow"
    elif server is None or eng not in server.engines:
        pytest.skip(f"no engine server for {eng} here")
    fast = tts.synthesize(SENTENCE, name, speed=1.07, pitch=0.94)
    monkeypatch.setenv("MBASR_TTS_SERVER", "0")
    assert tts_server.server() is None
    assert np.array_equal(fast, tts.synthesize(SENTENCE, name, speed=1.07, pitch=0.94))


def test_no_state_carries_over_between_sentences():
    """A sentence sounds the same whatever was spoken before it (every sentence starts from a fresh
    engine state), so the audio does not depend on how the work is split between processes."""
    names = [n for n in ("espeak_us_f3", "espeak_nyc_f5", "flite_slt") if HAVE[tts.voice(n).engine]]
    if not names:
        pytest.skip("no TTS engine installed")
    first = {n: tts.synthesize(SENTENCE, n, speed=1.1, pitch=0.95) for n in names}
    for n in reversed(names):
        tts.synthesize("something else entirely, said quickly", n, speed=1.15, pitch=1.08)
    for n in names:
        assert np.array_equal(first[n], tts.synthesize(SENTENCE, n, speed=1.1, pitch=0.95)), n


def test_engine_server_reports_errors():
    if not HAVE["espeak-ng"]:
        pytest.skip("espeak-ng not installed")
    server = tts_server.server()
    if server is None or "espeak-ng" not in server.engines:
        pytest.skip("no engine server here")
    bad = tts.Voice("nobody", "espeak-ng", "xx-no-such-voice", "nobody", "M", "none")
    with pytest.raises(RuntimeError, match="xx-no-such-voice"):
        server.speak(bad, SENTENCE, 1.0, 1.0)
    assert tts.synthesize(SENTENCE, "espeak_us_m").size > 0  # and the server goes on
