"""The arms of a switch measurement, shared by bench/switch_effects.py (the whole grid)
and bench/referent_switches.py (referents alone): a baseline config, each switch flipped
alone, and optionally a whole preset; with the one-line checks of their inputs."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

from tstransfer import protocol


class ArmError(ValueError):
    """Bad switches or config: printed as one line ``error: ...`` by the scripts."""


def read_config(path: Path, switches: list[str]) -> dict:
    """The config at ``path``, checked with the ``switches`` to flip; :class:`ArmError`
    names the bad switch, or the file and what is wrong with it."""
    unknown = sorted(set(switches) - set(protocol.SWITCHES))
    if unknown:
        raise ArmError(f"--switches: unknown switch {', '.join(unknown)}")
    try:
        config = yaml.safe_load(path.read_text())
        if not isinstance(config, dict):
            raise ValueError(f"a mapping of config keys expected, got {type(config).__name__}")
        protocol.project_switches(config)
    except (OSError, yaml.YAMLError, ValueError) as error:
        raise ArmError(f"{path}: {' '.join(str(error).split())}") from None  # one line, YAML's too
    return config


def arms(config: dict, switches: list[str], preset: str | None = None) -> dict[str, dict]:
    """Arm name -> its config: ``baseline`` (``config`` as given), each of ``switches``
    flipped alone from the baseline's value, and with ``preset`` (``paper`` or
    ``validation``) that whole protocol preset, named after it."""
    base = protocol.project_switches(config)
    out = {"baseline": config}
    for name in switches:
        out[name] = {**config, "protocol_switches": {**(config.get("protocol_switches") or {}),
                                                     name: not base[name]}}
    if preset is not None:
        out[preset] = {**config, "protocol": preset, "protocol_switches": {}}
    return out


def parser(description: str, default_switches: list[str]) -> argparse.ArgumentParser:
    """The scripts' shared arguments: CONFIG, OUT, --switches, --cores, --dry-run."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("config", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--switches", nargs="*", default=default_switches)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--dry-run", action="store_true")
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace, dict | None]:
    """The scripts' arguments and their checked config (:func:`read_config`); a bad config
    or switch is printed as one line ``error: ...`` and the config is None (exit 2)."""
    args = parser.parse_args(argv)
    try:
        return args, read_config(args.config, args.switches)
    except ArmError as error:
        print(f"error: {error}", file=sys.stderr)
        return args, None


def written(out: Path, arm_configs: dict[str, dict]) -> Iterator[tuple[str, Path, Path, dict]]:
    """``(name, workdir, configfile, config)`` per arm, its config written to
    OUT/<name>/config.yaml."""
    for name, config in arm_configs.items():
        workdir = out / name
        workdir.mkdir(parents=True, exist_ok=True)
        configfile = workdir / "config.yaml"
        configfile.write_text(yaml.safe_dump(config, sort_keys=False))
        yield name, workdir, configfile, config


def tree_env(root: Path) -> dict[str, str]:
    """The environment of an arm's Snakemake: the jobs run in the arm's folder, and import
    the package of ``root`` (a checkout), whatever a relative PYTHONPATH says."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), os.environ.get("PYTHONPATH", "")])}
