"""Where the workflow puts things: the results tree's path patterns, in one place.

:mod:`tstransfer.plan` builds every job's paths from these (the rules' outputs, and the
jobs :mod:`tstransfer.progress` looks at); paths are relative to the
workflow's working directory, and ``{...}`` are the rules' wildcards. Importable without
TensorFlow (the workflow parses it on every job).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SYNTHETIC_DIR = "resources/synthetic"
RAW_FILE = "{raw_dir}/{dataset}/{filename}"  # a download; raw_dir is the config's
STORE = "results/data/{dataset}.zarr"
SUBSET = "results/data/subsets/{dataset}/{variant}/run{run}.npz"
PRETRAIN_DIR = "results/pretrain/{arch}/{source}/seed{seed}"
SELECTED_DIR = "results/pretrain/{arch}/{source}/selected"
REFERENT_DIR = "results/referent/{arch}/{target}/{variant}/run{run}"
FINETUNE_DIR = "results/finetune/{arch}/{source}/{target}/{variant}/run{run}/omega{omega}"
SMAX_DIR = "results/stream_max/{arch}/{dataset}/{smax}/seed{seed}"
MANIFEST = "results/manifest.txt"
TABLES_DIR = "results/tables"
ANALYSIS_DIR = "results/analysis"
ZOO_DIR = "results/zoo"
ZOO_MODEL_DIR = "results/zoo/{arch}-{source}"


def omega_label(omega: Any) -> str:
    """The multiplier as it appears in paths: always with a decimal point (0.1, 1.0, 2.0)."""
    return repr(float(omega))


def raw_origin(config: Mapping[str, Any], dataset: str) -> str:
    """Where convert's raw data for ``dataset`` comes from: ``"custom"`` (an entry with
    ``format:``, always read from its path), ``"synthetic"`` (config ``raw_data``),
    ``"path"`` (the user's own copy, ``datasets.<name>.path``) or ``"download"`` (the
    entry's ``files``). The one rule for rules/common.smk and tstransfer.progress."""
    spec = config["datasets"][dataset]
    if "format" in spec:
        return "custom"
    if config["raw_data"] == "synthetic":
        return "synthetic"
    return "path" if spec.get("path") else "download"


__all__ = ["SYNTHETIC_DIR", "RAW_FILE", "STORE", "SUBSET", "PRETRAIN_DIR", "SELECTED_DIR", "REFERENT_DIR",
           "FINETUNE_DIR", "SMAX_DIR", "MANIFEST", "TABLES_DIR", "ANALYSIS_DIR", "ZOO_DIR",
           "ZOO_MODEL_DIR", "omega_label", "raw_origin"]
