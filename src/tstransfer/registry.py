"""The registered datasets' and architectures' names, labels and groups, without TensorFlow.

One place for the facts the analysis (tables, figures, statistics) needs about what is
registered, importable in the data and analysis environments:

* datasets: each dataset module declares its own in ``INFO``
  (:class:`tstransfer.datasets.base.DatasetInfo`: ``title`` as printed in tables,
  ``domain``); they are gathered here in :data:`tstransfer.datasets.REGISTRY`'s order,
  which is the order of the paper's tables;
* architectures: their modules import Keras, so their names and labels are declared
  here, in the paper's order; :mod:`tstransfer.models` registers exactly these modules
  (tests/test_workflow.py checks both registries against each other and the config
  schema).

Adding an architecture is its module in :mod:`tstransfer.models`, its line there and its
label here.
"""

from __future__ import annotations

from tstransfer import datasets

# Architecture name (the config's, the results tree's) -> label as printed in tables.
ARCHITECTURE_LABELS = {
    "convnetquake_ingv": "ConvNetQuake INGV",
    "magnet": "MagNet",
    "mlstm_fcn": "MLSTM FCN",
    "tcn": "TCN",
}
ARCHITECTURES = tuple(ARCHITECTURE_LABELS)

DATASETS = tuple(datasets.REGISTRY)
DATASET_LABELS = {name: module.INFO.title for name, module in datasets.REGISTRY.items()}
# The paper's intra-domain group; Tables 6 and 8 have these as target columns, Tables 7
# and 9 the others.
SEISMOLOGY = tuple(name for name in DATASETS if datasets.get(name).INFO.domain == "seismology")
OTHER_DOMAINS = tuple(name for name in DATASETS if name not in SEISMOLOGY)

__all__ = [
    "ARCHITECTURE_LABELS", "ARCHITECTURES", "DATASETS", "DATASET_LABELS", "SEISMOLOGY",
    "OTHER_DOMAINS",
]
