"""S&P 500 (^GSPC) daily closes from a Yahoo Finance CSV: next-day close regression.

Raw file: one Yahoo CSV, header ``Date,Open,High,Low,Close,Adj Close,Volume``, one row
per trading day, oldest first (config: ``GSPC.csv``).

Extraction (paper section 2.1.6, the authors' ``preprocess_sp500.py``): keep the rows
dated ``start``..``end`` inclusive and only the ``Close`` column; split the ROWS
chronologically 70/15/15 into train/val/test (``int()`` truncation of 70 % and 15 % of
the row count, as the authors did; the test split takes the rest); inside each split
slide a window of ``window`` consecutive closes one row at a time, the close of the
next row being the label (raw price). Windows therefore never cross a split boundary.

Window count. A split of ``n`` rows holds ``n - window`` windows: every row from the
``window``-th on (0-based) is the label of exactly one window. For the paper's range
(22,834 rows; splits 15,983 / 3,425 / 3,426) that is 15,933 + 3,375 + 3,376 = 22,684
windows = 22,834 - 3 * 50. The paper reports 22,681 = 22,834 - 3 * 51: the authors'
loop ``for i in range(WINDOW_SIZE + 1, len(split))`` takes rows ``i-51 .. i-2`` as
input and row ``i-1`` as label, so the last row of each split (``i = len(split)``) is
never a label -- one window lost per split, three in all. This module keeps those
three windows (see :func:`window_count` and the test on the real file).

Yahoo placeholders. Some Yahoo exports contain rows whose prices are the literal
``null`` (days with no quote). Such a row carries no close, and the windows are meant
to be consecutive *trading* days, so it is dropped before splitting and counted in
``dropped`` (and logged); any other non-numeric or non-positive close is a
:class:`DataError` naming the row's date.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .base import DataError, DatasetInfo, InstanceIndex, RawChunk, extract_setting, raw_file_name

INFO = DatasetInfo(
    name="sp500",
    title="S&P 500",
    domain="finance",
    task="regression",
    channels=1,
    sampling_rate=1.0,  # one sample per trading day
    units="index points (USD)",
)

DEFAULT_FILE = "GSPC.csv"
COLUMNS = ("Date", "Open", "High", "Low", "Close", "Adj Close", "Volume")
# The paper's chronological split of rows (authors: int(0.70 n), int(0.15 n), rest).
TRAIN_FRACTION = 0.70
VAL_FRACTION = 0.15
SPLITS = ("train", "val", "test")
# What Yahoo writes for a day without a quote.
NULL_MARKERS = ("null", "")


# --------------------------------------------------------------------------- params
def _file_name(params: Mapping[str, Any]) -> str:
    """``params['file']`` (optional): the CSV's name inside ``raw``; default ``GSPC.csv``."""
    return raw_file_name(params, DEFAULT_FILE)


def _window(params: Mapping[str, Any]) -> int:
    """``params['window']`` (required): closes per input window (paper: 50)."""
    return extract_setting(params, INFO.name, "window", int)


# Instances the paper's extraction yields from the real data (windows of 50 closes; REFERENCE.md section 2),
# for estimates made before any conversion (tstransfer.cluster_budget).
PAPER_INSTANCES = 22_681


def input_length(params: Mapping[str, Any]) -> int:
    """The model input's length: ``window`` closes."""
    return _window(params)


def _date(value: Any) -> pd.Timestamp:
    date = pd.Timestamp(str(value))
    if pd.isna(date):  # '', 'nan' and 'NaT' parse as "no date"
        raise ValueError("not a date")
    return date


def _date_range(params: Mapping[str, Any]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``params['start']``, ``params['end']`` (required): inclusive ISO dates, in order."""
    start = extract_setting(params, INFO.name, "start", _date)
    end = extract_setting(params, INFO.name, "end", _date)
    if end < start:
        raise ValueError(
            f"{INFO.name}: datasets.{INFO.name}.extract.end {end.date()} is before "
            f"datasets.{INFO.name}.extract.start {start.date()}"
        )
    return start, end


def raw_files(params: Mapping[str, Any]) -> list[str]:
    return [_file_name(params)]


# --------------------------------------------------------------------------- reading
def split_sizes(n_rows: int) -> tuple[int, int, int]:
    """Rows per split for ``n_rows`` chronological rows (authors' ``int()`` truncation)."""
    n_train = int(TRAIN_FRACTION * n_rows)
    n_val = int(VAL_FRACTION * n_rows)
    return n_train, n_val, n_rows - n_train - n_val


def window_count(n_rows: int, window: int) -> int:
    """Windows of ``window`` closes plus a label row in ``n_rows`` consecutive rows."""
    return max(0, n_rows - window)


def _read_closes(path: Path, params: Mapping[str, Any]) -> tuple[pd.DataFrame, dict[str, int]]:
    """The in-range rows (``date``, ``close``) of the CSV, oldest first, and drop counts."""
    start, end = _date_range(params)
    if not path.is_file():
        raise DataError(INFO.name, path, "raw file not found")
    try:
        # Everything as text first: a bad cell must be reported with its date, not as a
        # pandas parser message about a column dtype.
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise DataError(INFO.name, path, f"not a readable CSV ({exc})") from None
    missing = [name for name in ("Date", "Close") if name not in frame.columns]
    if missing:
        raise DataError(
            INFO.name, path,
            f"missing column(s) {', '.join(missing)}; expected a Yahoo CSV with header "
            f"{','.join(COLUMNS)}, got {','.join(map(str, frame.columns))}",
        )
    dates = pd.to_datetime(frame["Date"].str.strip(), format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        row = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise DataError(
            INFO.name, path, f"row {row + 2}: unreadable date {frame['Date'].iloc[row]!r}",
            trace=f"row {row + 2}",
        )
    if not dates.is_monotonic_increasing or dates.duplicated().any():
        bad = int(np.flatnonzero(~(dates.diff().iloc[1:] > pd.Timedelta(0)).to_numpy())[0]) + 1
        raise DataError(
            INFO.name, path, "dates are not strictly increasing (the windows assume "
            "chronological, unique trading days)", trace=str(dates.iloc[bad].date()),
        )
    in_range = ((dates >= start) & (dates <= end)).to_numpy()
    dropped = {}
    outside = int((~in_range).sum())
    if outside:
        dropped[f"rows outside {start.date()}..{end.date()}"] = outside
    text = frame["Close"].str.strip()[in_range]
    dates = dates[in_range]
    is_null = text.str.lower().isin(NULL_MARKERS).to_numpy()
    if is_null.any():
        dropped["rows whose Close is null (Yahoo placeholder for a day without a quote)"] = int(
            is_null.sum()
        )
    text, dates = text[~is_null], dates[~is_null]
    close = pd.to_numeric(text, errors="coerce")
    bad = (close.isna() | ~np.isfinite(close) | (close <= 0)).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            INFO.name, path, f"Close {text.iloc[row]!r} is not a positive number",
            trace=str(dates.iloc[row].date()),
        )
    table = pd.DataFrame({"date": dates.to_numpy(), "close": close.to_numpy(dtype=np.float64)})
    return table, dropped


def _windows(n_rows: int, window: int) -> pd.DataFrame:
    """Per window: split name, first input row and label row (positions in the rows)."""
    parts = []
    offset = 0
    for name, size in zip(SPLITS, split_sizes(n_rows)):
        starts = offset + np.arange(window_count(size, window))
        parts.append(pd.DataFrame({"split": name, "first_row": starts, "label_row": starts + window}))
        offset += size
    return pd.concat(parts, ignore_index=True)


def list_instances(raw: Path, params: Mapping[str, Any], log: logging.Logger) -> InstanceIndex:
    path = Path(raw) / _file_name(params)
    window = _window(params)
    rows, dropped = _read_closes(path, params)
    n_rows = len(rows)
    sizes = split_sizes(n_rows)
    if min(sizes) <= window:
        raise DataError(
            INFO.name, path, f"{n_rows} rows give splits of {sizes} rows; every split needs "
            f"more than window={window} rows to hold a single window",
        )
    windows = _windows(n_rows, window)
    dates = rows["date"].dt.strftime("%Y-%m-%d").to_numpy()
    table = pd.DataFrame(
        {
            # first input day / label day: unique, chronological, readable in errors.
            "key": [f"{dates[a]}/{dates[b]}" for a, b in zip(windows["first_row"], windows["label_row"])],
            "label": rows["close"].to_numpy()[windows["label_row"].to_numpy()],
            "split": windows["split"],
            "first_row": windows["first_row"],
            "label_row": windows["label_row"],
        }
    )
    counts = [window_count(size, window) for size in sizes]
    log.info(
        "%s: %d rows %s..%s -> split rows %d/%d/%d -> windows %d/%d/%d = %d "
        "(rows - 3 x %d; the authors' loop gives rows - 3 x %d, one window fewer per split)",
        INFO.name, n_rows, dates[0], dates[-1], *sizes, *counts, sum(counts), window, window + 1,
    )
    return InstanceIndex(table=table, dropped=dropped, files=[path])


def read_chunks(
    raw: Path, params: Mapping[str, Any], index: InstanceIndex, chunk_size: int
) -> Iterator[RawChunk]:
    path = Path(raw) / _file_name(params)
    window = _window(params)
    rows, _ = _read_closes(path, params)
    closes = rows["close"].to_numpy()
    table = index.table.reset_index(drop=True)
    first = table["first_row"].to_numpy()
    label_row = table["label_row"].to_numpy()
    if len(table) and label_row.max() >= len(closes):
        raise DataError(INFO.name, path, "the file changed since the instances were listed")
    offsets = np.arange(window)
    for lo in range(0, len(table), chunk_size):
        hi = min(lo + chunk_size, len(table))
        waveforms = closes[first[lo:hi, None] + offsets][:, :, None]
        yield RawChunk(
            waveforms=waveforms,
            labels=closes[label_row[lo:hi]],
            keys=table["key"].iloc[lo:hi].tolist(),
            file=str(path),
        )
