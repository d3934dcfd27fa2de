"""The data-building worker pool: its workers end with the block that started them, at once when the
block fails (not after the queued jobs), and each asks for a signal when its parent dies."""

from __future__ import annotations

import sys
import time

import psutil
import pytest

from mbasr.data.workers import worker_pool


def _alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def _death_signal(_: int) -> int:
    """The parent-death signal this process asked for (prctl PR_GET_PDEATHSIG)."""
    import ctypes

    sig = ctypes.c_int(0)
    ctypes.CDLL(None).prctl(2, ctypes.byref(sig), 0, 0, 0)
    return sig.value


def test_workers_end_at_once_when_the_block_fails():
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with worker_pool(2) as ex:
            ex.map(time.sleep, [30] * 4)  # 60 s of queued work
            pids = list(ex._processes)
            raise KeyboardInterrupt
    assert len(pids) == 2 and _alive(pids) == []
    assert time.monotonic() - t0 < 10


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_workers_end_with_the_block_and_ask_for_a_death_signal():
    import signal

    with worker_pool(2) as ex:
        assert list(ex.map(_death_signal, range(4))) == [signal.SIGKILL] * 4
        pids = list(ex._processes)
    assert _alive(pids) == []
