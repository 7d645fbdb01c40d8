"""Progress bars on stderr, for the two long data steps: converting and downloading.

A conversion's bar shows only on a terminal (its log gets the log lines alone); a
download's bar goes into a Snakemake log file too, as a plain line now and then. tqdm is
imported when a bar is made: the analysis and training parts import the store's readers
but never make a bar (and their extras do not install tqdm).
"""

from __future__ import annotations

import sys
from typing import IO

# A download bar's refresh rate. On a terminal it can be lively; in a Snakemake log
# file every refresh becomes a line, so one every half minute keeps the log readable.
TTY_MININTERVAL = 0.5
LOG_MININTERVAL = 30.0
# Seconds before a bar first appears: quick downloads (small CSVs, verified files) stay
# out of the logs, long ones get a bar.
PROGRESS_DELAY = 2.0


def terminal_bar(desc: str, total: int, unit: str = "instance"):
    """A progress bar on stderr when it is a terminal; a no-op bar otherwise (logs get the
    log lines only). Updated per chunk, never per instance."""
    from tqdm import tqdm

    stream = sys.stderr
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=stream, mininterval=0.5,
                disable=not (hasattr(stream, "isatty") and stream.isatty()), leave=True, dynamic_ncols=True)


class _LineStream:
    """Turns tqdm's carriage-return refreshes into separate lines for log files."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip("\n")
        if line.strip():
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def byte_bar(name: str, *, total: int | None, initial: int, enabled: bool):
    """A download's bar in bytes, from ``initial`` (a resumed part file) of ``total``: a
    live bar on a terminal, a plain line every LOG_MININTERVAL seconds in a log file, and
    none for a download over within PROGRESS_DELAY seconds."""
    from tqdm import tqdm

    stream = sys.stderr
    is_tty = hasattr(stream, "isatty") and stream.isatty()
    return tqdm(
        total=total, initial=initial, desc=name, unit="B", unit_scale=True,
        unit_divisor=1024, disable=not enabled, leave=True,
        file=stream if is_tty else _LineStream(stream),
        mininterval=TTY_MININTERVAL if is_tty else LOG_MININTERVAL, delay=PROGRESS_DELAY,
        ascii=not is_tty,
    )
