"""Resumable, checksum-verified downloads of the raw data sets.

``fetch`` downloads one URL to one file: the Snakemake download rule calls it for each
``{name, url, size, sha256}`` entry of a dataset's ``files`` (and extract downloads) in
the config, whose schema checks the entries. The guarantees the rule relies on:

* Data is written to ``<dest>.part`` and renamed to ``dest`` only after the size (when
  known) and the sha256 (when known) have been checked, so ``dest`` never holds a
  truncated or corrupt file.
* An interrupted download (a dropped connection inside one call, or a killed job) is
  continued from the part file's size with an HTTP ``Range`` request. Servers that ignore
  Range (200 instead of 206) make it start over from zero; a 416 means the part file is
  already complete or is longer than the file (then it starts over).
* The sha256 is computed while the bytes arrive, so a file of tens of gigabytes is read
  from disk at most once more (only the part that existed before a resume is re-read).
* The checksum is recorded beside the file as ``<dest>.sha256`` (``sha256sum`` format).
  Where the source publishes no checksum, the first download's record becomes the
  expected value of every later run, so a changed or tampered file is detected.
* An existing ``dest`` is never downloaded over: it is verified and kept, or it is
  reported as not matching and left for the user to inspect.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from pathlib import Path
from typing import IO, Any

import requests
from tqdm import tqdm

from tstransfer.fsutil import atomic_path, sha256_file
from tstransfer.progressbar import byte_bar
from tstransfer.httputil import (
    NETWORK_ERRORS,
    RETRYABLE_STATUSES,
    int_or_none,
    new_session,
    parse_content_range,
    retry_after_seconds,
)

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_BYTES = 1024 * 1024
DEFAULT_RETRIES = 8
DEFAULT_TIMEOUT = 60.0
DEFAULT_BACKOFF = 2.0
MAX_BACKOFF = 120.0

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class DownloadError(RuntimeError):
    """A file could not be downloaded or verified."""


class ChecksumMismatch(DownloadError):
    """The sha256 of a downloaded or existing file is not the expected one."""


class SizeMismatch(DownloadError):
    """The size of a downloaded or existing file is not the expected one."""


class _Retryable(Exception):
    """An attempt failed in a way that a later attempt may not (used inside ``fetch``)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after




def part_path(dest: str | os.PathLike) -> Path:
    """Where ``fetch`` keeps the bytes of ``dest`` while they arrive."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def record_path(dest: str | os.PathLike) -> Path:
    """The checksum record of ``dest`` (``<dest>.sha256``)."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".sha256")


def read_recorded_sha256(dest: str | os.PathLike) -> str | None:
    """The sha256 recorded beside ``dest`` by an earlier download, or None if none is.

    Raises DownloadError if the record exists but is not a ``sha256sum`` line.
    """
    path = record_path(dest)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    fields = text.split()
    value = fields[0].lower() if fields else ""
    if not _SHA256_RE.match(value):
        raise DownloadError(
            f"{path}: malformed checksum record {text[:100]!r}; expected "
            "'<64 hex digits>  <file name>' (delete it to record a fresh one)"
        )
    return value


def write_recorded_sha256(dest: str | os.PathLike, hexdigest: str) -> Path:
    """Record ``hexdigest`` beside ``dest`` as ``<hex>  <name>\\n`` (atomically)."""
    dest = Path(dest)
    path = record_path(dest)
    with atomic_path(path) as tmp:
        tmp.write_text(f"{hexdigest}  {dest.name}\n")
    return path


def fetch(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    size: int | None = None,
    log: logging.Logger | None = None,
    progress: bool = True,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    retries: int = DEFAULT_RETRIES,
    timeout: float = DEFAULT_TIMEOUT,
    backoff: float = DEFAULT_BACKOFF,
    session: requests.Session | None = None,
) -> str:
    """Download ``url`` to ``dest``, verify it, record its sha256; return the sha256 hex.

    ``sha256`` and ``size`` are the published values (None: not published). Without a
    published sha256, the one recorded in ``<dest>.sha256`` by the first download is
    expected. ``retries`` bounds the consecutive failed attempts (connection errors,
    timeouts, 5xx/429) that made no progress; each waits ``backoff * 2**k`` seconds
    (at most MAX_BACKOFF). ``timeout`` is the connect and the read timeout in seconds.

    If ``dest`` already exists it is verified instead of downloaded: nothing is fetched
    when it matches, and ChecksumMismatch/SizeMismatch is raised (the file is kept)
    when it does not. A file with neither a published nor a recorded checksum is
    accepted and its checksum recorded.

    Raises ChecksumMismatch or SizeMismatch (the part file is deleted, nothing is left
    under ``dest``) or DownloadError (HTTP error, retries exhausted: the part file is
    kept so that the next call resumes it).
    """
    log = log or logger
    dest = Path(dest)
    _check_arguments(dest.name, size=size, chunk_bytes=chunk_bytes, retries=retries)
    expected, source = _expected_sha256(sha256, dest, log)
    if dest.exists():
        return _verify_existing(dest, expected, source, size, log, chunk_bytes)

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _PartFile(part_path(dest), chunk_bytes)
    log.info("downloading %s -> %s (expected size %s, sha256 %s)", url, dest,
             "unknown" if size is None else f"{size} bytes",
             f"{expected} ({source})" if expected else "unknown: will be recorded")
    own_session = session is None
    session = session or new_session()
    try:
        part.open_existing(size, log, dest.name)
        _download(session, url, part, dest.name, size=size, log=log, progress=progress,
                  chunk_bytes=chunk_bytes, retries=retries, timeout=timeout, backoff=backoff)
    except (SizeMismatch, ChecksumMismatch):
        part.discard()
        raise
    finally:
        if own_session:
            session.close()
    return _keep(part, dest, url, size=size, expected=expected, source=source, log=log)


def _check_arguments(name: str, *, size: int | None, chunk_bytes: int, retries: int) -> None:
    if chunk_bytes <= 0:
        raise ValueError(f"{name}: chunk_bytes must be positive, got {chunk_bytes}")
    if retries < 0:
        raise ValueError(f"{name}: retries must be >= 0, got {retries}")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise ValueError(f"{name}: size must be a non-negative integer or None, got {size!r}")


def _expected_sha256(sha256: str | None, dest: Path, log: logging.Logger) -> tuple[str | None, str | None]:
    """``(expected sha256, "configured" | "recorded")``: the published checksum, else the
    one recorded by an earlier download; ``(None, None)`` when there is neither."""
    published = _normalise_sha256(sha256, dest.name)
    recorded = read_recorded_sha256(dest)
    if published and recorded and published != recorded:
        log.warning(
            "%s: recorded checksum %s differs from the configured %s; the configured one is "
            "expected and the record will be rewritten",
            dest.name, recorded, published,
        )
    expected = published or recorded
    return expected, "configured" if published else "recorded" if recorded else None


def _keep(part: _PartFile, dest: Path, url: str, *, size: int | None, expected: str | None,
          source: str | None, log: logging.Logger) -> str:
    """Check the complete part file's size and sha256, record the sha256 and rename the
    part file to ``dest``; a mismatch deletes the part file. Returns the sha256."""
    actual = part.hasher.hexdigest()
    if size is not None and part.offset != size:
        part.discard()
        raise SizeMismatch(
            f"{dest.name}: size mismatch: expected {size} bytes, downloaded {part.offset} "
            f"bytes from {url}; the partial file was deleted"
        )
    if expected and actual != expected:
        part.discard()
        raise ChecksumMismatch(
            f"{dest.name}: sha256 mismatch: expected {expected} ({source}), got {actual} "
            f"for the {part.offset} bytes downloaded from {url}; the downloaded file was deleted"
        )
    # The record goes first: a crash before the rename leaves a record and no file, and
    # the next run downloads again and checks against that record.
    write_recorded_sha256(dest, actual)
    os.replace(part.path, dest)
    log.info("done: %s (%d bytes)", dest, part.offset)
    verdict = f"matches the {source} checksum" if expected else "first download: recorded"
    log.info("sha256 %s  %s (%s in %s)", actual, dest.name, verdict, record_path(dest).name)
    return actual


# --------------------------------------------------------------------------- internals


class _PartFile:
    """The ``.part`` file with the running sha256 and length of its contents."""

    def __init__(self, path: Path, chunk_bytes: int) -> None:
        self.path = path
        self.chunk_bytes = chunk_bytes
        self.hasher = hashlib.sha256()
        self.offset = 0

    def open_existing(self, size: int | None, log: logging.Logger, name: str) -> None:
        """Adopt a part file left by an earlier call: hash what it holds, once."""
        if not self.path.exists():
            return
        length = self.path.stat().st_size
        if size is not None and length > size:
            log.warning("%s: part file holds %d bytes, more than the expected %d; starting over",
                        name, length, size)
            self.restart()
            return
        if length:
            log.info("%s: resuming at byte %d (hashing the %d bytes already downloaded)",
                     name, length, length)
            self.hasher, self.offset = _hash_prefix(self.path, self.chunk_bytes)

    def append(self, handle: IO[bytes], block: bytes) -> None:
        handle.write(block)
        # Only after the write succeeded, so that hash and file never disagree.
        self.hasher.update(block)
        self.offset += len(block)

    def restart(self) -> None:
        self.path.write_bytes(b"")
        self.hasher = hashlib.sha256()
        self.offset = 0

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def _hash_prefix(path: Path, chunk_bytes: int) -> tuple[Any, int]:
    """sha256 object and byte count over the whole of ``path`` (to resume hashing)."""
    hasher = hashlib.sha256()
    length = 0
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            hasher.update(block)
            length += len(block)
    return hasher, length


def _download(
    session: requests.Session,
    url: str,
    part: _PartFile,
    name: str,
    *,
    size: int | None,
    log: logging.Logger,
    progress: bool,
    chunk_bytes: int,
    retries: int,
    timeout: float,
    backoff: float,
) -> None:
    """Fill ``part`` with the whole of ``url``, resuming and retrying as needed."""
    bar = byte_bar(name, total=size, initial=part.offset, enabled=progress)
    failures = 0
    try:
        while True:
            offset_before = part.offset
            try:
                if _attempt(session, url, part, name, size=size, log=log, bar=bar,
                            chunk_bytes=chunk_bytes, timeout=timeout):
                    return
                continue  # the attempt chose to start over (Range not honoured etc.)
            except NETWORK_ERRORS as exc:
                reason = f"{type(exc).__name__}: {exc}"
                retry_after = None
            except _Retryable as exc:
                reason, retry_after = str(exc), exc.retry_after
            # Progress resets the count: only attempts that got nowhere exhaust it, so a
            # long download over a flaky link is not abandoned after a few hiccups.
            failures = 1 if part.offset > offset_before else failures + 1
            if failures > retries:
                raise DownloadError(
                    f"{name}: giving up after {failures} failed attempts without progress "
                    f"({reason}); {part.offset} bytes are kept in {part.path} and the next "
                    "run resumes from there"
                )
            delay = min(backoff * 2 ** (failures - 1), MAX_BACKOFF)
            if retry_after is not None:
                delay = max(delay, min(retry_after, MAX_BACKOFF))
            log.warning("%s: attempt failed at byte %d (%s); retry %d/%d in %.1f s",
                        name, part.offset, reason, failures, retries, delay)
            time.sleep(delay)
    finally:
        bar.close()


def _attempt(
    session: requests.Session,
    url: str,
    part: _PartFile,
    name: str,
    *,
    size: int | None,
    log: logging.Logger,
    bar: tqdm,
    chunk_bytes: int,
    timeout: float,
) -> bool:
    """One request. True: the part file is complete; False: try again at once from
    ``part.offset`` (which the attempt may have reset to zero). Raises _Retryable or a
    network error for a retry after a pause, DownloadError for a permanent failure."""
    # identity: the stored bytes must be the file's bytes (a .tar.gz served with
    # Content-Encoding: gzip would otherwise be unpacked on the fly by requests).
    headers = {"Accept-Encoding": "identity"}
    if part.offset:
        headers["Range"] = f"bytes={part.offset}-"
        log.info("%s: requesting bytes %d- (resume)", name, part.offset)
    with session.get(url, headers=headers, stream=True, timeout=(timeout, timeout)) as response:
        if response.status_code == 416 and part.offset:
            return _range_not_satisfiable(response, part, name, size=size, log=log, bar=bar)
        _check_status(response, name, url)
        extent = _body_extent(response, part, name, size=size, log=log, bar=bar)
        if extent is None:
            return False
        end_offset, total = extent
        if size is not None and total is not None and total != size:
            raise SizeMismatch(f"{name}: size mismatch: expected {size} bytes, the server "
                               f"reports {total} bytes for {url}")
        if total is not None and bar.total != total:
            bar.total = total  # shown at the next update (refreshing now would bypass delay)

        with open(part.path, "ab") as handle:
            for block in response.raw.stream(chunk_bytes, decode_content=False):
                part.append(handle, block)
                bar.update(len(block))
                if size is not None and part.offset > size:
                    raise SizeMismatch(f"{name}: size mismatch: expected {size} bytes, the "
                                       f"server sent more ({part.offset} bytes so far) from {url}")
        if end_offset is not None and part.offset < end_offset:
            # urllib3 normally raises on a short body; this covers servers that close
            # without a Content-Length it can enforce.
            raise _Retryable(f"connection closed at byte {part.offset} of {end_offset}")
        return True


def _range_not_satisfiable(response: requests.Response, part: _PartFile, name: str, *,
                           size: int | None, log: logging.Logger, bar: tqdm) -> bool:
    """A resume answered 416: True when the part file already holds the whole file, else
    the part file starts over (False: try again at once)."""
    total = parse_content_range(response.headers.get("Content-Range"))[2]
    if total is not None and total == part.offset:
        log.info("%s: server has no bytes past %d (HTTP 416): the part file is complete",
                 name, part.offset)
        return True
    log.warning("%s: server rejected Range bytes=%d- (HTTP 416, file is %s bytes); "
                "starting over", name, part.offset, "?" if total is None else total)
    part.restart()
    bar.reset(total=size)
    return False


def _check_status(response: requests.Response, name: str, url: str) -> None:
    """Raise _Retryable for a status worth retrying, DownloadError for any other that is
    not 200 or 206, or for an HTML page in place of the file."""
    status = response.status_code
    if status in RETRYABLE_STATUSES:
        raise _Retryable(f"HTTP {status} {response.reason}",
                         retry_after_seconds(response.headers.get("Retry-After")))
    if status not in (200, 206):
        raise DownloadError(f"{name}: HTTP {status} {response.reason} from {url} "
                            f"(final URL {response.url})")
    _reject_html(response, name, url)


def _body_extent(response: requests.Response, part: _PartFile, name: str, *, size: int | None,
                 log: logging.Logger, bar: tqdm) -> tuple[int | None, int | None] | None:
    """``(offset after the body, the file's total size)`` of a 200 or 206 answer, None
    where unknown; None instead when a 206 starts elsewhere than asked (the part file then
    starts over: try again at once). A 200 to a resume restarts the part file from zero."""
    if response.status_code == 206:
        start, end, total = parse_content_range(response.headers.get("Content-Range"))
        if start != part.offset:
            log.warning("%s: asked for bytes %d-, server sent %s; starting over",
                        name, part.offset, response.headers.get("Content-Range"))
            part.restart()
            bar.reset(total=size)
            return None
        return None if end is None else end + 1, total
    if part.offset:
        log.warning("%s: server ignored the Range request (HTTP 200); restarting from "
                    "zero and discarding the %d bytes of the part file", name, part.offset)
        part.restart()
        bar.reset(total=size)
    total = int_or_none(response.headers.get("Content-Length"))
    return total, total


def _verify_existing(dest: Path, expected: str | None, source: str | None, size: int | None,
                     log: logging.Logger, chunk_bytes: int) -> str:
    hint = f"it was kept; move or delete {dest} to download it again"
    length = dest.stat().st_size
    if size is not None and length != size:
        raise SizeMismatch(
            f"{dest.name}: existing file has {length} bytes, expected {size}; {hint}")
    actual = sha256_file(dest, chunk_bytes)
    if expected is None:
        log.warning("%s: already present with no published or recorded checksum; "
                    "recording its sha256 %s and not downloading", dest.name, actual)
    elif actual != expected:
        raise ChecksumMismatch(f"{dest.name}: existing file's sha256 is {actual}, expected "
                               f"{expected} ({source}); {hint}")
    else:
        log.info("%s: already present and verified (sha256 %s matches the %s checksum); "
                 "nothing downloaded", dest.name, actual, source)
    if read_recorded_sha256(dest) != actual:
        write_recorded_sha256(dest, actual)
    return actual


def _normalise_sha256(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    if not _SHA256_RE.match(text):
        raise ValueError(f"{name}: sha256 must be 64 hex digits or null, got {value!r}")
    return text


def _reject_html(response: requests.Response, name: str, url: str) -> None:
    # A share link that points at a landing or login page answers 200 with HTML; without
    # a published checksum that page would otherwise be recorded as the data set.
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type == "text/html" and not name.lower().endswith((".html", ".htm")):
        raise DownloadError(f"{name}: {url} answered with an HTML page (final URL "
                            f"{response.url}), not the file; the link probably needs updating")
