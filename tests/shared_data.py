"""The real reference data beside the checkout (``../shared/data``), for the tests that use it.

The files stay where they are; tests read them from there. Outside CI a test whose file
is absent skips, with the path in the reason. Under ``CI=true`` it fails instead: CI
always runs with the reference data beside the clone, so a missing file there means a
broken set-up, and a skip would hide that the real-data checks did not run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tstransfer.devtools.reference_data import (  # noqa: F401  (the tests import them from here)
    LOMAX_KEEP_LIST, PAPER_TEXT, PUBLISHED_RESULTS, REAL_SP500, RO_CRATE_CONTEXTS, SHARED_DATA,
)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def skip_or_fail(message: str, under_ci: str) -> None:
    """Skip the test with ``message``; under ``CI=true``, where everything a test needs is
    installed, fail it instead, saying why (``under_ci``)."""
    if in_ci():
        pytest.fail(f"{message}; under CI=true {under_ci}", pytrace=False)
    pytest.skip(message)


def require(path: Path, what: str) -> Path:
    """``path`` if it exists; otherwise skip the test, or fail it under ``CI=true``."""
    if path.exists():
        return path
    skip_or_fail(f"{what} not found at {path} (see ../shared/data/README.md)",
                 "the shared reference data must be present")
