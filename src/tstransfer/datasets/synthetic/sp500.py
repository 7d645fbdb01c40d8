"""Synthetic S&P 500: a Yahoo-format ``GSPC.csv`` (see :mod:`..sp500`)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...fsutil import atomic_path
from ..base import raw_file_name
from ..sp500 import DEFAULT_FILE, INFO

def write_synthetic(raw: Path, params: Mapping[str, Any], rng: np.random.Generator) -> None:
    """A Yahoo-format CSV of ``params['n_days']`` business days of a geometric random walk.

    ``params`` is the ``synthetic.sp500`` mapping: ``n_days`` (required, trading days
    written, starting 1990-01-02), ``file`` (optional, default ``GSPC.csv``). The walk
    has a small positive drift and volatility that changes slowly (a regime variable),
    so recent closes do carry information about the next one, as in real prices.
    """
    n_days = int(params["n_days"])
    if n_days < 2:
        raise ValueError(f"{INFO.name}: synthetic.n_days must be at least 2, got {n_days}")
    dates = pd.bdate_range("1990-01-02", periods=n_days)
    # Volatility follows a slow AR(1) in log space; daily log-returns ~ N(drift, vol).
    log_vol = np.empty(n_days)
    log_vol[0] = np.log(0.01)
    shocks = rng.normal(0.0, 0.05, n_days)
    for day in range(1, n_days):
        log_vol[day] = 0.98 * log_vol[day - 1] + 0.02 * np.log(0.01) + shocks[day]
    returns = rng.normal(0.0003, 1.0, n_days) * np.exp(log_vol)
    close = 300.0 * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[close[0]], close[:-1]]) * np.exp(rng.normal(0, 0.002, n_days))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.004, n_days)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.004, n_days)))
    volume = rng.integers(10_000_000, 5_000_000_000, n_days)
    frame = pd.DataFrame(
        {
            "Date": dates.strftime("%Y-%m-%d"),
            "Open": open_, "High": high, "Low": low, "Close": close, "Adj Close": close,
            "Volume": volume,
        }
    )
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format="%.6f")
    Path(raw).mkdir(parents=True, exist_ok=True)
    with atomic_path(Path(raw) / raw_file_name(params, DEFAULT_FILE)) as tmp:
        tmp.write_text(buffer.getvalue())
