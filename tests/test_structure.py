"""The package's structure: which parts import TensorFlow, and whether each extra suffices.

The data and analysis rules run in conda envs without TensorFlow (envs/data.yaml,
envs/analysis.yaml), each listing only its own extra of pyproject.toml; the Snakemake
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
from env_files import ENV_EXTRAS
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
    "tstransfer.analysis.gains", "tstransfer.analysis.study", "tstransfer.analysis.wins",
    "tstransfer.analysis.cells", "tstransfer.analysis.summary",
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
    """The extra of pyproject.toml that an env's pip section lists (tests/env_files.py)."""
    return ENV_EXTRAS[env]


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
    assert {path.stem for path in (ROOT / "envs").glob("*.yaml")} == set(ENV_EXTRAS)
    assert set(_rule_envs()) <= set(ENV_EXTRAS)
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


# ------------------------------------------------------------------ size and import circles

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def _source_modules() -> dict[str, Path]:
    """Dotted name -> file, for every module under src/ (a package is its ``__init__.py``)."""
    modules = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The src modules that ``name`` imports anywhere in its file (functions included).

    ``from package import name`` is an import of the submodule when ``name`` is one,
    else of the package's ``__init__``; relative imports resolve against ``name``'s
    package.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            # ``import a.b.c`` names a module; fall back to the nearest enclosing one.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_no_module_is_over_the_line_limit():
    too_long = {
        str(path.relative_to(ROOT)): n for path in _source_modules().values()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"


def test_no_function_is_over_the_line_limit():
    too_long = {}
    for path in _source_modules().values():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    too_long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = lines
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines: {too_long}"


def test_the_import_graph_finds_a_circle():
    """The circle search itself: a circle through three modules, and a tail that is none."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert _import_cycles(graph) == [["a", "b", "c"]]
    assert _import_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_among_the_source_modules():
    """No module imports, even inside a function, a module that imports it back."""
    modules = _source_modules()
    graph = {name: _imports_of(name, path, modules) for name, path in modules.items()}
    cycles = _import_cycles(graph)
    assert not cycles, "import circles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_bench_scripts_take_nothing_from_tests():
    """bench/ imports the package (its shared helpers: tstransfer.devtools), never tests/."""
    test_modules = {path.stem for path in (ROOT / "tests").glob("*.py")}
    for script in sorted((ROOT / "bench").glob("*.py")):
        tree = ast.parse(script.read_text(), filename=str(script))
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
        assert not imported & (test_modules | {"tests"}), f"{script.name} imports {imported & test_modules}"
        assert "sys.path" not in script.read_text(), f"{script.name} edits sys.path"



def test_every_workflow_script_puts_the_workflows_src_first():
    """Under --sdm conda or apptainer the env does not install the project: a script finds
    it only through srcpath, imported before anything of the package. test_envs runs the
    scripts that the rules name literally; this covers those a rule picks by a variable
    (a switch's own script, rules/common.smk) as well."""
    scripts = sorted(p for p in (ROOT / "workflow" / "scripts").glob("*.py") if p.name != "srcpath.py")
    assert len(scripts) > 10
    for script in scripts:
        tree = ast.parse(script.read_text())
        imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        assert imports and isinstance(imports[0], ast.Import) and imports[0].names[0].name == "srcpath", script.name
