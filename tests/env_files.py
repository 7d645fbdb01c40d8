"""The conda env files (envs/*.yaml) as the tests read them: which extra of pyproject.toml
each one mirrors, and its conda and pip sections."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# Env file -> the extra of pyproject.toml whose packages (with the core's) it lists.
ENV_EXTRAS = {"data": "data", "analysis": "analysis", "training": "train"}


def env_file(env: str) -> Path:
    return ROOT / "envs" / f"{env}.yaml"


def conda_section(path: Path) -> list[str]:
    """The conda packages an env file asks for (``python=3.11``, ``pip``)."""
    return [entry for entry in yaml.safe_load(path.read_text())["dependencies"] if isinstance(entry, str)]


def pip_section(path: Path) -> list[str]:
    """The lines of an env file's ``pip:`` section, as conda hands them to pip."""
    sections = [entry["pip"] for entry in yaml.safe_load(path.read_text())["dependencies"] if isinstance(entry, dict)]
    assert len(sections) == 1, f"{path.name}: one pip: section"
    return sections[0]
