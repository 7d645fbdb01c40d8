"""The Snakemake workflow: SLURM resources, lint and format, config checks. (The paper's
and the demo's job lists: tests/test_plan.py.)"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from workflow_runs import ROOT, TRAINING_KINDS


def snakemake(*args, cwd=ROOT, check=True):
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=cwd, capture_output=True, text=True
    )
    if check and done.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def _job_blocks(output: str):
    """(rule, resources dict) for every job a dry run lists."""
    rule = None
    for line in output.splitlines():
        match = re.match(r"\s*(?:local)?rule (\w+):", line)
        if match:
            rule = match.group(1)
            continue
        match = re.match(r"\s*resources: (.*)", line)
        if match and rule is not None:
            resources = dict(item.split("=", 1) for item in match.group(1).split(", "))
            yield rule, resources
            rule = None


@pytest.mark.slow
def test_slurm_profile_gives_a_gpu_to_every_training_job_and_no_other(tmp_path):
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    done = snakemake(
        "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "-n",
        "--profile", str(ROOT / "profiles" / "slurm"),
        "--configfile", str(ROOT / "config" / "demo.yaml"),
    )
    jobs = list(_job_blocks(done.stdout))
    # no group unless packing is asked for (README): each cell is a plain job of its own
    assert "Group job" not in done.stdout
    rules = {rule for rule, _ in jobs}
    assert set(TRAINING_KINDS) <= rules and {"convert", "subset", "synthesize"} <= rules
    for rule, resources in jobs:
        gres = set_gres_string(SimpleNamespace(resources=_Resources(resources)))
        if rule in TRAINING_KINDS:
            assert resources.get("gpu") == "1", (rule, resources)
            assert gres.strip() == f"--gpus={resources['gpu_model']}:1", (rule, gres)
            assert resources["gpu_model"] == "v100"
        else:
            assert "gpu" not in resources and "gpu_model" not in resources, (rule, resources)
            assert gres == "", (rule, gres)
        assert int(resources["runtime"]) > 0 and int(resources["mem_mb"]) > 0


class _Resources(dict):
    """The attribute-and-get access the plugin uses on job.resources."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def test_lint_and_format_are_clean():
    lint = snakemake("--lint", check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "Lints for" not in lint.stdout + lint.stderr, lint.stdout + lint.stderr
    fmt = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "rules"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_bad_config_value_is_named(tmp_path):
    bad = (ROOT / "config" / "demo.yaml").read_text().replace("protocol: validation", "protocol: guess")
    (tmp_path / "bad.yaml").write_text(bad)
    done = snakemake(
        "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "-n",
        "--configfile", str(tmp_path / "bad.yaml"), "--replace-workflow-config", check=False,
    )
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert "protocol" in message and "guess" in message


# Parses the workflow through Snakemake's API with the given deployment methods (no DAG, so
# no conda is needed) and prints the interpreter the training jobs get and their commands.
_PARSE = """
import json, os, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import (ConfigSettings, DeploymentMethod, DeploymentSettings,
    OutputSettings, ResourceSettings, StorageSettings)
root, workdir, methods = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
with SnakemakeApi(OutputSettings()) as api:
    workflow = api.workflow(
        resource_settings=ResourceSettings(),
        config_settings=ConfigSettings(configfiles=[root / "config" / "demo.yaml"],
                                       config=json.loads(os.environ.get("PARSE_CONFIG", "{}"))),
        storage_settings=StorageSettings(),
        deployment_settings=DeploymentSettings(
            deployment_method={DeploymentMethod.parse_choice(m) for m in methods}),
        snakefile=root / "Snakefile",
        workdir=workdir,
    )
    rules = workflow._workflow._rules
    print(json.dumps({"python": os.environ["TSTRANSFER_PYTHON"], "src": os.environ["TSTRANSFER_SRC"],
                      "container": sorted({str(rule.container_img) for rule in rules.values()}),
                      "commands": {name: rules[name].shellcmd for name in
                                   ("pretrain", "referent", "finetune", "stream_max")}}))
"""


@pytest.mark.parametrize("methods", [[], ["conda"], ["apptainer"]], ids=["venv", "conda", "apptainer"])
def test_training_jobs_run_snakemakes_interpreter_or_the_conda_envs_python(tmp_path, methods):
    done = subprocess.run(
        [sys.executable, "-c", _PARSE, str(ROOT), str(tmp_path), *methods],
        capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "TSTRANSFER_PYTHON"},
    )
    assert done.returncode == 0, done.stderr
    parsed = json.loads(done.stdout.strip().splitlines()[-1])
    # Without conda or a container: the interpreter running Snakemake (it has the
    # project's dependencies), not PATH's python; with them, the env's or the image's.
    assert parsed["python"] == ("python" if methods else sys.executable)
    # The package is the workflow's own src/, on PYTHONPATH in the command itself: the
    # envs do not install the project, and Snakemake drops an inherited PYTHONPATH there.
    assert parsed["src"] == str(ROOT / "src")
    for rule, command in parsed["commands"].items():
        assert command.startswith('PYTHONPATH="$TSTRANSFER_SRC" "$TSTRANSFER_PYTHON" -m tstransfer.cli '), (rule, command)
    # The image every job runs in under --sdm apptainer (ignored otherwise).
    assert parsed["container"] == [str(ROOT / "containers" / "tstransfer.sif")]  # every rule


def test_config_names_the_image_the_jobs_run_in(tmp_path):
    """config `container` replaces the default image (containers/tstransfer.sif)."""
    image = "docker://example.org/tstransfer:0.1.0"
    done = subprocess.run(
        [sys.executable, "-c", _PARSE, str(ROOT), str(tmp_path), "apptainer"],
        capture_output=True, text=True, env={**os.environ, "PARSE_CONFIG": json.dumps({"container": image})},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["container"] == [image]


@pytest.mark.slow
def test_paper_config_downloads_and_applies_the_lomax_keep_list(tmp_path):
    """The authors' keep-list is downloaded (checksum-verified) and handed to LOMAX's converter."""
    import yaml

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    keep_list = config["datasets"]["lomax"]["extract"]["keep_list"]
    assert keep_list["url"].endswith("/f3497acd31f303ae8eef25eaa3b370e64e717e8b/scripts/filter_lomax.py")
    assert keep_list["sha256"] == "69ec4085b44446c285d4ec3f624b7d290d979d777ae32322748e3045b8b30b40"
    assert keep_list["size"] == 244_268
    done = snakemake(
        "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "-n", "results/data/lomax.zarr",
        "--configfile", str(ROOT / "config" / "config.yaml"), "--replace-workflow-config",
    )
    downloads = re.findall(r"wildcards: dataset=lomax, filename=(\S+)", done.stdout)
    assert sorted(downloads) == ["ConvNetQuake_INGV_dataset.hdf5", "filter_lomax.py"]
    convert_input = re.search(r"rule convert:\n\s+input: (.*)\n", done.stdout).group(1).split(", ")
    assert "resources/raw/lomax/filter_lomax.py" in convert_input


def test_schema_names_exactly_the_registered_datasets_and_architectures():
    """The schema's built-in dataset entries (each module's extract settings) and its
    architecture enum repeat the registries; a new module must be added to both. Dataset
    names elsewhere are any entry of datasets (one's own, given by format:, too)."""
    import re

    import yaml

    from tstransfer.datasets import BUILTIN, REGISTRY

    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert list(schema["properties"]["datasets"]["properties"]) == list(BUILTIN)
    assert "enum" not in schema["definitions"]["dataset_name"]
    assert all(re.fullmatch(schema["definitions"]["dataset_name"]["pattern"], name) for name in BUILTIN)
    from tstransfer.models import ARCHITECTURES

    assert set(schema["definitions"]["arch_name"]["enum"]) == set(ARCHITECTURES)
    # tstransfer.registry, TensorFlow-free, gives the analysis the same names in the same order.
    from tstransfer import registry

    assert registry.DATASETS == tuple(REGISTRY)
    assert registry.ARCHITECTURES == tuple(ARCHITECTURES)
    assert list(schema["definitions"]["arch_name"]["enum"]) == list(registry.ARCHITECTURES)


def _validate(config):
    """The Snakefile's check: snakemake.utils.validate against the config schema."""
    from snakemake.utils import validate

    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))


def _demo_config():
    import yaml

    return yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())


@pytest.mark.parametrize("name", ["demo", "config"])
def test_shipped_configs_pass_the_schema_unchanged(name):
    """Valid, and validation writes nothing into them (no schema defaults): the convert
    jobs' params, and so the stores' recorded extraction settings, stay as configured."""
    import copy

    import yaml

    config = yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())
    before = copy.deepcopy(config)
    _validate(config)
    assert config == before


@pytest.mark.parametrize(
    "dataset, key, value",
    [
        ("lomax", "keep_list", 3),
        ("lendb", "file", "sub/LEN-DB.hdf5"),
        ("stead", "layout", "many"),
        ("stead", "chunks", [0, 1]),
        ("speech", "sample_rate", 0),
        ("speech", "noise_seed", -1),
        ("emg", "channels", [0, 2, 8]),
        ("emg", "channels", [0, 2]),
        ("emg", "window", "80"),
        ("emg", "step", 0),
        ("sp500", "window", 0),
        ("sp500", "start", "30.12.1927"),
        ("sp500", "end", 2018),
    ],
)
def test_bad_extract_setting_is_refused_naming_it(dataset, key, value):
    from snakemake_interface_common.exceptions import WorkflowError

    config = _demo_config()
    config["datasets"][dataset]["extract"][key] = value
    with pytest.raises(WorkflowError, match=re.escape(f"datasets.{dataset}.extract.{key}")) as caught:
        _validate(config)
    assert f"datasets.{dataset}.extract.{key}" in str(caught.value)


@pytest.mark.parametrize("dataset, key", [("emg", "window"), ("speech", "n_samples"), ("sp500", "end")])
def test_missing_extract_setting_is_refused_naming_it(dataset, key):
    from snakemake_interface_common.exceptions import WorkflowError

    config = _demo_config()
    del config["datasets"][dataset]["extract"][key]
    with pytest.raises(WorkflowError, match=f"'{key}' is a required property") as caught:
        _validate(config)
    message = str(caught.value)
    assert f"datasets.{dataset}.extract" in message and f"'{key}' is a required property" in message


@pytest.mark.parametrize("dataset", ["lomax", "lendb", "stead", "speech", "emg", "sp500"])
def test_unknown_extract_setting_is_refused_naming_it(dataset):
    from snakemake_interface_common.exceptions import WorkflowError

    config = _demo_config()
    config["datasets"][dataset]["extract"]["windwo"] = 50
    with pytest.raises(WorkflowError, match="'windwo' was unexpected") as caught:
        _validate(config)
    message = str(caught.value)
    assert f"datasets.{dataset}.extract" in message and "'windwo' was unexpected" in message


def test_extract_downloads_and_yaml_dates_are_accepted():
    """A setting given as a file to download (the LOMAX keep-list) and an unquoted YAML
    date, which the S&P 500 reader takes as well as a string."""
    import datetime

    config = _demo_config()
    config["datasets"]["lomax"]["extract"]["keep_list"] = {
        "name": "filter_lomax.py", "url": "https://example.org/filter_lomax.py", "size": None, "sha256": None,
    }
    config["datasets"]["sp500"]["extract"]["start"] = datetime.date(1927, 12, 30)
    _validate(config)


def test_bad_extract_setting_stops_snakemake_naming_it(tmp_path):
    demo = (ROOT / "config" / "demo.yaml").read_text()
    bad = demo.replace("extract: {channels: [0, 2, 5], window: 80, step: 10}",
                       "extract: {channels: [0, 2, 5], window: 0, step: 10}")
    assert bad != demo
    (tmp_path / "bad.yaml").write_text(bad)
    done = snakemake(
        "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "-n",
        "--configfile", str(tmp_path / "bad.yaml"), "--replace-workflow-config", check=False,
    )
    assert done.returncode != 0
    assert "datasets.emg.extract.window" in done.stdout + done.stderr


def test_a_file_name_twice_in_a_datasets_downloads_is_refused(tmp_path):
    """Two downloads under one name would share one path; the second would never be fetched."""
    import yaml

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    stead = config["datasets"]["stead"]["files"]
    stead.append({**stead[0], "url": "https://example.org/other"})
    (tmp_path / "twice.yaml").write_text(yaml.safe_dump(config))
    done = snakemake("-n", "--configfile", str(tmp_path / "twice.yaml"), "--replace-workflow-config",
                     check=False)
    assert done.returncode != 0
    assert f"config datasets.stead: file name(s) ['{stead[0]['name']}'] appear more than once" in (
        done.stdout + done.stderr)
