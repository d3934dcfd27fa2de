"""Progress bars that an executed notebook can keep.

papermill saves every refresh of a tqdm bar as its own stderr output (one base-model notebook held about
1,200), and `tqdm.auto` warns "IProgress not found" in a kernel without ipywidgets. Every bar of the
package is made by `bar`: on a terminal it is tqdm's own live bar; anywhere else (a notebook kernel, a log
file, a Snakemake job) it writes only its final state, one line when it closes.
"""

from __future__ import annotations

import io
import sys

from tqdm import tqdm


class FinalLine(io.TextIOBase):
    """A stream for tqdm that keeps only the latest state of the current line (tqdm redraws with `\\r`)
    and writes a line to stderr when the bar ends it; stderr is looked up at each write, because a kernel
    replaces it after import."""

    def __init__(self):
        self.pending = ""

    def write(self, s: str) -> int:
        *done, rest = (self.pending + s).split("\n")
        for line in done:
            final = line.rsplit("\r", 1)[-1].rstrip()
            if final:
                sys.stderr.write(final + "\n")
        self.pending = rest.rsplit("\r", 1)[-1]
        return len(s)

    def flush(self) -> None:
        sys.stderr.flush()


def interactive() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def bar(iterable=None, **kw) -> tqdm:
    """`tqdm(iterable, **kw)`, live on a terminal, else one final line (a refresh interval so long that
    only the first and the closing states are drawn, both into `FinalLine`)."""
    if not interactive():
        kw |= {"file": FinalLine(), "mininterval": float("inf"), "ascii": True}
    return tqdm(iterable, **kw)
