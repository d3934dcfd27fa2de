"""Worker processes for building data (speech synthesis), that never outlive the call that started them.

`worker_pool(n)` is a process pool as a context manager: on a normal exit it waits for its workers; on
an exception (a failed job, KeyboardInterrupt, or a SIGTERM the caller turned into an exception) it
stops them at once (terminate, then join), so no worker goes on writing into the work folder. Each
worker also asks Linux for SIGKILL when the process that started it dies (`die_with_parent`, prctl
PR_SET_PDEATHSIG): a caller killed outright (SIGKILL, or SIGTERM with its default action, a notebook
kernel shut down) takes its workers with it, and their engine servers (`mbasr.tools.tts_server`) end
with them. Workers ignore SIGINT: Ctrl-C reaches the whole process group, and the caller alone decides
what it stops.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1  # linux/prctl.h
JOIN_TIMEOUT_S = 10.0


def die_with_parent(parent: int, sig: int = signal.SIGKILL) -> None:
    """Ask Linux to send `sig` to this process when `parent` (its parent) dies, and end now if it
    already has (it may have died before the request). Linux binds the request to the thread that forked
    this process: a parent's main thread lasts as long as the parent. A no-op off Linux."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:
        os._exit(1)


def _init_worker(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the caller's handler, inherited through fork
    die_with_parent(parent)


def n_processes(jobs: int | None) -> int:
    """`jobs` when given, else the cores this process may use."""
    if jobs:
        return jobs
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _stop(ex: ProcessPoolExecutor) -> None:
    """Terminate the pool's workers and wait for them (and for the pool's own thread)."""
    if hasattr(ex, "terminate_workers"):  # Python >= 3.14
        ex.terminate_workers()
    else:
        procs = list((getattr(ex, "_processes", None) or {}).values())
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(JOIN_TIMEOUT_S)
            if p.is_alive():
                p.kill()
                p.join()
    ex.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def worker_pool(n: int) -> Iterator[ProcessPoolExecutor]:
    """A ProcessPoolExecutor of `n` workers (see the module docstring)."""
    # forked (as Python < 3.14 does by default on Linux): the workers are then our children, forked
    # from the thread that runs this block, which outlives them (the death signal's condition)
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
    ex = ProcessPoolExecutor(n, context, initializer=_init_worker, initargs=(os.getpid(),))
    try:
        yield ex
    except BaseException:
        _stop(ex)
        raise
    ex.shutdown(wait=True)
