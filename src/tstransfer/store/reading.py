"""Opening a converted store."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def open_store(path: str | Path):
    """Open a converted store lazily as an xarray Dataset (nothing is read yet)."""
    import xarray as xr

    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise FileNotFoundError(f"{path}: not a converted dataset store (no zarr.json)")
    # Written without consolidated metadata (not part of the Zarr v3 specification).
    return xr.open_zarr(path, consolidated=False)


def store_attrs(path: str | Path) -> dict[str, Any]:
    """The store's attributes (cheap: reads only metadata)."""
    import zarr

    return dict(zarr.open_group(path, mode="r").attrs)
