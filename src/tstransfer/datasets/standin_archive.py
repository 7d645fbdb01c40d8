"""A synthetic stand-in for a UCR/UEA archive on disk, for tests and bench/archive_dag.py.

``write_standin_archive(root, problems=128)`` writes ``root/<Problem>/<Problem>_TRAIN.ts``
and ``_TEST.ts`` in the archive's layout (:mod:`.collection` reads it as
``archives.<name>.path``): small problems, a few instances each, seeded. Most are
univariate two-class problems; every eighth has three channels (as UEA's do) and every
sixteenth is a regression problem (``@targetLabel``, as the Monash extrinsic-regression
problems that aeon ships). A problem's class is a sine's frequency, under noise, so that
a model could learn it; the stand-in is for planning and plumbing, not for results.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def problem_name(index: int) -> str:
    """The stand-in's problem (folder) names, CamelCase as the archive's: ``StandIn007``."""
    return f"StandIn{index:03d}"


def _lines(rng: np.random.Generator, n: int, length: int, channels: int, regression: bool) -> list[str]:
    out = []
    steps = np.arange(length)
    for _ in range(n):
        label = rng.uniform(0, 10) if regression else int(rng.integers(0, 2))
        frequency = 0.05 + (label / 40 if regression else 0.15 * label)
        series = [np.sin(2 * np.pi * frequency * steps + rng.uniform(0, np.pi))
                  + 0.2 * rng.standard_normal(length) for _ in range(channels)]
        values = ":".join(",".join(f"{v:.4f}" for v in s) for s in series)
        out.append(f"{values}:{label:.3f}" if regression else f"{values}:{label}")
    return out


def _header(problem: str, length: int, channels: int, regression: bool) -> str:
    label = "@targetLabel true" if regression else "@classLabel true 0 1"
    dims = "@univariate true" if channels == 1 else f"@univariate false\n@dimensions {channels}"
    return (f"# synthetic stand-in ({problem}), tstransfer.datasets.standin_archive\n"
            f"@problemName {problem}\n@timeStamps false\n@missing false\n{dims}\n"
            f"@equalLength true\n@seriesLength {length}\n{label}\n@data\n")


def write_standin_archive(root: str | Path, problems: int = 128, *, seed: int = 0,
                          train: int = 8, test: int = 4, length: int = 24) -> list[str]:
    """Write ``problems`` stand-in problems under ``root``; returns their names."""
    root = Path(root)
    names = []
    for index in range(problems):
        name = problem_name(index)
        rng = np.random.default_rng([seed, index])
        channels = 3 if index % 8 == 7 else 1
        regression = index % 16 == 15
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for split, n in (("TRAIN", train), ("TEST", test)):
            body = "\n".join(_lines(rng, n, length, channels, regression)) + "\n"
            (folder / f"{name}_{split}.ts").write_text(_header(name, length, channels, regression) + body)
        names.append(name)
    return names


__all__ = ["problem_name", "write_standin_archive"]
