"""Logging set-up shared by the workflow scripts and the command-line entry points."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup(log_file: str | Path | None = None, level: int = logging.INFO) -> logging.Logger:
    """Send log records to ``log_file`` (the rule's ``log:``) or to stderr; return the root logger.

    Python warnings are routed into the log too, so nothing a job says is lost.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(log_file, mode="w")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    return root


class logged_errors:  # noqa: N801 - used as a context manager, reads like a statement
    """Context manager: an exception is written to the log with its traceback, then re-raised.

    Snakemake points the user at the rule's log on failure; the reason must be in it.
    """

    def __init__(self, logger: logging.Logger | None = None):
        self.logger = logger or logging.getLogger("tstransfer")

    def __enter__(self) -> logging.Logger:
        return self.logger

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is not None:
            self.logger.error("failed: %s", exc, exc_info=(exc_type, exc, tb))
        return False
