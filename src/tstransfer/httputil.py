"""HTTP details of a download: the session, what counts as a network failure, the
statuses worth retrying and the parsing of the headers that ranges and retries need.
"""

from __future__ import annotations

import re

import requests
import urllib3

from tstransfer import __version__

# Statuses that mean "try again later" rather than "this URL is wrong".
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

CONTENT_RANGE_RE = re.compile(r"^bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)$")

# Network failures worth retrying. Deliberately not OSError in general: a full disk
# must fail at once instead of being retried.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.HTTPError,  # ProtocolError, ReadTimeoutError from raw reads
    ConnectionError,
    TimeoutError,
)


def new_session() -> requests.Session:
    """A requests session that names this package in its User-Agent."""
    session = requests.Session()
    session.headers["User-Agent"] = f"tstransfer/{__version__} (python-requests)"
    return session


def parse_content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """(first byte, last byte, total) of a Content-Range header; None where absent."""
    match = CONTENT_RANGE_RE.match((value or "").strip())
    if not match:
        return None, None, None
    first, last, total = match.groups()
    return (int_or_none(first), int_or_none(last),
            None if total in (None, "*") else int(total))


def int_or_none(value: str | None) -> int | None:
    """A header's integer; None when it is absent or not an integer."""
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header's delay in seconds (its HTTP-date form is not read: None)."""
    number = int_or_none(value)
    return float(number) if number is not None and number >= 0 else None
