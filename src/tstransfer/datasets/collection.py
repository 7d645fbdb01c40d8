"""A whole UCR/UEA archive as one config entry (``archives.<name>``).

A user with the full UCR (128 problems) or UEA (30) archive on disk names its folder
once, instead of writing one ``datasets`` entry per problem::

    archives:
      ucr:
        path: /data/Univariate_ts      # one folder per problem: <Problem>/<Problem>_TRAIN.ts, _TEST.ts
        problems: all                  # or a list of problem (folder) names
        domain: ucr                    # default: the archive's name
    sources: [ucr]                     # the archive's name: every problem it selects
    targets: [ucr, lomax]

:func:`expand_archives` turns each archive into ordinary ``datasets`` entries given by
format (:mod:`.custom`), one per problem, named by the problem in lower case
(``GunPoint`` -> ``gunpoint``; any character other than a-z and 0-9 becomes ``_``, and a
name that would start with a digit gets ``<archive>_`` in front), and replaces an
archive's name in ``sources``, ``targets`` and ``stream_max_study.datasets`` by those
names. It edits the config in place, and a second call on its result changes nothing:
the Snakefile expands the config when it parses, and the scripts it runs call
:func:`tstransfer.datasets.register_config` on that expanded config again.

Layouts (``format``): ``ts`` (default), the UCR/UEA ``.ts`` files; ``tsv``, the UCR 2018
archive's ``<Problem>/<Problem>_TRAIN.tsv`` and ``_TEST.tsv`` (read by
:func:`.readers.read_ucr_tsv`).

Only folder names are listed here, no data is read: a problem's files are checked to
exist, and are read when its store is converted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

# The archive's file name suffixes by layout: (train, test).
LAYOUTS = {"ts": ("_TRAIN.ts", "_TEST.ts"), "tsv": ("_TRAIN.tsv", "_TEST.tsv")}
# The keys of an archive entry (the schema, workflow/schemas/config.schema.yaml, says the same).
KEYS = ("path", "format", "problems", "exclude", "domain", "domains", "prefix", "stream_max")
# Where a config names datasets, by key path.
USES = (("sources",), ("targets",), ("stream_max_study", "datasets"))


def dataset_name(archive: str, problem: str, prefix: str = "") -> str:
    """The dataset name of an archive's problem: lower case, a wildcard-safe identifier."""
    name = prefix + re.sub(r"[^a-z0-9]+", "_", problem.lower()).strip("_")
    return name if re.match(r"^[a-z]", name) else f"{archive}_{name}"


def problem_folders(archive: str, spec: Mapping[str, Any]) -> list[Path]:
    """The archive's problem folders that the entry selects, in its order (``all``: sorted)."""
    where = f"config archives.{archive}"
    unknown = sorted(set(spec) - set(KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(KEYS)})")
    if not spec.get("path"):
        raise ValueError(f"{where}.path is required: the folder that holds one folder per problem")
    root = Path(spec["path"])
    if not root.is_dir():
        raise ValueError(f"{where}.path: {root} is not a folder")
    layout = spec.get("format", "ts")
    if layout not in LAYOUTS:
        raise ValueError(f"{where}.format must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    train_suffix, test_suffix = LAYOUTS[layout]
    problems = spec.get("problems", "all")
    exclude = set(spec.get("exclude") or [])
    if problems == "all":
        folders = [p for p in sorted(root.iterdir(), key=lambda p: p.name)
                   if p.is_dir() and (p / f"{p.name}{train_suffix}").is_file()]
        if not folders:
            raise ValueError(f"{where}.path: {root} holds no problem folder <Problem>/<Problem>{train_suffix}")
    elif isinstance(problems, list) and problems and all(isinstance(p, str) for p in problems):
        folders = [root / p for p in problems]
    else:
        raise ValueError(f"{where}.problems must be all or a non-empty list of problem names, got {problems!r}")
    unknown = sorted(exclude - {folder.name for folder in folders})
    if unknown:
        raise ValueError(f"{where}.exclude: {', '.join(unknown)} is not among the problems in {root}")
    folders = [folder for folder in folders if folder.name not in exclude]
    for folder in folders:
        for suffix in (train_suffix, test_suffix):
            file = folder / f"{folder.name}{suffix}"
            if not file.is_file():
                raise ValueError(f"{where}: problem {folder.name}: {file} not found "
                                 f"(expected <Problem>/<Problem>{suffix})")
    return folders


def archive_entries(archive: str, spec: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``datasets`` entries of one archive, by dataset name; clashing names refused."""
    layout = spec.get("format", "ts")
    train_suffix, test_suffix = LAYOUTS[layout] if layout in LAYOUTS else ("", "")
    domains = dict(spec.get("domains") or {})
    entries: dict[str, dict[str, Any]] = {}
    problem_of: dict[str, str] = {}
    for folder in problem_folders(archive, spec):
        problem = folder.name
        name = dataset_name(archive, problem, str(spec.get("prefix", "")))
        if name in entries:
            raise ValueError(f"config archives.{archive}: problems {problem_of[name]} and {problem} "
                             f"both become the dataset name {name}; leave one out (exclude:)")
        problem_of[name] = problem
        entry = {"format": layout, "path": str(folder), "train": f"{problem}{train_suffix}",
                 "test": f"{problem}{test_suffix}", "title": problem,
                 "domain": str(domains.pop(problem, None) or spec.get("domain") or archive)}
        if "stream_max" in spec:
            entry["stream_max"] = bool(spec["stream_max"])
        entries[name] = entry
    if domains:
        raise ValueError(f"config archives.{archive}.domains: {', '.join(sorted(domains))} "
                         "is not among the problems selected")
    return entries


def expand_archives(config: MutableMapping[str, Any]) -> dict[str, list[str]]:
    """Add every archive's problems to ``config["datasets"]`` and put them in place of an
    archive's name in the dataset lists; returns each archive's dataset names.

    Refused, with the config entry named: a problem whose name is taken (by an entry of
    ``datasets`` that is not the same entry, by another archive's problem, or by an
    archive's name), and a problem folder or file that is missing.
    """
    archives = config.get("archives") or {}
    if not archives:
        return {}
    datasets = config.setdefault("datasets", {})
    names: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for archive, spec in archives.items():
        if archive in datasets:
            raise ValueError(f"config archives.{archive}: {archive} is also an entry of datasets; "
                             "an archive needs a name of its own")
        if not isinstance(spec, Mapping):
            raise ValueError(f"config archives.{archive}: expected a mapping with path:, got {spec!r}")
        entries = archive_entries(archive, spec)
        for name, entry in entries.items():
            taken_by = owner.get(name) or ("an archive" if name in archives else None)
            if taken_by is None and name in datasets and dict(datasets[name]) != entry:
                taken_by = "an entry of datasets"
            if taken_by:
                raise ValueError(f"config archives.{archive}: problem {entry['title']} becomes the "
                                 f"dataset name {name}, which {taken_by} already has; "
                                 "give the archive a prefix: or exclude: the problem")
            owner[name] = f"archives.{archive}"
        datasets.update(entries)
        names[archive] = list(entries)
    for keys in USES:
        holder: Any = config
        for key in keys[:-1]:
            holder = holder.get(key) or {}
        if isinstance(holder, MutableMapping) and holder.get(keys[-1]):
            holder[keys[-1]] = _expanded(holder[keys[-1]], names)
    return names


def _expanded(listed: list[str], names: Mapping[str, list[str]]) -> list[str]:
    """``listed`` with each archive's name replaced by its datasets, first mention kept."""
    out: list[str] = []
    for item in listed:
        for name in names.get(item, [item]):
            if name not in out:
                out.append(name)
    return out


__all__ = ["LAYOUTS", "dataset_name", "problem_folders", "archive_entries", "expand_archives"]
