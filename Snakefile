# Transfer learning for time series (Otovic et al.): the whole experiment as one DAG.
#
#   snakemake --cores 2                      embedded synthetic default (config/demo.yaml)
#   snakemake --profile profiles/slurm       the paper's experiment on a SLURM cluster
#
# The computation lives in the tstransfer package (src/tstransfer). The rules hold the
# experiment's plan: which jobs the config asks for (rules/common.smk), where each job's
# data come from (download, synthetic or one's own files), its resources and conda env.
# Each rule runs the package through a thin script (workflow/scripts/) or, for training
# jobs, its command line (python -m tstransfer.cli).
import gc
import os

from snakemake.utils import min_version, validate

min_version("9.0")

# Building the paper's DAG (17,600 jobs) allocates millions of objects that all live to
# the end: with Python's default collection threshold (700 allocations) the cyclic
# garbage collector scans them some 4,800 times, a fifth of a dry run's CPU time
# (bench/dag.py). Collecting after 50,000 allocations instead leaves a few hundred scans
# and changes no job. It holds for the Snakemake process only: training jobs, the job
# server included, run in processes of their own.
gc.set_threshold(50_000)


configfile: "config/demo.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


# `snakemake --report results/report.html` opens on this page, which inlines the run's
# summary (results/analysis/summary.html, rule summary).
report: "report/workflow.rst"


# With `--sdm apptainer` every job runs in this image (and its `conda:` directives are
# ignored): containers/tstransfer.def builds it (README, "A container image for the
# cluster"). config `container` names another: a path, or docker://, oras://, library://.
# Without --sdm apptainer it is not used.
container: config.get("container", os.path.join(workflow.basedir, "containers", "tstransfer.sif"))


# On a cluster, a GPU limit (profiles/slurm: resources gpu=1) holds per submitted job,
# not for the whole run: a packed group of training jobs then runs its members one after
# another on one GPU, while any number of groups run at once. Local runs ignore scopes.
resource_scopes:
    gpu="local",


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/training.smk"
include: "rules/analysis.smk"
include: "rules/archive.smk"
include: "rules/zoo.smk"
include: "rules/selection.smk"


rule all:
    default_target: True
    input:
        all_targets(),
        "results/MANIFEST.sha256",


onstart:
    start_job_server()


onsuccess:
    stop_job_server()


onerror:
    stop_job_server()
    report_slurm_failures(log)
