"""store.convert's machinery: the read-ahead thread, the staged random order, the progress bar.

A toy in-memory dataset module (no raw files) keeps these fast; the seismic readers'
stores are checked against independent reads in test_datasets_seismic.py.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tstransfer import store
from tstransfer.store import conversion, staging
from tstransfer.datasets.base import DataError, DatasetInfo, InstanceIndex, RawChunk

LOG = logging.getLogger("test_store_convert")
INFO = DatasetInfo(name="toy_convert", title="Toy convert", domain="toy", task="regression",
                   channels=2, sampling_rate=1.0, units="a.u.")
N, LENGTH, CHUNK = 700, 50, 32  # 22 chunks: regions of 5 chunks, so pass 2 spans 5 regions


def toy_module(fail_at: int | None = None, nan_at: int | None = None, events: list | None = None):
    """Serves N seeded waveforms ``CHUNK`` at a time; ``fail_at``: the chunk at which the
    reader raises a DataError naming its file; ``nan_at``: an instance holding a NaN;
    ``events`` records the reader's thread and whether its ``finally`` ran."""
    rng = np.random.default_rng(11)
    waves = (rng.normal(0, 1, (N, LENGTH, 2)) * rng.uniform(0.5, 50, (N, 1, 1))).astype(np.float32)
    if nan_at is not None:
        waves[nan_at, 3, 1] = np.nan
    labels = rng.uniform(0, 5, N)
    keys = [f"toy{i:05d}" for i in range(N)]

    def list_instances(raw, params, log):
        return InstanceIndex(pd.DataFrame({"key": keys, "label": labels}))

    def read_chunks(raw, params, index, chunk_size):
        try:
            for k, start in enumerate(range(0, N, chunk_size)):
                if events is not None:
                    events.append(("read", threading.current_thread().name))
                if k == fail_at:
                    raise DataError(INFO.name, "raw/part-7.h5", "cannot read the samples", trace=keys[start])
                stop = min(N, start + chunk_size)
                yield RawChunk(waves[start:stop].copy(), labels[start:stop], keys[start:stop], "raw/part-7.h5")
        finally:
            if events is not None:
                events.append(("closed", threading.current_thread().name))

    return SimpleNamespace(INFO=INFO, list_instances=list_instances, read_chunks=read_chunks,
                           raw_files=lambda params: [])


def _contents(path) -> dict:
    ds = store.open_store(path)
    values = {name: ds[name].values for name in ds.variables}
    attrs = {k: v for k, v in store.store_attrs(path).items() if k != "convert_seconds"}
    return {"values": values, "attrs": attrs}


def _no_reader_thread_left() -> bool:
    return not [t for t in threading.enumerate() if t.name == "convert-read-ahead"]


def test_threaded_conversion_writes_the_store_of_a_serial_one(tmp_path, monkeypatch):
    """The read-ahead thread, the row-wise scratch reads of pass 2 and the gathered
    (writev) staging writes, even when every writev is cut short, change nothing in the
    store: the same as reading, scaling and staging one chunk after another in one thread."""
    threaded = tmp_path / "threaded.zarr"
    events: list = []
    real_writev = os.writev
    short = []

    def short_writev(fd, buffers):  # at most 1000 bytes per call: every write is partial
        short.append(1)
        return real_writev(fd, [memoryview(buffers[0]).cast("B")[:1000]])

    monkeypatch.setattr(staging.os, "writev", short_writev)
    store.convert(toy_module(events=events), tmp_path, threaded, {}, seed=5, chunk_size=CHUNK, log=LOG)
    monkeypatch.undo()
    assert short and {name for _, name in events} == {"convert-read-ahead"}
    assert _no_reader_thread_left()

    serial = tmp_path / "serial.zarr"
    monkeypatch.setattr(conversion, "_read_ahead", lambda chunks, depth=0: iter(chunks))
    monkeypatch.setattr(staging, "_write_all", lambda fd, buffers: os.write(fd, np.concatenate(buffers).tobytes()))
    store.convert(toy_module(), tmp_path, serial, {}, seed=5, chunk_size=CHUNK, log=LOG)

    got, want = _contents(threaded), _contents(serial)
    assert got["attrs"] == want["attrs"] and got["attrs"]["instance_order"] == "shuffled"
    assert set(got["values"]) == set(want["values"])
    for name, value in want["values"].items():
        assert np.array_equal(got["values"][name], value), name
    raw_index = got["values"]["raw_index"]
    assert not np.array_equal(raw_index, np.arange(N))  # a real permutation, over 5 regions
    assert sorted(p.name for p in tmp_path.iterdir()) == ["serial.zarr", "threaded.zarr"]  # no scratch left


@pytest.mark.parametrize("where", ["reader", "consumer"])
def test_an_error_on_either_side_of_the_read_ahead_stops_it_and_leaves_no_store(tmp_path, where):
    """A reader error (raised in the read-ahead thread) reaches the caller unchanged, with
    its file and trace; an error in the consumer (a NaN in chunk 9) stops the reader, whose
    files close in its own thread. Either way no store, temporary store or scratch is left."""
    events: list = []
    if where == "reader":
        module = toy_module(fail_at=9, events=events)
    else:
        module = toy_module(nan_at=9 * CHUNK + 4, events=events)
    out = tmp_path / "out.zarr"
    with pytest.raises(DataError, match=r"\Atoy_convert: .*raw/part-7\.h5") as info:
        store.convert(module, tmp_path, out, {}, seed=5, chunk_size=CHUNK, log=LOG)
    message = str(info.value)
    assert "raw/part-7.h5" in message
    assert ("cannot read the samples" if where == "reader" else "non-finite") in message
    assert f"toy{9 * CHUNK + (0 if where == 'reader' else 4):05d}" in message
    assert ("closed", "convert-read-ahead") in events and _no_reader_thread_left()
    # the reader was stopped: it got at most the read-ahead depth (plus one) past chunk 9
    assert sum(kind == "read" for kind, _ in events) <= 10 + store.READ_AHEAD + 1
    assert list(tmp_path.iterdir()) == []


def test_read_ahead_yields_every_item_in_order_and_stops_when_closed():
    items = list(conversion._read_ahead(iter(range(50)), depth=2))
    assert items == list(range(50))
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    ahead = conversion._read_ahead(endless(), depth=3)
    assert [next(ahead) for _ in range(5)] == [0, 1, 2, 3, 4]
    ahead.close()
    assert closed.is_set() and _no_reader_thread_left()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_bars_only_on_a_terminal(tmp_path, monkeypatch, terminal):
    stream = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    store.convert(toy_module(), tmp_path, tmp_path / "out.zarr", {}, seed=5, chunk_size=CHUNK, log=LOG)
    text = stream.getvalue()
    if terminal:
        for desc in ("toy_convert: convert", "toy_convert: store order"):
            assert desc in text and f"{N}/{N}" in text, text
    else:
        assert text == ""


# --------------------------------------------------------------------------- a full disk
@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs (the toy store needs about 300 KiB), mounted for the test and
    unmounted after; root only (mount), so elsewhere it skips, and under CI=true fails."""
    import subprocess

    from shared_data import skip_or_fail

    if os.geteuid() != 0:
        skip_or_fail("mounting a small tmpfs needs root", "the full-disk drill must run (CI runs as root)")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        skip_or_fail(f"cannot mount a tmpfs: {done.stderr.strip()}", "the full-disk drill must run")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.parametrize("shuffle", [True, False], ids=["staged", "straight-to-zarr"])
def test_a_disk_that_fills_during_the_write_leaves_no_store_and_says_so(small_disk, shuffle):
    """The file system fills mid-write (in the staging scratch, or in zarr's own chunk
    writes without the random order): no store under the final name, no temporary one,
    and one line naming the dataset, the store and the cause."""
    import errno

    out = small_disk / "toy.zarr"
    with pytest.raises(OSError, match="no space left") as caught:
        store.convert(toy_module(), small_disk, out, {}, seed=5, chunk_size=CHUNK, shuffle=shuffle, log=LOG)
    message = str(caught.value)
    assert caught.value.errno == errno.ENOSPC
    assert "\n" not in message and message.startswith(f"toy_convert: no space left on the device writing {out}")
    assert f"{small_disk}" in message and "nothing was kept under that name" in message, message
    assert os.listdir(small_disk) == []  # neither the store nor its temporary copy or scratch
    assert _no_reader_thread_left()
