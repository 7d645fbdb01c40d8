"""A benchmark's config: a config file with ``--set KEY=VALUE`` overrides, its datasets'
relative paths made the checkout's (bench/real_study_time.py, referents_real.py,
concurrent_jobs.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml


def set_key(config: dict, dotted: str, value: str) -> None:
    """``config[a][b]... = yaml.safe_load(value)`` for ``dotted`` = ``a.b...``."""
    *path, last = dotted.split(".")
    node = config
    for key in path:
        node = node.setdefault(key, {})
    node[last] = yaml.safe_load(value)


def load(path: Path, settings: Sequence[str], root: Path) -> dict:
    """The config at ``path`` with each ``KEY=VALUE`` of ``settings`` set, and every dataset
    given by format whose path is relative read from ``root`` (the checkout)."""
    config = yaml.safe_load(Path(path).read_text())
    for item in settings:
        key, _, value = item.partition("=")
        set_key(config, key, value)
    for entry in config["datasets"].values():
        if entry.get("format") and not Path(entry["path"]).is_absolute():
            entry["path"] = str(Path(root) / entry["path"])
    return config
