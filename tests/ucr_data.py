"""Real UCR/UEA datasets for the tests: the ones the aeon 1.6.0 wheel ships in
``aeon/datasets/data/``, extracted by ``make ucr-data`` into ``resources/ucr`` (the wheel
is downloaded by pip as a file and never installed: aeon pins pandas < 3.1 and, through
numba, numpy < 2.4, which this project's pins exclude). Absent, a test skips, or fails
under ``CI=true`` (tests/shared_data.py)."""

from __future__ import annotations

from pathlib import Path

from shared_data import require

UCR_DATA = Path(__file__).resolve().parents[1] / "resources" / "ucr"


def ucr(problem: str) -> Path:
    return require(UCR_DATA / problem, f"UCR/UEA {problem} from the aeon wheel (make ucr-data)")
