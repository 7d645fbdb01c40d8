# Helpers, input functions and wildcard constraints shared by every rule file.
#
# Parsing this file must stay cheap: every cluster job parses the Snakefile again, so
# nothing here touches data or imports TensorFlow or zarr (tstransfer.plan, the
# tstransfer.protocol it builds specs with and the dataset registry are TensorFlow-free).
# The jobs, their kinds and their paths are tstransfer.plan's: the targets below and the
# rules' log: and benchmark: come from its table (plan.KINDS).
import atexit
import json
import os
import shlex
import sys

from snakemake.logging import logger
from snakemake.settings.types import DeploymentMethod

from tstransfer import datasets, plan, protocol, slurm_compat
from tstransfer.selection import proxy

# The results tree's path patterns (tstransfer.plan builds every job's paths from them).
from tstransfer.layout import (
    ANALYSIS_DIR,
    MANIFEST,
    PRETRAIN_DIR,
    RAW_FILE,
    SELECTED_DIR,
    STORE,
    SUBSET,
    SYNTHETIC_DIR,
    TABLES_DIR,
    ZOO_DIR,
    ZOO_MODEL_DIR,
    omega_label,
    raw_origin,
)

# Datasets given by format: (one's own data) join the built-in six in the registry. Their
# task and channel count (for the job specs below) are read from the data at parse time
# unless their entry states both (README, "Your own dataset").
CUSTOM_DATASETS = datasets.register_config(config)
DATASETS = list(config["datasets"])
ARCHS = list(config["architectures"])
VARIANTS = list(config["variants"])
SEEDS = list(range(config["pretrain"]["seeds"]))
SOURCES = list(config["sources"])
TARGETS = list(config["targets"])
# Source selection validated on the study (rules/selection.smk); none named: not planned.
# The fine-tuning proxy (in `all`, or named) is read from the study's own fine-tuning runs
# (rule selection_proxy); every other estimator scores the zoo models (selection_scores).
SELECTION_ESTIMATORS = list(config.get("selection", {}).get("estimators", []))
SELECTION_DATASETS = list(dict.fromkeys([*TARGETS, *SOURCES]))
PROXY_ESTIMATOR = "finetune_proxy"
SELECTION_PROXY = any(n in ("all", PROXY_ESTIMATOR) for n in SELECTION_ESTIMATORS)
SELECTION_MODEL_SCORES = [n for n in SELECTION_ESTIMATORS if n != PROXY_ESTIMATOR]
# selection.proxy, its absent keys from tstransfer.selection.proxy.STUDY_DEFAULTS.
PROXY_SETTINGS = proxy.study_settings(config)

RAW_DIR = config["raw_dir"]
SELECTED_MODEL = os.path.join(SELECTED_DIR, "model.keras")


def _alternatives(values):
    return "|".join(sorted(map(str, values), key=len, reverse=True))


wildcard_constraints:
    dataset=_alternatives(DATASETS),
    source=_alternatives(DATASETS),
    target=_alternatives(DATASETS),
    arch=_alternatives(ARCHS),
    variant=_alternatives(VARIANTS),
    run=r"\d+",
    seed=r"\d+",
    omega=r"\d+\.\d+",
    smax="with|without",
    filename=r"[^/]+",


# ----------------------------------------------------------------------------- data
def raw_source(dataset):
    """Where the converter's raw data comes from, as (folder, paths): the folder it reads
    and the paths that must exist before it runs.

    The one place that chooses between the three sources: synthetic data (config
    raw_data), the user's own file or folder (datasets.<name>.path, taken as it is), or
    the downloads of datasets.<name>.files in the download folder.
    """
    spec = config["datasets"][dataset]
    origin = raw_origin(config, dataset)
    if origin == "synthetic":
        folder = f"{SYNTHETIC_DIR}/{dataset}"
        return folder, [folder]
    if origin in ("custom", "path"):
        return spec["path"], [spec["path"]]
    files = [downloaded_path(dataset, item) for item in spec["files"]]
    return f"{RAW_DIR}/{dataset}", files


def raw_folder(wildcards):
    """Convert's raw param: the folder the converter reads."""
    return raw_source(wildcards.dataset)[0]


def raw_input(wildcards):
    """Convert's input: the raw data and the files its extract settings download (the
    LOMAX keep-list)."""
    dataset = wildcards.dataset
    paths = raw_source(dataset)[1]
    extra = extract_downloads(dataset).values()
    return paths + [downloaded_path(dataset, item) for item in extra]


def downloaded_path(dataset, item):
    return RAW_FILE.format(raw_dir=RAW_DIR, dataset=dataset, filename=item["name"])


def extract_downloads(dataset):
    """Extract settings given as a file to download ({name, url, size, sha256}), by key.

    Such a file is downloaded and checksum-verified like a raw file, also when the raw
    data is the user's own (datasets.<name>.path), and the converter gets its path.
    """
    return {
        key: value
        for key, value in config["datasets"][dataset].get("extract", {}).items()
        if isinstance(value, dict)
    }


def extract_settings(dataset):
    """The dataset's extract settings as the converter takes them: downloads as paths.

    A dataset given by format: takes its whole entry, so that any change reconverts it.
    """
    if dataset in CUSTOM_DATASETS:
        return dict(config["datasets"][dataset])
    # switch authors_data_releases: STEAD's single layout, SPEECH's kaiser_best resampler
    extract = protocol.data_settings(
        SWITCHES, dataset, config["datasets"][dataset]["extract"]
    )
    for key, item in extract_downloads(dataset).items():
        extract[key] = downloaded_path(dataset, item)
    return extract


def synthetic_settings(wildcards):
    """Synthesize's settings: config synthetic.<dataset>, with STEAD's files in the
    single release's layout under switch authors_data_releases."""
    return protocol.data_settings(
        SWITCHES,
        wildcards.dataset,
        config["synthetic"][wildcards.dataset],
        synthetic=True,
    )


def downloads(dataset):
    """Every file the dataset downloads: its files and its extract downloads."""
    files = config["datasets"][dataset].get("files", [])
    return [*files, *extract_downloads(dataset).values()]


def check_download_names():
    """Each dataset's downloads need distinct names: they share one folder, and a second
    entry under a name would silently never be fetched (download_spec takes the first).
    """
    for dataset in DATASETS:
        names = [item["name"] for item in downloads(dataset)]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(
                f"config datasets.{dataset}: file name(s) {twice} appear more than once "
                "under files and extract downloads"
            )


check_download_names()


def check_synthetic_settings():
    """With raw_data: synthetic, each built-in dataset in use needs its generator's settings."""
    if config["raw_data"] != "synthetic":
        return
    missing = [
        d for d in DATASETS if d not in CUSTOM_DATASETS and d not in config["synthetic"]
    ]
    if missing:
        raise ValueError(
            f"config synthetic: no entry for {', '.join(missing)} (raw_data is synthetic)"
        )


check_synthetic_settings()


def check_referent_check():
    """A published figure names a dataset of this config (one that is no target is unused):
    any other name is a typo."""
    named = list(((config.get("referent_check") or {}).get("accuracy") or {}))
    unknown = [name for name in named if name not in DATASETS]
    if unknown:
        raise ValueError(
            f"config referent_check.accuracy: {', '.join(unknown)} is not a dataset of this config"
            f" ({', '.join(DATASETS)})"
        )


check_referent_check()


def check_proxy_omega():
    """The proxy reads the runs at selection.proxy.omega: it must be a multiplier the study trains."""
    if not SELECTION_PROXY:
        return
    omega = PROXY_SETTINGS["omega"]
    if omega_label(omega) not in {omega_label(o) for o in config["omegas"]}:
        raise ValueError(
            f"config selection.proxy.omega: {omega} is not one of omegas {config['omegas']} "
            "(the fine-tuning proxy reads the study's runs at that multiplier)"
        )


check_proxy_omega()


def download_spec(wildcards):
    dataset = wildcards.dataset
    for item in downloads(dataset):
        if item["name"] == wildcards.filename:
            return item
    raise ValueError(
        f"config datasets.{dataset} has no file named {wildcards.filename!r} "
        "(under files or as an extract download)"
    )


PUBLISHED_DOWNLOAD = "resources/published/published_results.tar.gz"


def published_input(wildcards):
    """The authors' results: a local archive or folder, or the download of a URL."""
    source = config["published_results"]
    if source.startswith(("http://", "https://")):
        return PUBLISHED_DOWNLOAD
    return source


# ----------------------------------------------------------------------------- training
def job_envs_deployed():
    """Whether jobs run in a conda env or a container (--sdm conda / apptainer).

    The job server runs in the interpreter that runs Snakemake, so a job handed to it
    would train outside the env or image named by its rule. With either, every job
    trains in its own process instead.
    """
    methods = workflow.deployment_settings.deployment_method
    return bool({DeploymentMethod.CONDA, DeploymentMethod.APPTAINER} & set(methods))


def job_python():
    """The interpreter that runs a training job's `python -m tstransfer.cli` command.

    Chosen the way Snakemake's `script:` directive chooses it: under `--sdm conda` every
    training rule runs in its env (envs/training.yaml), whose own `python` is first on
    PATH, and under `--sdm apptainer` in the image, whose venv's `python` is first on
    PATH (containers/tstransfer.def); otherwise the interpreter running Snakemake, which has tstransfer installed. A
    bare `python` would be whatever comes first on PATH: the system's, when the venv is
    not activated. A SLURM job runs Snakemake with the submitting process's interpreter
    and parses this file again, so it chooses the same one.
    """
    if job_envs_deployed():
        return "python"
    return sys.executable


# Training rules' shell commands start with "$TSTRANSFER_PYTHON": an environment
# variable rather than a param, since a param would rerun every job when the venv moves,
# and rather than a global `{PYTHON}` placeholder, which `snakemake --lint` rejects.
# Set here, not read (so no `envvars:`): every Snakemake process, a SLURM job's too,
# sets it for its own jobs.
# $TSTRANSFER_SRC is the workflow's own src/, which those commands put on PYTHONPATH:
# the conda envs do not install the project (Snakemake builds each from a copy of its
# file under .snakemake/conda/, where `-e ..` would name no project), and Snakemake
# removes an inherited PYTHONPATH from conda jobs, so the command sets it itself. A job
# thus runs the code of the workflow it belongs to, whatever its interpreter has
# installed. The `script:` rules do the same through workflow/scripts/srcpath.py.
os.environ.update(
    TSTRANSFER_PYTHON=job_python(),
    TSTRANSFER_SRC=os.path.join(workflow.basedir, "src"),
)


# What a training job receives as its config (--spec), built once per (kind, arch,
# dataset) by the package (tstransfer.plan.job_spec, TensorFlow-free): the seed,
# the training settings, the dataset's stream_max and the protocol switches that shape
# this job. Snakemake records it as the job's params, so a config change reruns exactly
# the jobs it shapes.
SWITCHES = protocol.project_switches(config)
# The switches as rules' params name them (the zoo's index, the summary): those added for
# issue 21 only when on, so that those rules' params stay as they were by default.
RECORDED_SWITCHES = protocol.recorded(SWITCHES)
_SPECS = {
    (kind, arch, dataset): shlex.quote(
        json.dumps(
            plan.job_spec(config, kind=kind, arch=arch, dataset=dataset),
            sort_keys=True,
            separators=(",", ":"),
        )
    )
    for kind in plan.TRAINING_KINDS
    for arch in ARCHS
    for dataset in DATASETS
}
# Switches that shape a data step or the seed selection, not a training job. Such a
# rule's script (its mtime) and params are Snakemake rerun triggers, so with the switch
# off the rule keeps them exactly as they were (no rerun of the default study), and the
# switch brings its own script and param.
if SWITCHES["unstratified_subsets"]:
    SUBSET_SCRIPT = "../workflow/scripts/subset_unstratified.py"
    SUBSET_SWITCHES = {"stratified": False}
else:
    SUBSET_SCRIPT, SUBSET_SWITCHES = "../workflow/scripts/subset.py", {}
if SWITCHES["select_seed_on_test"]:
    SELECT_SCRIPT = "../workflow/scripts/select_pretrained_on_test.py"
    SELECT_SWITCHES = {"criterion": "test"}
else:
    SELECT_SCRIPT, SELECT_SWITCHES = "../workflow/scripts/select_pretrained.py", {}
# The grid search's curve, as the analysis names it: validation, or the test set (paper).
SELECTION = protocol.selection_curve(SWITCHES)


def check_data_releases():
    """Switch authors_data_releases reads STEAD's 2019 single-file release: a config that
    downloads STEAD must list that release's files."""
    if not SWITCHES["authors_data_releases"] or "stead" not in DATASETS:
        return
    if raw_origin(config, "stead") != "download":
        return
    from tstransfer.datasets.stead import SINGLE_CSV, SINGLE_HDF5

    names = {item["name"] for item in config["datasets"]["stead"].get("files", [])}
    missing = sorted({SINGLE_HDF5, SINGLE_CSV} - names)
    if missing:
        raise ValueError(
            "config datasets.stead.files: switch authors_data_releases reads STEAD's 2019 "
            f"single-file release, which needs {', '.join(missing)} listed"
        )


check_data_releases()
PROTOCOL_LABEL = protocol.label(config["protocol"], SWITCHES)


def cli_args(kind, wildcards):
    """The CLI's arguments of a training job but its input paths, as one shell-quoted string:
    --spec, the kind's identity fields (plan.KINDS[kind].identity, each from its
    wildcard) and --out, the job's folder.

    A function of the wildcards alone, so that Snakemake records it as the job's params
    and reruns exactly the jobs whose arguments (config values included) change; a
    function that took `input` would not be recorded. The input paths (--store, --subset,
    --pretrained) are the rule's own `input:`, which the shell command names, so they are
    built once. One params function per job keeps the DAG's cost per job close to
    Snakemake's floor (bench/dag.py): each extra input function or param is evaluated
    for every one of the 17,000 jobs.
    """
    record = plan.KINDS[kind]
    dataset = wildcards[record.field(record.dataset).wildcard]
    parts = [f"--spec {_SPECS[kind, wildcards.arch, dataset]}"]
    parts += [
        f"--{field.name.replace('_', '-')} {shlex.quote(str(wildcards[field.wildcard]))}"
        for field in record.identity
    ]
    parts.append(f"--out {shlex.quote(record.folder.format(**wildcards))}")
    return " ".join(parts)


# ----------------------------------------------------------------------------- targets
def planned(kind):
    """The outputs of every job of `kind` that the config plans (tstransfer.plan)."""
    return plan.paths(kind, plan.KINDS[kind].output, config)


def expected_jobs(wildcards):
    """The training jobs the config asks for, per kind: the summary page sets them beside
    the results that exist. A params function, so that it runs only when the summary job
    is planned, not on every parse of the Snakefile."""
    return plan.count_jobs(config, plan.TRAINING_KINDS)


def all_results():
    """Every training job's result.json."""
    return [path for kind in plan.TRAINING_KINDS for path in planned(kind)]


def all_targets():
    """Everything the experiment produces (the archive rule checksums these)."""
    targets = [
        *planned("convert"),
        *planned("subset"),
        f"{TABLES_DIR}/results.parquet",
        f"{ANALYSIS_DIR}/done",
        f"{ANALYSIS_DIR}/summary.html",
    ]
    if SELECTION_ESTIMATORS:
        targets.append(f"{ANALYSIS_DIR}/selection_validation.csv")
    if config["published_results"]:
        targets += [
            "results/published/analysis/done",
            f"{ANALYSIS_DIR}/comparison_with_published.csv",
            f"{ANALYSIS_DIR}/comparison_referents_with_published.csv",
        ]
    return targets


# ----------------------------------------------------------------------------- job server
_JOB_SERVER = {}


def start_job_server():
    """Start the warm training-job server for this run (config job_server, local runs).

    See src/tstransfer/jobserver.py: it removes TensorFlow's import from every job's
    fixed cost. Jobs find it through an environment variable they inherit from here.
    """
    if config["job_server"] and workflow.local_exec and not job_envs_deployed():
        from tstransfer import jobserver

        _JOB_SERVER["handle"] = jobserver.start_background("results/logs/jobserver.log")


def stop_job_server():
    handle = _JOB_SERVER.pop("handle", None)
    if handle is not None:
        handle.stop()


def start_allocation_job_server():
    """In a packed SLURM allocation, one server for the group's training jobs.

    Runs while the allocation's batch process parses this file (hooks do not run in
    cluster jobs), so TensorFlow's import overlaps Snakemake's DAG building; the group's
    srun steps inherit the variable. The server stops when this process exits.
    """
    if config["job_server"] and not job_envs_deployed():
        from tstransfer import jobserver

        handle = jobserver.start_for_allocation(
            sys.argv, plan.TRAINING_KINDS, "results/logs/jobserver"
        )
        if handle is not None:
            _JOB_SERVER["handle"] = handle
            atexit.register(stop_job_server)


start_allocation_job_server()


def report_slurm_failures(snakemake_log):
    """On error: why SLURM ended each failed job (src/tstransfer/slurm_compat.py)."""
    for line in slurm_compat.failure_report(snakemake_log):
        logger.error(line)


# The SLURM plugin takes "CANCELLED by <uid>" for a running job (src/tstransfer/slurm_compat.py).
slurm_compat.patch_cancelled_state()
