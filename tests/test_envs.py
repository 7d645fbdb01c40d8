"""Snakemake builds the conda envs from its own copies of envs/*.yaml, and jobs run in them.

This is `snakemake --sdm conda` as far as this machine allows. Snakemake itself does all
it does on a cluster: it copies each env file to .snakemake/conda/<hash>.yaml, has conda
create the env from that copy (`conda env create --file <copy> --prefix <hash>/`) and runs
every job as `source <conda>/bin/activate <env>; <command>`. Only conda is stood in for
(tests/conda_standin.py): conda and conda-forge cannot be reached here. The env files ask
conda for Python and pip alone and list everything else as pip lines, so the stand-in does
what conda would do with them but for the interpreter: a fresh venv of this machine's
Python (the version the file asks for), then the pip section installed as conda's pip
installer does, from a requirements file beside the copy and with that folder as the
working directory. A `-e ..` (what the env files had) fails there as it does under conda.

The wheels come from `make env-wheels` (PyPI's wheels of every pip line, downloaded once);
pip runs with --no-index, so the test touches no network.

Why fresh venvs, not `venv --system-site-packages` or a .pth into the project's own venv:
those would see the project and every package of that venv, so neither a missing pin nor
a job that only worked with the project installed could make this test fail. Here an env
holds exactly what its file lists, and the project is not installed in any of them.

One exception is Snakemake's own: a `script:` job's preamble appends the driving
Snakemake's sys.path to the env's (to unpickle its `snakemake` object), so the env's
packages come first but the driving venv's are behind them. The training jobs (`shell:`)
get no such path: the referent job is the proof that an env alone runs the package, and
test_every_scripts_imports_work_in_its_env_alone checks the scripts' imports in each env
with Python's isolated mode.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conda_standin import install as install_conda_standin
from env_files import ENV_EXTRAS, env_file, pip_section
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from shared_data import skip_or_fail
from workflow_runs import ROOT, environment_without_the_project, snakemake, tiny_config

WHEELS = ROOT / "resources" / "wheels" / "envs"
REFERENT = "results/referent/convnetquake_ingv/emg/1k5/run0/result.json"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def conda_run(tmp_path_factory):
    """The tiny config's envs created by Snakemake through the stand-in, and one referent
    job (with the data jobs it needs) run in them: (workdir, Snakemake's output)."""
    if not (WHEELS / ".downloaded").exists():
        skip_or_fail(f"the env files' wheels are not in {WHEELS}: run make env-wheels",
                     "make test downloads them first")
    base = tmp_path_factory.mktemp("conda")
    env = environment_without_the_project(base / "shim")
    install_conda_standin(base / "conda-root", base / "conda-bin")
    env.update(
        PATH=os.pathsep.join([str(base / "conda-bin"), env["PATH"]]),
        PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(WHEELS),
        PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_CACHE_DIR="1",
    )
    workdir = base / "run"
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(tiny_config()))
    # Every env of the whole DAG, then one training job and its inputs.
    created = snakemake(workdir, env, "--sdm", "conda", "--conda-create-envs-only", "--cores", "1")
    ran = snakemake(workdir, env, "--sdm", "conda", "--cores", "2", REFERENT)
    return workdir, created.stdout + created.stderr + ran.stdout + ran.stderr


def created_envs(workdir: Path) -> dict[str, Path]:
    """env name (envs/<name>.yaml) -> the env Snakemake created from its copy of that file."""
    envs = {}
    for copy in sorted((workdir / ".snakemake" / "conda").glob("*.yaml")):
        (name,) = [name for name in ENV_EXTRAS if copy.read_bytes() == env_file(name).read_bytes()]
        envs[name] = copy.with_suffix("")
    return envs


def run_in(env_path: Path, code: str, *args: str) -> subprocess.CompletedProcess:
    """The env's own python in isolated mode: no PYTHONPATH, no user site, no script folder."""
    return subprocess.run([str(env_path / "bin" / "python"), "-I", "-c", code, *args],
                          capture_output=True, text=True, cwd=env_path)


def test_snakemake_builds_every_env_from_its_copy_with_the_pinned_packages_alone(conda_run):
    workdir, _ = conda_run
    envs = created_envs(workdir)
    assert set(envs) == set(ENV_EXTRAS), f"envs created: {sorted(envs)}"
    for name, path in envs.items():
        installed = json.loads(run_in(path, "import json, importlib.metadata as m; print(json.dumps("
                                      "{d.metadata['Name'].lower().replace('_', '-'): d.version "
                                      "for d in m.distributions()}))").stdout)
        for line in pip_section(env_file(name)):
            requirement = Requirement(line)
            version = installed.get(canonicalize_name(requirement.name))
            assert requirement.specifier.contains(version or "0"), f"{name}: {line}, installed {version}"
        # The project is not installed; neither is Snakemake (no env lists it).
        assert "tstransfer" not in installed and "snakemake" not in installed, name
        assert run_in(path, "import tstransfer").returncode != 0, name


def test_a_training_job_runs_in_the_env_without_the_project_installed(conda_run):
    workdir, output = conda_run
    envs = created_envs(workdir)
    assert re.search(rf"Activating conda environment: \.snakemake/conda/{envs['training'].name}\b", output), output
    result = json.loads((workdir / REFERENT).read_text())
    versions = result["versions"]
    # Ran by the env's python: TensorFlow at the env's pin, no Snakemake (the driving
    # venv has it), and the package from the workflow's src/ (its own version).
    assert versions["tensorflow"] == "2.21.0"
    assert versions["snakemake"] is None
    assert versions["tstransfer"] == __import__("tstransfer").__version__
    # No job server ran (it would have trained in the driving interpreter instead).
    assert not (workdir / "results" / "logs" / "jobserver.log").exists()


def _script_envs() -> dict[str, str]:
    """workflow script -> the env its rule names (rules/*.smk)."""
    scripts = {}
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        for block in re.split(r"^rule ", smk.read_text(), flags=re.M)[1:]:
            env = re.search(r'"\.\./envs/(\w+)\.yaml"', block)
            script = re.search(r'"\.\./workflow/scripts/(\w+\.py)"', block)
            if env and script:
                assert scripts.setdefault(script.group(1), env.group(1)) == env.group(1), script.group(1)
    return scripts


def test_every_scripts_imports_work_in_its_env_alone(conda_run):
    """Each workflow script's imports (srcpath first, then the package's modules), run in
    its rule's env in isolated mode: the env and the workflow's src/ suffice."""
    workdir, _ = conda_run
    envs = created_envs(workdir)
    scripts = _script_envs()
    assert scripts and set(scripts.values()) <= set(envs)
    for script, env in sorted(scripts.items()):
        tree = ast.parse((ROOT / "workflow" / "scripts" / script).read_text())
        imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
        assert isinstance(imports[0], ast.Import) and imports[0].names[0].name == "srcpath", script
        code = "import sys; sys.path.insert(0, sys.argv[1])\n" + "\n".join(ast.unparse(node) for node in imports)
        done = run_in(envs[env], code, str(ROOT / "workflow" / "scripts"))
        assert done.returncode == 0, f"{script} in envs/{env}.yaml: {done.stderr}"
