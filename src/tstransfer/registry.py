"""The registered datasets' and architectures' names, labels and groups, without TensorFlow.

One place for the facts the analysis (tables, figures, statistics) needs about what is
registered, importable in the data and analysis environments:

* datasets: each dataset module declares its own in ``INFO``
  (:class:`tstransfer.datasets.base.DatasetInfo`: ``title`` as printed in tables,
  ``domain``); they are gathered here in :data:`tstransfer.datasets.REGISTRY`'s order,
  which is the order of the paper's tables, followed by the datasets a config gives by
  ``format:`` (registered with :func:`tstransfer.datasets.register_config`);
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
    "fcn": "FCN",  # not the paper's: the real-data study's (models/fcn.py)
}
ARCHITECTURES = tuple(ARCHITECTURE_LABELS)
PAPER_ARCHITECTURES = ("convnetquake_ingv", "magnet", "mlstm_fcn", "tcn")


def architectures_shown(present) -> list[str]:
    """The architectures a table lists: the paper's four always (as the paper's tables do,
    empty where a run has none), and any other registered one that ``present`` holds, in
    the registry's order."""
    present = set(present)
    return [arch for arch in ARCHITECTURES if arch in PAPER_ARCHITECTURES or arch in present]


def __getattr__(name: str):
    """DATASETS, DATASET_LABELS, SEISMOLOGY, OTHER_DOMAINS: read from the registry when
    asked, so that datasets a config registered (:func:`tstransfer.datasets.register_config`)
    are among them. A module that copies one at import time sees what was registered then.
    """
    names = tuple(datasets.REGISTRY)
    if name == "DATASETS":
        return names
    if name == "DATASET_LABELS":
        return {key: datasets.title(key) for key in names}
    # The paper's intra-domain group; Tables 6 and 8 have these as target columns, Tables 7
    # and 9 the others. A dataset of one's own joins by its config entry's domain.
    if name == "SEISMOLOGY":
        return tuple(key for key in names if datasets.domain(key) == "seismology")
    if name == "OTHER_DOMAINS":
        seismology = __getattr__("SEISMOLOGY")
        return tuple(key for key in names if key not in seismology)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ARCHITECTURE_LABELS", "ARCHITECTURES", "PAPER_ARCHITECTURES", "architectures_shown", "DATASETS", "DATASET_LABELS", "SEISMOLOGY",
    "OTHER_DOMAINS",
]
