"""Fixtures shared across test modules: the dataset registry restored around every test,
one finished tiny workflow run, one SLURM cluster; and the grouping that lets pytest-xdist
(`make test`: two processes) run the SLURM tests beside the rest."""

from __future__ import annotations

import fcntl
import os
import subprocess

import pytest
import yaml

from workflow_runs import environment_without_the_project, snakemake, tiny_config

# Time limits (seconds) above pyproject.toml's default for the tests that set up these
# fixtures: the first test to ask for one pays for it. finished_run runs the tiny config
# locally; slurm_cluster starts a cluster, and test_slurm's runs on it may each take
# 1200 s (on_slurm's own timeout). A test's own timeout marker wins.
FIXTURE_TIMEOUTS = {"finished_run": 1800, "slurm_cluster": 3600}


def pytest_collection_modifyitems(config, items):
    for item in items:
        limits = [s for name, s in FIXTURE_TIMEOUTS.items() if name in getattr(item, "fixturenames", ())]
        if limits and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(max(limits)))
        module = item.path.name
        if "finished_run" in getattr(item, "fixturenames", ()) and WORK_UNITS.get(module) is None:
            raise pytest.UsageError(f"{module} uses finished_run: add it to WORK_UNITS in tests/conftest.py")
    # Under pytest-xdist (WorkUnits) the longest units first, so that the short ones fill in
    # at the end: the SLURM tests, the shared tiny run's, then the modules that take a
    # minute or more each (a fresh-clone run's --durations); the rest in collection order.
    items.sort(key=_start_rank)


def _start_rank(item) -> int:
    unit = WORK_UNITS.get(item.path.name, item.path.name)
    return FIRST.index(unit) if unit in FIRST else len(FIRST)


# Work units for `pytest -n N` (make test), by test module: a module is one unit, so that
# its module fixtures are built once; the modules that read the shared tiny run in place
# are one unit, so that no two processes use its folder at once; the SLURM tests, a third
# of the suite's time and mostly waiting on the scheduler, are one unit that runs first,
# beside everything else. (xdist's own --dist loadgroup would do this from markers, but
# 3.8.0 writes the group into Item._nodeid, which pytest 9 no longer reads.)
WORK_UNITS = {
    "test_slurm.py": "slurm",
    **dict.fromkeys(["test_crate.py", "test_finished_run_paths.py", "test_pipeline_e2e.py", "test_progress.py",
                     "test_published_rules.py", "test_subsets.py", "test_zoo.py"], "finished_run"),
}

FIRST = ["slurm", "finished_run", "test_envs.py", "test_demo_effect.py", "test_real_study.py", "test_own_dataset.py"]


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnits(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return WORK_UNITS.get(module.rsplit("/", 1)[-1], module)

    config.option.loadscopereorder = False  # keep the collection's order: the longest units first
    return WorkUnits(config, log)


@pytest.fixture(autouse=True)
def _dataset_registry():
    """Every test starts from the dataset registry it found and leaves it so: what a test
    registers (datasets.register, register_config, zoo.target_store through `rank` and
    `transfer`) is dropped, and an entry it removed comes back. REGISTRY keeps its identity,
    since modules hold it by reference."""
    from tstransfer import datasets

    before = dict(datasets.REGISTRY)
    yield
    datasets.REGISTRY.clear()
    datasets.REGISTRY.update(before)


@pytest.fixture(autouse=True)
def _root_logger():
    """Every test leaves the root logger as it found it: an entry point run in-process
    (cli.main calls logs.setup) replaces its handlers with one on the sys.stderr of that
    moment, pytest's capture for that test, closed once it ends; a later test that logs
    would then print "--- Logging error ---" into its own stderr."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def bare_env(tmp_path_factory):
    env = environment_without_the_project(tmp_path_factory.mktemp("bin"))
    # The guard itself: python on this PATH runs, and cannot import the project.
    runs = subprocess.run(["python", "-c", "print(6 * 7)"], env=env, capture_output=True, text=True)
    assert runs.returncode == 0 and runs.stdout.strip() == "42", runs.stderr
    for python in ("python", "python3"):
        imports = subprocess.run([python, "-c", "import tstransfer"], env=env, capture_output=True, text=True)
        assert imports.returncode != 0 and "No module named 'tstransfer'" in imports.stderr
    return env


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, bare_env):
    """The tiny config run locally to the end (shared: tests that change it work on a copy).

    Under pytest-xdist every process may ask for it; it is run once, in the folder that the
    processes' temporary folders share, by whichever asks first while the others wait."""
    shared = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:  # each process's basetemp is a folder of one parent
        shared = shared.parent
    workdir, done = shared / "tiny-finished-run", shared / "tiny-finished-run.done"
    with open(shared / "tiny-finished-run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            workdir.mkdir(exist_ok=True)
            (workdir / "config.yaml").write_text(yaml.safe_dump(tiny_config()))
            snakemake(workdir, bare_env, "--cores", "2")
            done.touch()
    return workdir


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A real single-node SLURM cluster (tstransfer.devtools.slurm_cluster) for the whole test run.

    Skips where it cannot start (not root, packages missing: `make slurm-deps`); under
    CI=true it fails instead, since CI installs the packages and runs as root.
    """
    from shared_data import skip_or_fail
    from tstransfer.devtools.slurm_cluster import ClusterError, SlurmCluster, missing_requirements

    reasons = missing_requirements()
    if reasons:
        skip_or_fail("no SLURM cluster here: " + "; ".join(reasons), "the SLURM tests must run")
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except ClusterError as error:
        pytest.fail(str(error), pytrace=False)
    yield cluster
    cluster.stop()
