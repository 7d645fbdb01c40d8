"""The datasets, registered in one place.

Adding a dataset is one module in this package (see :mod:`.base` for what it provides)
plus one line here and its entry in the config; its synthetic stand-in, if any, is one
more module in :mod:`.synthetic` under the same name.
"""

from __future__ import annotations

from types import ModuleType

from . import emg, lendb, lomax, sp500, speech, stead
from .base import DataError, DatasetInfo, InstanceIndex, RawChunk

REGISTRY: dict[str, ModuleType] = {
    module.INFO.name: module for module in (lomax, lendb, stead, speech, emg, sp500)
}


def get(name: str) -> ModuleType:
    """The dataset module registered as ``name``; a clear error for an unknown one."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown dataset {name!r}; registered: {', '.join(sorted(REGISTRY))}"
        ) from None


__all__ = ["REGISTRY", "get", "DataError", "DatasetInfo", "InstanceIndex", "RawChunk"]
