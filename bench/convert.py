"""Conversion throughput of LEN-DB-format (or STEAD-format) raw data against a plain h5py read.

    python bench/convert.py --size-gb 1.0 --repeats 3
    python bench/convert.py --format stead --size-gb 1.0

Writes a LEN-DB-format file (``EQ`` traces of shape (3, 540) float64 with a ``mag``
attribute, a small ``AN`` noise group and ``Stations``) of at least ``--size-gb`` GB of
earthquake samples into a temporary folder -- or, with ``--format stead``, STEAD's
current layout (``chunk1`` with a few noise traces, ``chunk2`` with the earthquakes:
(6000, 3) float32 under ``data/``, and their 35-column tables) -- then measures, each in
a fresh child process (so that its peak RSS, ``ru_maxrss``, belongs to that measurement
alone):

* ``plain``: the baseline: every earthquake trace read into numpy with ordinary h5py
  (``for key in names: group[key][()]``), nothing else;
* ``plain+attr`` (LEN-DB only): the same plus ``group[key].attrs["mag"]`` (what a label
  needs; STEAD's labels come from the table);
* ``reader``: the module's ``list_instances`` + ``read_chunks`` alone (no store);
* ``convert``: the whole ``tstransfer.store.convert`` to a zarr store (scaling,
  stream_max, splits, mask, Blosc-lz4-compressed writes, instances in a seeded random order);
* ``convert-raw-order``: the same with ``shuffle=False`` (instances in the raw order, as
  before the random store order): the difference is the cost of the random order.

Throughput is MB (1e6 bytes) of raw EQ samples per second, the median of
``--repeats`` runs; the CPU time (user + system, all threads) of each measurement is
reported beside it, since on a shared machine it moves less with the load than the
wall-clock time. All runs read the same file, which after the first run sits in the
page cache (it fits in RAM here), so the numbers compare CPU cost, not disk speed. The
raw file's sha256 is recorded beside it first (as the download rule does), so the
conversion does not re-hash it.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TRACE_SHAPE = (3, 540)
TRACE_BYTES = int(np.prod(TRACE_SHAPE)) * 8
STEAD_SHAPE = (6000, 3)
STEAD_TRACE_BYTES = int(np.prod(STEAD_SHAPE)) * 4
STEAD_PARAMS = {"layout": "chunks", "chunks": [1, 2]}


def generate_lendb(raw: Path, size_gb: float, seed: int) -> int:
    """A LEN-DB-format file with ``ceil(size_gb * 1e9 / 12960)`` EQ traces; returns that count.

    Fast rather than learnable: one block of seeded random samples is drawn per 4096
    traces and each trace is a row of it, scaled by its magnitude.
    """
    import h5py

    from tstransfer.fsutil import sha256_file
    from tstransfer.seeding import rng_for

    n = int(np.ceil(size_gb * 1e9 / TRACE_BYTES))
    rng = rng_for(seed, "bench", "lendb")
    raw.mkdir(parents=True, exist_ok=True)
    path = raw / "LEN-DB.hdf5"
    block = 4096
    with h5py.File(path, "w") as handle:
        eq = handle.create_group("EQ")
        an = handle.create_group("AN")
        stations = handle.create_group("Stations")
        for start in range(0, n, block):
            count = min(block, n - start)
            samples = rng.standard_normal((count, *TRACE_SHAPE)) * 1e-7
            mags = np.round(rng.uniform(2, 6, count), 1)
            for i in range(count):
                dset = eq.create_dataset(f"XX_S{(start + i) % 97:03d}_{1.2e9 + start + i:.2f}", data=samples[i] * 10 ** (0.5 * mags[i]))
                dset.attrs["mag"] = mags[i]
        for i in range(max(1, n // 100)):
            an.create_dataset(f"XX_S{i % 97:03d}_{1.1e9 + i:.2f}", data=rng.standard_normal(TRACE_SHAPE) * 1e-7)
        stations.create_dataset("XX_S000", data=np.zeros(3))
    (raw / "LEN-DB.hdf5.sha256").write_text(f"{sha256_file(path)}  LEN-DB.hdf5\n")
    return n


def generate_stead(raw: Path, size_gb: float, seed: int) -> int:
    """STEAD chunk layout: ``chunk1`` (noise) and ``chunk2`` with ``ceil(size_gb * 1e9 / 72000)``
    earthquakes, plus their tables; returns the earthquake count. Fast, not learnable."""
    import h5py
    import pandas as pd

    from tstransfer.datasets import stead
    from tstransfer.fsutil import sha256_file
    from tstransfer.seeding import rng_for

    n = int(np.ceil(size_gb * 1e9 / STEAD_TRACE_BYTES))
    rng = rng_for(seed, "bench", "stead")
    raw.mkdir(parents=True, exist_ok=True)
    for k, category, count in ((1, "noise", max(1, n // 100)), (2, "earthquake_local", n)):
        names = [f"S{i % 97:03d}.XX_{20000101000000 + i}_{'EV' if k == 2 else 'NO'}" for i in range(count)]
        with h5py.File(raw / f"chunk{k}.hdf5", "w") as handle:
            group = handle.create_group("data")
            block = 512
            for start in range(0, count, block):
                samples = (rng.standard_normal((min(block, count - start), *STEAD_SHAPE)) * 100).astype(np.float32)
                for i, values in enumerate(samples):
                    group.create_dataset(names[start + i], data=values)
        table = pd.DataFrame({column: np.full(count, np.nan, dtype=object) for column in stead.METADATA_COLUMNS})
        table["trace_name"] = names
        table["trace_category"] = category
        if k == 2:
            table["source_magnitude"] = np.round(rng.uniform(0, 5, count), 1)
        table.to_csv(raw / f"chunk{k}.csv", index=False)
        for name in (f"chunk{k}.hdf5", f"chunk{k}.csv"):
            (raw / f"{name}.sha256").write_text(f"{sha256_file(raw / name)}  {name}\n")
    return n


def child(fmt: str, mode: str, raw: Path, out: Path, chunk_size: int) -> dict:
    """One measurement in this (fresh) process: seconds, traces, peak RSS."""
    import h5py

    from tstransfer import store
    from tstransfer.datasets import lendb, stead

    module, params = (lendb, {}) if fmt == "lendb" else (stead, STEAD_PARAMS)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    started = time.perf_counter()
    n = 0
    if mode in ("plain", "plain+attr"):
        if fmt == "lendb":
            path, group_name, names = raw / "LEN-DB.hdf5", "EQ", None
        else:
            import pandas as pd

            path, group_name = raw / "chunk2.hdf5", "data"
            names = pd.read_csv(raw / "chunk2.csv", usecols=["trace_name"])["trace_name"].tolist()
        with h5py.File(path, "r") as handle:
            group = handle[group_name]
            for key in names if names is not None else group:
                dset = group[key]
                values = dset[()]
                if mode == "plain+attr":
                    float(dset.attrs["mag"])
                n += values.shape[0] > 0
    elif mode == "reader":
        log = logging.getLogger("bench")
        index = module.list_instances(raw, params, log)
        for chunk in module.read_chunks(raw, params, index, chunk_size):
            n += len(chunk.keys)
    elif mode in ("convert", "convert-raw-order"):
        summary = store.convert(module, raw, out, params, seed=1, chunk_size=chunk_size,
                                shuffle=mode == "convert")
        n = summary["n_instances"]
        shutil.rmtree(out)
    else:
        raise ValueError(mode)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    peak_kb = usage.ru_maxrss  # KiB on Linux
    return {"mode": mode, "seconds": seconds, "cpu_seconds": cpu, "traces": n, "peak_rss_mb": peak_kb / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gb", type=float, default=1.0, help="GB of earthquake samples to generate (default 1.0)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the median is reported")
    parser.add_argument("--chunk-size", type=int, default=256, help="instances per chunk (store default 256)")
    parser.add_argument("--format", choices=("lendb", "stead"), default="lendb")
    parser.add_argument("--modes", default=None, help="comma-separated; default: all that apply")
    parser.add_argument("--tmp", type=Path, default=None, help="folder for the temporary files")
    parser.add_argument("--seed", type=int, default=20221025)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--raw", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = child(args.format, args.child, args.raw, args.raw.parent / "store.zarr", args.chunk_size)
        print(json.dumps(result))
        return

    work = Path(tempfile.mkdtemp(prefix="bench-convert-", dir=args.tmp))
    try:
        raw = work / "raw"
        t0 = time.perf_counter()
        if args.format == "lendb":
            n = generate_lendb(raw, args.size_gb, args.seed)
            raw_mb = n * TRACE_BYTES / 1e6
        else:
            n = generate_stead(raw, args.size_gb, args.seed)
            raw_mb = n * STEAD_TRACE_BYTES / 1e6
        file_bytes = sum(p.stat().st_size for p in raw.iterdir() if p.suffix in (".hdf5", ".csv"))
        print(f"{args.format}: generated {n} earthquake traces ({raw_mb:.0f} MB of samples, "
              f"files {file_bytes / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s")
        rows = {}
        modes = (args.modes or ("plain,plain+attr,reader,convert,convert-raw-order" if args.format == "lendb"
                                else "plain,reader,convert,convert-raw-order")).split(",")
        for repeat in range(args.repeats):
            for mode in modes:  # interleaved so that drifts hit every mode alike
                proc = subprocess.run(
                    [sys.executable, __file__, "--format", args.format, "--child", mode, "--raw", str(raw),
                     "--chunk-size", str(args.chunk_size)],
                    capture_output=True, text=True,
                )
                if proc.returncode:
                    sys.exit(f"{mode} measurement failed:\n{proc.stderr}")
                result = json.loads(proc.stdout.strip().splitlines()[-1])
                assert result["traces"] == n, result
                rows.setdefault(mode, []).append(result)
        print(f"{'mode':<17} {'MB/s (median)':>14} {'runs MB/s':>28} {'s (median)':>11} "
              f"{'CPU s (median)':>15} {'peak RSS MB':>12}")
        medians, cpu = {}, {}
        for mode in modes:
            rates = [raw_mb / r["seconds"] for r in rows[mode]]
            medians[mode] = statistics.median(rates)
            cpu[mode] = statistics.median(r["cpu_seconds"] for r in rows[mode])
            print(f"{mode:<17} {medians[mode]:>14.1f} {' '.join(f'{r:.1f}' for r in rates):>28} "
                  f"{statistics.median(r['seconds'] for r in rows[mode]):>11.2f} {cpu[mode]:>15.2f} "
                  f"{max(r['peak_rss_mb'] for r in rows[mode]):>12.0f}")
        if "plain" in medians and "convert" in medians:
            ratio = medians["convert"] / medians["plain"]
            peak = max(r["peak_rss_mb"] for r in rows["convert"])
            print(f"convert / plain = {ratio:.2f} (target >= 0.5); convert peak RSS {peak:.0f} MB (target < 2048)")
            # On a shared machine the wall-clock ratio moves with the load; CPU time less so.
            print(f"CPU time plain / convert = {cpu['plain'] / cpu['convert']:.2f}")
        if "convert" in medians and "convert-raw-order" in medians:
            print(f"convert / convert-raw-order = {medians['convert'] / medians['convert-raw-order']:.2f} "
                  "(the cost of the random store order)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
