"""tstransfer.download against a local HTTP server (127.0.0.1, never the internet)."""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import random
from pathlib import Path

import pytest

from tstransfer import download, progressbar
from tstransfer.download import (
    ChecksumMismatch,
    DownloadError,
    SizeMismatch,
    fetch,
    part_path,
    read_recorded_sha256,
    record_path,
)

try:  # tests/ is on sys.path as a rootdir-less folder; as a package if one adds __init__
    from httpserver import serve
except ImportError:  # pragma: no cover
    from tests.httpserver import serve

NAME = "chunk1.hdf5"
DATA = random.Random(20221025).randbytes(200_000)
DATA_SHA = hashlib.sha256(DATA).hexdigest()
# Small chunks so that a 200 kB file still arrives in many blocks; no waiting between retries.
FAST = dict(progress=False, chunk_bytes=4096, backoff=0.0, timeout=5)


@pytest.fixture
def server():
    with serve() as running:
        running.files[NAME] = DATA
        yield running


def leftovers(folder):
    """Files in ``folder`` other than the final file and its checksum record."""
    return sorted(p.name for p in folder.iterdir() if p.name not in (NAME, NAME + ".sha256"))


def test_success_records_checksum(server, tmp_path):
    dest = tmp_path / NAME
    assert fetch(server.url(NAME), dest, **FAST) == DATA_SHA
    assert dest.read_bytes() == DATA
    assert record_path(dest).read_text() == f"{DATA_SHA}  {NAME}\n"
    assert leftovers(tmp_path) == []
    assert server.range_headers() == [None]
    assert server.requests[0].headers["accept-encoding"] == "identity"


def test_published_checksum_and_size_accepted(server, tmp_path):
    dest = tmp_path / "sub" / NAME  # missing parent folders are created
    digest = fetch(server.url(NAME), dest, sha256=DATA_SHA.upper(), size=len(DATA), **FAST)
    assert digest == DATA_SHA
    assert dest.read_bytes() == DATA
    assert read_recorded_sha256(dest) == DATA_SHA


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    dest = tmp_path / NAME
    wrong = "0" * 64
    with pytest.raises(ChecksumMismatch, match=wrong) as error:
        fetch(server.url(NAME), dest, sha256=wrong, **FAST)
    message = str(error.value)
    assert NAME in message and wrong in message and DATA_SHA in message
    assert not dest.exists() and not part_path(dest).exists() and not record_path(dest).exists()


def test_dropped_connection_resumes_with_range(server, tmp_path, monkeypatch):
    server.behaviour.drop_after = 50_000
    prefix_hashes = []
    real_hash_prefix = download._hash_prefix
    monkeypatch.setattr(download, "_hash_prefix",
                        lambda *a: prefix_hashes.append(a) or real_hash_prefix(*a))
    dest = tmp_path / NAME
    assert fetch(server.url(NAME), dest, sha256=DATA_SHA, retries=2, **FAST) == DATA_SHA
    assert dest.read_bytes() == DATA
    assert server.range_headers() == [None, "bytes=50000-"]
    # Within one call the running hash carries on: the part file is never re-read.
    assert prefix_hashes == []
    assert leftovers(tmp_path) == []


def test_interrupted_call_is_resumed_by_the_next_call(server, tmp_path, monkeypatch):
    server.behaviour.drop_after = 50_000
    dest = tmp_path / NAME
    with pytest.raises(DownloadError, match=NAME):
        fetch(server.url(NAME), dest, retries=0, **FAST)
    assert not dest.exists()
    assert part_path(dest).read_bytes() == DATA[:50_000]

    hashed = []
    real_hash_prefix = download._hash_prefix
    def counting_hash_prefix(path, chunk_bytes):
        hashed.append(path.stat().st_size)
        return real_hash_prefix(path, chunk_bytes)

    monkeypatch.setattr(download, "_hash_prefix", counting_hash_prefix)
    assert fetch(server.url(NAME), dest, sha256=DATA_SHA, **FAST) == DATA_SHA
    assert dest.read_bytes() == DATA
    assert server.range_headers() == [None, "bytes=50000-"]
    assert hashed == [50_000]  # only the existing prefix is read back, once
    assert leftovers(tmp_path) == []


def test_resume_through_a_redirect(server, tmp_path):
    # Link shorteners (the STEAD URLs) redirect; the Range header must survive it.
    server.redirects["chunk1"] = NAME
    server.behaviour.drop_after, server.behaviour.drop_requests = 50_000, 2  # 2nd: the file
    dest = tmp_path / NAME
    assert fetch(server.url("chunk1"), dest, sha256=DATA_SHA, **FAST) == DATA_SHA
    assert [r.path for r in server.requests] == ["/chunk1", f"/{NAME}", "/chunk1", f"/{NAME}"]
    assert server.range_headers() == [None, None, "bytes=50000-", "bytes=50000-"]


def test_content_encoding_is_not_undone(server, tmp_path):
    # A .tar.gz mislabelled "Content-Encoding: gzip" must be stored as served, not unpacked.
    packed = gzip.compress(DATA, mtime=0)
    server.files["speech.tar.gz"] = packed
    server.behaviour.content_encoding = "gzip"
    dest = tmp_path / "speech.tar.gz"
    assert fetch(server.url("speech.tar.gz"), dest, size=len(packed), **FAST) \
        == hashlib.sha256(packed).hexdigest()
    assert dest.read_bytes() == packed


def test_retries_are_bounded(server, tmp_path):
    # Serving normally after 20 refusals turns an unbounded loop into a failed assertion.
    server.behaviour.status, server.behaviour.status_requests = 503, 20
    with pytest.raises(DownloadError, match=rf"{NAME}.*3 failed attempts.*HTTP 503"):
        fetch(server.url(NAME), tmp_path / NAME, retries=2, **FAST)
    assert len(server.requests) == 3
    assert not (tmp_path / NAME).exists()


def test_transient_server_error_is_retried(server, tmp_path):
    server.behaviour.status, server.behaviour.status_requests = 503, 2
    assert fetch(server.url(NAME), tmp_path / NAME, retries=2, **FAST) == DATA_SHA
    assert len(server.requests) == 3


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.behaviour.ignore_range = True
    dest = tmp_path / NAME
    part_path(dest).write_bytes(b"stale bytes from another attempt")
    assert fetch(server.url(NAME), dest, **FAST) == DATA_SHA
    assert server.range_headers() == ["bytes=32-"]
    assert dest.read_bytes() == DATA  # not the stale prefix followed by the whole file


def test_complete_part_file_answered_416(server, tmp_path):
    dest = tmp_path / NAME
    part_path(dest).write_bytes(DATA)
    assert fetch(server.url(NAME), dest, sha256=DATA_SHA, **FAST) == DATA_SHA
    assert server.range_headers() == [f"bytes={len(DATA)}-"]
    assert dest.read_bytes() == DATA


def test_part_file_longer_than_remote_file_starts_over(server, tmp_path):
    dest = tmp_path / NAME
    part_path(dest).write_bytes(DATA + b"junk")
    assert fetch(server.url(NAME), dest, **FAST) == DATA_SHA
    assert server.range_headers() == [f"bytes={len(DATA) + 4}-", None]
    assert dest.read_bytes() == DATA


def test_416_without_content_range_starts_over(server, tmp_path):
    server.behaviour.bare_416 = True
    dest = tmp_path / NAME
    part_path(dest).write_bytes(DATA)
    assert fetch(server.url(NAME), dest, **FAST) == DATA_SHA
    assert server.range_headers() == [f"bytes={len(DATA)}-", None]


@pytest.mark.parametrize("size", [len(DATA) + 1, len(DATA) - 1])
def test_size_mismatch_leaves_nothing(server, tmp_path, size):
    dest = tmp_path / NAME
    with pytest.raises(SizeMismatch, match=str(size)) as error:
        fetch(server.url(NAME), dest, size=size, **FAST)
    message = str(error.value)
    assert NAME in message and str(size) in message and str(len(DATA)) in message
    assert not dest.exists() and not part_path(dest).exists()


def test_size_mismatch_without_content_length(server, tmp_path):
    # With no length announced, the excess is noticed while streaming, not after it.
    server.behaviour.no_length = True
    dest = tmp_path / NAME
    with pytest.raises(SizeMismatch, match=r"expected 1000 bytes.*sent more"):
        fetch(server.url(NAME), dest, size=1000, **FAST)
    assert not dest.exists() and not part_path(dest).exists()


def test_success_without_content_length(server, tmp_path):
    server.behaviour.no_length = True
    assert fetch(server.url(NAME), tmp_path / NAME, size=len(DATA), **FAST) == DATA_SHA
    assert (tmp_path / NAME).read_bytes() == DATA


def test_existing_verified_file_is_not_downloaded(server, tmp_path, caplog):
    dest = tmp_path / NAME
    dest.write_bytes(DATA)
    with caplog.at_level(logging.INFO, logger="tstransfer.download"):
        assert fetch(server.url(NAME), dest, sha256=DATA_SHA, size=len(DATA), **FAST) == DATA_SHA
    assert server.requests == []
    assert "nothing downloaded" in caplog.text
    assert read_recorded_sha256(dest) == DATA_SHA


def test_existing_file_not_matching_config_is_kept_and_reported(server, tmp_path):
    dest = tmp_path / NAME
    dest.write_bytes(b"a user's own file")
    with pytest.raises(ChecksumMismatch, match=NAME) as error:
        fetch(server.url(NAME), dest, sha256=DATA_SHA, **FAST)
    assert DATA_SHA in str(error.value)
    assert dest.read_bytes() == b"a user's own file"
    assert server.requests == []


def test_recorded_checksum_used_on_second_run_and_tampering_detected(server, tmp_path):
    dest = tmp_path / NAME
    fetch(server.url(NAME), dest, **FAST)  # no published checksum: first run records it
    assert len(server.requests) == 1

    assert fetch(server.url(NAME), dest, **FAST) == DATA_SHA
    assert len(server.requests) == 1  # verified against the record, not downloaded

    tampered = bytearray(DATA)
    tampered[1234] ^= 0xFF
    dest.write_bytes(bytes(tampered))
    with pytest.raises(ChecksumMismatch, match=DATA_SHA) as error:
        fetch(server.url(NAME), dest, **FAST)
    message = str(error.value)
    assert NAME in message and DATA_SHA in message
    assert hashlib.sha256(tampered).hexdigest() in message
    assert dest.read_bytes() == bytes(tampered)  # the user's file is not replaced
    assert len(server.requests) == 1


def test_recorded_checksum_catches_changed_remote_file(server, tmp_path):
    dest = tmp_path / NAME
    fetch(server.url(NAME), dest, **FAST)
    dest.unlink()
    server.files[NAME] = DATA[::-1]  # the source now serves something else
    with pytest.raises(ChecksumMismatch, match=DATA_SHA):
        fetch(server.url(NAME), dest, **FAST)
    assert not dest.exists() and not part_path(dest).exists()
    assert read_recorded_sha256(dest) == DATA_SHA  # the first download's record stands


def test_http_error_is_not_retried(server, tmp_path):
    with pytest.raises(DownloadError, match=r"missing\.bin: HTTP 404"):
        fetch(server.url("missing.bin"), tmp_path / "missing.bin", retries=3, **FAST)
    assert len(server.requests) == 1
    assert list(tmp_path.iterdir()) == []


def test_html_landing_page_is_rejected(server, tmp_path):
    server.behaviour.content_type = "text/html; charset=utf-8"
    with pytest.raises(DownloadError, match="HTML page"):
        fetch(server.url(NAME), tmp_path / NAME, **FAST)
    assert not (tmp_path / NAME).exists() and not record_path(tmp_path / NAME).exists()


def test_malformed_record_is_reported(server, tmp_path):
    dest = tmp_path / NAME
    record_path(dest).write_text("not a checksum\n")
    with pytest.raises(DownloadError, match=r"chunk1\.hdf5\.sha256: malformed"):
        fetch(server.url(NAME), dest, **FAST)
    assert server.requests == []


def test_fetch_each_configured_file(server, tmp_path):
    """A dataset's ``files`` entries, fetched one by one as the download rule's script does."""
    server.files["chunk1.csv"] = b"trace_name,p_arrival\nA,1\n"
    files = [
        {"name": NAME, "url": server.url(NAME), "size": len(DATA), "sha256": DATA_SHA},
        {"name": "chunk1.csv", "url": server.url("chunk1.csv"), "size": None, "sha256": None},
    ]
    result = {
        entry["name"]: fetch(entry["url"], tmp_path / "raw" / entry["name"],
                             sha256=entry.get("sha256"), size=entry.get("size"), **FAST)
        for entry in files
    }
    assert result == {NAME: DATA_SHA,
                      "chunk1.csv": hashlib.sha256(server.files["chunk1.csv"]).hexdigest()}
    assert (tmp_path / "raw" / "chunk1.csv.sha256").exists()


@pytest.mark.parametrize("bad", [{"name": "../x", "url": "https://u"}, {"url": "https://u"},
                                 {"name": "a/b", "url": "https://u"}, {"name": "..", "url": "https://u"}])
def test_bad_file_entries_are_refused_by_the_config_schema(bad):
    """The entries reach ``fetch`` only through the config, whose schema refuses these."""
    import yaml
    from snakemake.utils import validate
    from snakemake_interface_common.exceptions import WorkflowError

    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "config" / "demo.yaml").read_text())
    config["datasets"]["stead"]["files"].append(bad)
    with pytest.raises(WorkflowError, match=r"On instance\['datasets'\]\['stead'\]\['files'\]"):
        validate(config, str(root / "workflow" / "schemas" / "config.schema.yaml"))


def test_progress_lines_in_a_log_file(server, tmp_path, monkeypatch):
    log_file = io.StringIO()  # not a TTY, like a Snakemake log
    monkeypatch.setattr("sys.stderr", log_file)
    monkeypatch.setattr(progressbar, "PROGRESS_DELAY", 0.0)  # the download takes milliseconds
    fetch(server.url(NAME), tmp_path / NAME, progress=True, chunk_bytes=4096, backoff=0.0)
    lines = log_file.getvalue().splitlines()
    assert lines and all("\r" not in line for line in lines)
    assert NAME in lines[-1] and "100%" in lines[-1]
    assert log_file.getvalue().isascii()  # a plain line, not the terminal's Unicode bar


def test_no_progress_bar_for_quick_downloads(server, tmp_path, monkeypatch):
    log_file = io.StringIO()
    monkeypatch.setattr("sys.stderr", log_file)
    fetch(server.url(NAME), tmp_path / NAME, progress=True, chunk_bytes=4096, backoff=0.0)
    assert log_file.getvalue() == ""


def test_progress_bar_on_a_terminal_reaches_the_file_size(server, tmp_path, monkeypatch):
    """On a TTY (a pty here) the bar redraws in place and ends at the whole file."""
    import fcntl
    import os
    import pty
    import re
    import struct
    import termios
    import threading

    from tqdm import tqdm

    master, slave = pty.openpty()
    # a terminal of 24 x 100 (a new pty is 0 x 0, where tqdm has no room for a bar)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    terminal = os.fdopen(slave, "w", encoding="utf-8", buffering=1)
    received = []

    def drain():  # a pty's buffer is small: read while the bar writes, up to the end mark
        while not b"".join(received).endswith(b"END-OF-TEST\r\n"):
            try:
                block = os.read(master, 4096)
            except OSError:  # the terminal closed (the test failed before the mark)
                return
            received.append(block)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.setattr(progressbar, "PROGRESS_DELAY", 0.0)
    try:
        assert terminal.isatty()
        fetch(server.url(NAME), tmp_path / NAME, progress=True, chunk_bytes=4096, backoff=0.0)
        terminal.write("END-OF-TEST\n")  # the pty turns \n into \r\n
        reader.join(timeout=10)  # before closing: Linux drops what a closed pty still holds
    finally:
        terminal.close()
        reader.join(timeout=5)
        os.close(master)
    output = b"".join(received).decode("utf-8").removesuffix("END-OF-TEST\r\n")
    assert "\r" in output  # redrawn in place, not one line per refresh
    size = tqdm.format_sizeof(len(DATA), divisor=1024)
    final = [part for part in re.split(r"[\r\n]", output) if part.strip()][-1]
    assert NAME in final and "100%" in final and f" {size}/{size} " in final
    assert "█" in final  # the terminal gets the full-width bar, logs get plain ASCII


def test_progress_off_writes_nothing(server, tmp_path, monkeypatch):
    log_file = io.StringIO()
    monkeypatch.setattr("sys.stderr", log_file)
    monkeypatch.setattr(progressbar, "PROGRESS_DELAY", 0.0)
    fetch(server.url(NAME), tmp_path / NAME, **FAST)
    assert log_file.getvalue() == ""
