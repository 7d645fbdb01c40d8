"""The package's structure: which parts import TensorFlow, and whether each extra suffices.

The data and analysis rules run in conda envs without TensorFlow (envs/data.yaml,
envs/analysis.yaml), each installing only its own extra of pyproject.toml; the Snakemake
process itself imports tstransfer.protocol. These tests keep it that way without
building any env: one imports every module those rules use in a fresh interpreter and
looks for TensorFlow in ``sys.modules``; the other reads the third-party imports each
part makes when its modules are imported and checks them against its extra's
requirements (resolved through the installed packages' metadata).
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
TENSORFLOW = ("tensorflow", "keras", "tcn")
# TensorFlow-free by design, whether or not a workflow script imports them today.
LIGHT_MODULES = (
    "tstransfer.datasets", "tstransfer.store", "tstransfer.pipeline", "tstransfer.protocol",
    "tstransfer.registry", "tstransfer.metrics", "tstransfer.analysis",
    "tstransfer.analysis.figures", "tstransfer.analysis.published",
    "tstransfer.analysis.referents", "tstransfer.analysis.render",
    "tstransfer.analysis.results", "tstransfer.analysis.stats", "tstransfer.analysis.tables",
)
# What the Snakemake process imports (rules/common.smk), and the command run beside it
# (tstransfer.progress); and what a training job runs.
WORKFLOW_MODULES = ("tstransfer.plan", "tstransfer.protocol", "tstransfer.jobserver", "tstransfer.progress")
TRAINING_MODULES = (
    "tstransfer.cli", "tstransfer.jobs", "tstransfer.training", "tstransfer.feed",
    "tstransfer.models", "tstransfer.transfer", "tstransfer.optim",
)


def _module_file(name: str) -> Path | None:
    """The source file of tstransfer module ``name`` (found on disk: nothing is imported)."""
    path = SRC.joinpath(*name.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path, package: str, *, top_level_only: bool) -> set[str]:
    """Dotted names a source file imports: modules, and ``module.name`` for each from-import.

    ``package`` resolves relative imports. With ``top_level_only`` the imports inside
    functions (which run only when the function does) are left out.
    """
    stack, names = list(ast.parse(path.read_text()).body), set()
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            module = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
        elif not (top_level_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))):
            stack.extend(ast.iter_child_nodes(node))
    return names


def _script_modules(script: Path) -> set[str]:
    """The tstransfer modules a workflow script imports."""
    return {
        name for name in _imported_modules(script, "", top_level_only=False)
        if name.split(".")[0] == "tstransfer" and _module_file(name)
    }


def _rule_envs() -> dict[str, set[str]]:
    """Conda env name -> the workflow scripts its rules run (from rules/*.smk)."""
    envs: dict[str, set[str]] = {}
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        for block in re.split(r"^rule ", smk.read_text(), flags=re.M)[1:]:
            env = re.search(r'"\.\./envs/(\w+)\.yaml"', block)
            script = re.search(r'"\.\./workflow/scripts/(\w+\.py)"', block)
            if env and script:
                envs.setdefault(env.group(1), set()).add(script.group(1))
    return envs


def _env_extra(env: str) -> str:
    """The extra an env's pip section installs: ``-e "..[data]"`` -> ``data``."""
    spec = yaml.safe_load((ROOT / "envs" / f"{env}.yaml").read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    editable = [line for line in pip if line.startswith("-e")]
    assert len(editable) == 1, f"envs/{env}.yaml: one editable install of the project"
    match = re.fullmatch(r'-e "\.\.\[(\w+)\]"', editable[0])
    assert match, f"envs/{env}.yaml installs {editable[0]!r}, not one extra of the project"
    return match.group(1)


def _part_modules() -> dict[str, set[str]]:
    """Extra -> the tstransfer modules its part imports."""
    parts: dict[str, set[str]] = {
        "workflow": set(WORKFLOW_MODULES), "train": set(TRAINING_MODULES),
    }
    for env, scripts in _rule_envs().items():
        modules = parts.setdefault(_env_extra(env), set())
        for script in scripts:
            modules |= _script_modules(ROOT / "workflow" / "scripts" / script)
    return parts


def test_the_envs_install_their_own_extra_and_dev_has_them_all():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert {_env_extra(env) for env in ("data", "analysis", "training")} == {"data", "analysis", "train"}
    dev = [Requirement(r) for r in extras["dev"]]
    assert set().union(*(r.extras for r in dev if r.name == "tstransfer")) == set(extras) - {"dev"}
    light = project["dependencies"] + extras["data"] + extras["analysis"]
    assert not {"tensorflow", "keras", "keras-tcn"} & {canonicalize_name(Requirement(r).name) for r in light}
    # Exact pins everywhere (the extras' references to each other aside).
    assert all("==" in r for r in project["dependencies"])
    assert all("==" in r or r.startswith("tstransfer[") for e in extras.values() for r in e)


def test_data_and_analysis_modules_import_without_tensorflow():
    """Everything the data and analysis rules and the Snakemake process import is TensorFlow-free."""
    parts = _part_modules()
    modules = sorted(set(LIGHT_MODULES) | parts["data"] | parts["analysis"] | parts["workflow"])
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{TENSORFLOW!r})))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []


# ------------------------------------------------------------------ extras suffice


def _third_party_imports(entry: set[str], *, in_functions: bool = False) -> set[str]:
    """Top-level third-party modules imported when the ``entry`` modules are imported.

    Follows tstransfer's own module-level imports (and the packages above each module,
    which Python imports first). Imports inside functions run only when the function
    does (the data env imports tstransfer.jobs, whose training code imports Keras) and
    are followed only with ``in_functions``.
    """
    seen, third_party, todo = set(), set(), list(entry)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        path = _module_file(name)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for imported in _imported_modules(path, package, top_level_only=not in_functions):
            top = imported.split(".")[0]
            if top == "tstransfer":
                if _module_file(imported):
                    todo.append(imported)
            elif top not in sys.stdlib_module_names and top != "__future__":
                third_party.add(top)
    return third_party


def _closure(requirements: list[str], extras: dict[str, list[str]]) -> set[str]:
    """Distributions (canonical names) that ``requirements`` install, transitively."""
    installed, todo = set(), list(requirements)
    while todo:
        requirement = Requirement(todo.pop())
        name = canonicalize_name(requirement.name)
        if name == "tstransfer":
            for extra in requirement.extras:
                todo.extend(extras[extra])
            continue
        if name in installed:
            continue
        installed.add(name)
        for sub in importlib.metadata.requires(name) or []:
            marker = Requirement(sub).marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in ("", *requirement.extras)):
                todo.append(sub)
    return installed


@pytest.mark.parametrize("extra", ["data", "analysis", "workflow", "train"])
def test_each_extra_installs_what_its_part_imports(extra):
    """The third-party packages a part's modules import belong to the core plus its extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    allowed = _closure(project["dependencies"] + extras[extra], extras)
    distributions = importlib.metadata.packages_distributions()
    # A training job runs all of its modules' code, so its lazy imports count too.
    imported = _third_party_imports(_part_modules()[extra], in_functions=extra == "train")
    missing = {
        top: distributions.get(top) for top in imported
        if not {canonicalize_name(d) for d in distributions.get(top, [top])} & allowed
    }
    assert not missing, f"the {extra} part imports packages its extra does not install: {missing}"
