"""What a results table covers, and how its datasets group into the paper's domains.

The tables and figures lay out sources, target variants and multipliers. They take them
from the results table they show (:func:`study_of`), never from constants: a config's
variant of any name (``500``, ``n40``), its multiplier grid and its datasets (built in or
its own) appear as they were run, and the datasets a config does not use do not appear.

The domain groups of Tables 3, 4 and 10 (:func:`domain_group`, :data:`GROUP_ROWS`) follow
each dataset's domain in the registry (:mod:`tstransfer.registry`): seismology against
the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from tstransfer import registry

# What identifies a grid-search run, a (arch, source, target variant) triplet and a cell
# of the domain tables (pooling architectures and runs).
GRID_KEYS = ["arch", "source", "target", "variant", "run"]
TRIPLET_KEYS = ["arch", "source", "target", "variant"]
CELL_KEYS = ["source", "target", "variant"]

# Paper Tables 3, 4 and 10: the domain groups (keys of domain_groups()) and which of them
# each row pools.
DOMAIN_GROUP_KEYS = ("intra", "seismology_to_other", "other_to_seismology", "other_to_other")
GROUP_ROWS = {
    "intra": ("intra",),
    "cross": ("seismology_to_other", "other_to_seismology", "other_to_other"),
    "seismology_to_other": ("seismology_to_other",),
    "other_to_seismology": ("other_to_seismology",),
    "other_to_other": ("other_to_other",),
    "total": DOMAIN_GROUP_KEYS,
}
# Tables 6/8 have the seismology targets as columns, Tables 7/9 the other domains.
TABLE_GROUPS = ("seismology", "other")


def dataset_order(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` without repeats in the registry's order (the paper's, then a config's own);
    names the registry does not know follow in the order given."""
    names = list(dict.fromkeys(str(n) for n in names))
    order = {name: i for i, name in enumerate(registry.DATASETS)}
    return tuple(sorted(names, key=lambda n: order.get(n, len(order))))


def dataset_label(name: str) -> str:
    """A dataset as printed in tables: the registry's title, or its name if not registered."""
    return registry.DATASET_LABELS.get(name, name)


def is_seismology(name: str) -> bool:
    return name in registry.SEISMOLOGY


def table_group(target: str) -> str:
    """Which of a domain-table pair (``seismology`` or ``other``) a target's columns are in."""
    return "seismology" if is_seismology(target) else "other"


def domain_group(source: str, target: str) -> str:
    """The paper's domain group of a (source, target) pair (keys of domain_groups())."""
    source_seismic, target_seismic = is_seismology(source), is_seismology(target)
    if source_seismic and target_seismic:
        return "intra"
    if source_seismic:
        return "seismology_to_other"
    if target_seismic:
        return "other_to_seismology"
    return "other_to_other"


def domain_groups(datasets: Iterable[str] | None = None) -> dict[str, str]:
    """Domain group -> its row label; the last names the other-domain datasets among
    ``datasets`` (default: every registered one; SPEECH, EMG, S&P 500 in the paper)."""
    names = registry.DATASETS if datasets is None else dataset_order(datasets)
    others = ", ".join(dataset_label(d) for d in names if not is_seismology(d))
    return {
        "intra": "Intra-domain (TL between different seismology datasets)",
        "seismology_to_other": "TL from seismology to other domains",
        "other_to_seismology": "TL from other domains to seismology",
        "other_to_other": f"TL between other domains ({others})" if others else "TL between other domains",
    }


def group_labels(datasets: Iterable[str] | None = None) -> dict[str, str]:
    """Row of GROUP_ROWS -> its label, in GROUP_ROWS' order (``datasets`` as in domain_groups)."""
    labels = {**domain_groups(datasets), "cross": "Cross-domain", "total": "Total"}
    return {key: labels[key] for key in GROUP_ROWS}


@dataclass(frozen=True)
class Study:
    """The sources, targets, variants and multipliers that a results table holds.

    Datasets in the registry's order; variants in the order they first occur in the
    table (a pipeline's table follows the config's order); multipliers ascending.
    """

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    variants: tuple[str, ...]
    omegas: tuple[float, ...]

    @property
    def datasets(self) -> tuple[str, ...]:
        """Every dataset the study uses as a source or a target."""
        return dataset_order([*self.sources, *self.targets])

    def table_targets(self, group: str) -> tuple[str, ...]:
        """The target columns of a domain table: ``seismology`` (Tables 6, 8) or ``other`` (7, 9)."""
        if group not in TABLE_GROUPS:
            raise ValueError(f"table group must be one of {TABLE_GROUPS}, got {group!r}")
        return tuple(t for t in self.targets if table_group(t) == group)


def study_of(df: pd.DataFrame) -> Study:
    """The study a results table covers: sources of its fine-tuned models, targets and
    variants of its referent and fine-tuned models, multipliers of its fine-tuned ones."""
    finetune = df[df["kind"] == "finetune"]
    trained = df[df["kind"].isin(["referent", "finetune"])]
    return Study(
        sources=dataset_order(finetune["source"].astype(str)),
        targets=dataset_order(trained["target"].astype(str)),
        variants=tuple(str(v) for v in pd.unique(trained["variant"].astype(str))),
        omegas=tuple(sorted(float(w) for w in pd.unique(finetune["omega"].dropna()))),
    )
