"""A benchmark's config: a config file with ``--set KEY=VALUE`` overrides, its datasets'
relative paths made the checkout's (bench/real_study_time.py, referents_real.py,
concurrent_jobs.py). A config file that cannot be read or a setting without ``=`` ends
the script with one line naming it (SystemExit), before anything is trained or written."""

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
    try:
        config = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise SystemExit(f"error: {path}: cannot read the config ({error.__class__.__name__}: {error})") from None
    if not isinstance(config, dict) or not isinstance(config.get("datasets"), dict):
        raise SystemExit(f"error: {path}: not a project config (no datasets mapping)")
    for item in settings:
        key, equals, value = item.partition("=")
        if not (key and equals):
            raise SystemExit(f"error: --set {item!r}: expected KEY=VALUE, e.g. training.max_epochs=100")
        set_key(config, key, value)
    for entry in config["datasets"].values():
        if entry.get("format") and not Path(entry["path"]).is_absolute():
            entry["path"] = str(Path(root) / entry["path"])
    return config
