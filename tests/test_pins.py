"""Every version pin outside pyproject.toml agrees with it, the one place that pins.

The conda environments (envs/*.yaml) list, in their pip sections, exactly the packages of
pyproject.toml's core and one extra each (tests/env_files.py says which), at the same
versions, and nothing that points at the project: Snakemake builds each env from a copy
of its file under .snakemake/conda/, where a path such as ``-e ..`` names no project
(tests/test_envs.py builds them that way). The container image (containers/install.sh,
run by the Apptainer definition and the Dockerfile) installs the project from
pyproject.toml and TensorFlow's CUDA wheels at pyproject.toml's TensorFlow version.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from env_files import ENV_EXTRAS, conda_section, env_file, pip_section
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CONTAINERS = ROOT / "containers"


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


def extra_packages(extra: str) -> set[str]:
    """The packages (canonical names) that the core and ``extra`` list, following
    ``tstransfer[...]`` includes within pyproject.toml (not the packages' own dependencies)."""
    extras = PYPROJECT["optional-dependencies"]
    names, todo, seen = set(), [*PYPROJECT["dependencies"], *extras[extra]], {extra}
    while todo:
        requirement = Requirement(todo.pop())
        if canonicalize_name(requirement.name) == "tstransfer":
            for included in requirement.extras - seen:
                seen.add(included)
                todo.extend(extras[included])
        else:
            names.add(canonicalize_name(requirement.name))
    return names


def env_pins(path: Path) -> dict[str, str]:
    """Package -> version of an env file's pip section; every line an exact pin of a package."""
    pins = {}
    for line in pip_section(path):
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            # `-e ..[extra]`, `.`, a path or URL: relative to the folder of Snakemake's copy.
            raise AssertionError(f"{path.name}: pip line {line!r} is not a package requirement") from None
        assert requirement.url is None, f"{path.name}: {line} installs from a URL"
        specs = list(requirement.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{path.name}: {line} is not an exact pin"
        pins[canonicalize_name(requirement.name)] = specs[0].version
    return pins


def test_pyproject_pins_each_package_exactly_once():
    assert {"numpy", "pandas", "tensorflow", "snakemake"} <= set(pyproject_pins())


@pytest.mark.parametrize("env", sorted(ENV_EXTRAS))
def test_environment_lists_its_extra_at_pyprojects_versions(env):
    path = env_file(env)
    conda = conda_section(path)
    # From conda: Python and pip alone; everything else is a pip line, as pyproject pins it.
    python = [entry for entry in conda if entry.startswith("python=")]
    assert sorted(conda) == sorted(["pip", *python]) and len(python) == 1, (
        f"{path.name}: conda packages {conda}, expected python=X.Y and pip"
    )
    assert SpecifierSet(PYPROJECT["requires-python"]).contains(f"{python[0].split('=')[1]}.0"), (
        f"{path.name}: {python[0]} outside requires-python {PYPROJECT['requires-python']}"
    )
    pins, env_pinned = pyproject_pins(), env_pins(path)
    assert set(env_pinned) == extra_packages(ENV_EXTRAS[env]), (
        f"{path.name}: lists {sorted(env_pinned)}, pyproject.toml's core and [{ENV_EXTRAS[env]}] "
        f"{sorted(extra_packages(ENV_EXTRAS[env]))}"
    )
    differ = {name: (version, pins[name]) for name, version in env_pinned.items() if pins[name] != version}
    assert not differ, f"{path.name}: (env, pyproject.toml) versions differ: {differ}"


def test_the_training_env_installs_tensorflow_with_its_cuda_wheels():
    """The cluster's GPUs need the CUDA build: the extra is part of the env's pin."""
    lines = [Requirement(line) for line in pip_section(env_file("training"))]
    (tensorflow,) = [r for r in lines if r.name == "tensorflow"]
    assert tensorflow.extras == {"and-cuda"}


def test_the_image_installs_the_project_with_pyprojects_pins():
    """containers/install.sh installs the project from its pyproject.toml (so with its pins)
    and pins TensorFlow's CUDA extra at pyproject.toml's version; the Apptainer definition
    and the Dockerfile both run it."""
    install = (CONTAINERS / "install.sh").read_text()
    pins = pyproject_pins()
    pinned = {
        canonicalize_name(Requirement(spec).name): (Requirement(spec), spec)
        for spec in re.findall(r'"([A-Za-z][\w.-]*(?:\[[\w,-]+\])?==[^"]+)"', install)
    }
    assert set(pinned) == {"tensorflow"}, f"install.sh pins {sorted(pinned)} beside pyproject.toml"
    requirement, spec = pinned["tensorflow"]
    assert requirement.extras == {"and-cuda"}
    assert str(next(iter(requirement.specifier)).version) == pins["tensorflow"], (
        f"install.sh: {spec}, pyproject.toml: tensorflow=={pins['tensorflow']}"
    )
    # The project itself, not editable, with the extras that run every rule and Snakemake.
    assert re.search(r'"\$SOURCE\[train,workflow\]"', install)
    assert "-e " not in install
    definition = (CONTAINERS / "tstransfer.def").read_text()
    dockerfile = (CONTAINERS / "Dockerfile").read_text()
    assert re.search(r"^%post\n\s+sh /opt/tstransfer/install\.sh /opt/tstransfer/source$", definition, re.M)
    assert re.search(r"^RUN sh /opt/tstransfer/install\.sh /opt/tstransfer/source$", dockerfile, re.M)
    # Both start from the Debian release whose Python 3.11 install.sh asks for.
    assert re.search(r"^From: debian:bookworm-slim$", definition, re.M)
    assert re.search(r"^FROM debian:bookworm-slim$", dockerfile, re.M)
    assert "python3.11 -m venv" in install
    assert SpecifierSet(PYPROJECT["requires-python"]).contains("3.11.0")
