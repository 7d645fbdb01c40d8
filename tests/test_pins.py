"""Every version pin in envs/*.yaml agrees with pyproject.toml, the one place that pins.

The conda environments list packages again (conda-forge builds, for the parts run with
``--sdm conda``) and then install the package with its extra from pyproject.toml; a pin
in an environment that drifted from pyproject.toml's would make that install fail or
quietly replace the package.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
ENVS = sorted((ROOT / "envs").glob("*.yaml"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pyproject_pins() -> dict[str, str]:
    """Package -> exact version over the core and every extra; each pinned once or alike."""
    pins: dict[str, set[str]] = {}
    lists = [PYPROJECT["dependencies"], *PYPROJECT["optional-dependencies"].values()]
    for line in (line for group in lists for line in group):
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == "tstransfer":
            continue  # an extra that includes another
        (spec,) = requirement.specifier  # exact pins only: the results tree must be rebuildable
        assert spec.operator == "==", f"pyproject.toml: {line} is not an exact pin"
        pins.setdefault(canonicalize_name(requirement.name), set()).add(spec.version)
    disagree = {name: versions for name, versions in pins.items() if len(versions) > 1}
    assert not disagree, f"pyproject.toml pins a package twice with different versions: {disagree}"
    return {name: versions.pop() for name, versions in pins.items()}


def env_pins(path: Path) -> tuple[dict[str, str], list[str]]:
    """(package -> version, extras installed with ``-e "..[extra]"``) of one environment file."""
    pins, extras = {}, []
    for entry in yaml.safe_load(path.read_text())["dependencies"]:
        if isinstance(entry, dict):  # the pip: section
            for line in entry["pip"]:
                editable = re.fullmatch(r'-e\s+"?\.\.\[([\w,]+)\]"?', line)
                if editable:
                    extras += editable[1].split(",")
                    continue
                requirement = Requirement(line)
                (spec,) = requirement.specifier
                assert spec.operator == "==", f"{path.name}: {line} is not an exact pin"
                pins[canonicalize_name(requirement.name)] = spec.version
        elif "=" in entry:
            name, version = entry.split("=", 1)
            pins[canonicalize_name(name)] = version
    return pins, extras


def test_pyproject_pins_each_package_exactly_once():
    assert {"numpy", "pandas", "tensorflow", "snakemake"} <= set(pyproject_pins())


@pytest.mark.parametrize("path", ENVS, ids=[path.name for path in ENVS])
def test_environment_pins_agree_with_pyproject(path):
    pins = pyproject_pins()
    env, extras = env_pins(path)
    python = env.pop("python")
    assert SpecifierSet(PYPROJECT["requires-python"]).contains(f"{python}.0"), (
        f"{path.name}: python={python} outside requires-python {PYPROJECT['requires-python']}"
    )
    unknown = sorted(set(env) - set(pins))
    assert not unknown, f"{path.name}: {unknown} pinned here but not in pyproject.toml"
    differ = {name: (version, pins[name]) for name, version in env.items() if pins[name] != version}
    assert not differ, f"{path.name}: (env, pyproject.toml) versions differ: {differ}"
    assert extras and set(extras) <= set(PYPROJECT["optional-dependencies"]), (
        f"{path.name}: installs extras {extras}, pyproject.toml has {sorted(PYPROJECT['optional-dependencies'])}"
    )
