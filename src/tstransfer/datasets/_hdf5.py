"""Fast, checked HDF5 access, shared by the three seismic readers (LOMAX, LEN-DB, STEAD).

The real files hold one HDF5 dataset per trace (LEN-DB 629,095 of them, STEAD over a
million), so the per-trace overhead of h5py's high-level API (``group[key]``,
``dset[()]``, ``dset.attrs[...]``: several Python objects and property lookups per call)
dominates the conversion time. :class:`TraceReader` works on the low-level ids instead:
``h5d.open`` on the group id, ``DatasetID.read`` with a prebuilt memory type straight
into a preallocated buffer row, ``h5a.open`` / ``AttrID.read`` into a reused 0-d array
(after an element-count check: h5py does not make one). :func:`storage_order` makes the
reads sequential in the file. Every failure becomes a :class:`DataError` naming the
dataset, the file and the trace.

The synthetic earthquakes of the three datasets are made in :mod:`.synthetic._seismic`.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from .base import DataError


def open_hdf5(dataset: str, path: Path) -> h5py.File:
    """Open ``path`` read-only; a missing, unreadable or truncated file gives a DataError.

    HDF5 compares the end-of-file address stored in the superblock with the real file
    size when it opens a file, so a truncated download fails here, before any trace.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(dataset, path, "raw file not found")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DataError(dataset, path, f"unreadable or truncated HDF5 file ({err})") from None


def group_id(dataset: str, handle: h5py.File, name: str) -> h5py.h5g.GroupID:
    """The low-level id of group ``name``; a clear error if the file lacks it."""
    try:
        obj = handle[name]
    except KeyError:
        raise DataError(dataset, handle.filename, f"HDF5 group {name!r} not found") from None
    except OSError as err:
        raise DataError(dataset, handle.filename, f"cannot open HDF5 group {name!r} ({err})") from None
    if not isinstance(obj, h5py.Group):
        raise DataError(dataset, handle.filename, f"{name!r} is not an HDF5 group")
    return obj.id


def member_names(dataset: str, handle: h5py.File, name: str) -> list[str]:
    """Names of the members of group ``name``, in HDF5's link order (by name).

    Iterates the low-level group id once (one C call per link) instead of building
    an h5py object per member.
    """
    gid = group_id(dataset, handle, name)
    try:
        return [member.decode("utf-8") for member in gid]
    except OSError as err:
        raise DataError(dataset, handle.filename, f"cannot list HDF5 group {name!r} ({err})") from None


def open_trace(dataset: str, path: str, gid: h5py.h5g.GroupID, group: str, name: str) -> h5py.h5d.DatasetID:
    """The low-level id of dataset ``name`` in group ``gid``; a DataError naming it if absent."""
    try:
        return h5py.h5d.open(gid, name.encode("utf-8"))
    except KeyError:
        raise DataError(dataset, path, "trace not found in the HDF5 file", trace=f"{group}/{name}") from None
    except (OSError, RuntimeError) as err:
        raise DataError(dataset, path, f"cannot open the trace ({err})", trace=f"{group}/{name}") from None


def storage_order(dataset: str, handle: h5py.File, group: str, names: list[str], sample: int = 2000) -> np.ndarray:
    """Indices that put ``names`` (members of ``group``) in the order of their samples in the file.

    HDF5 lists a group's members by name, which need not be the order their samples were
    written in; reading 629,095 LEN-DB traces by name could then mean as many seeks
    across 18 GB (cheap from the page cache or an SSD, slow from disks and network file
    systems). The offsets of up to ``sample`` evenly spaced members are checked first: if
    they already increase, the given order is kept without opening every member
    (``h5d.open`` is most of the cost of a read). Otherwise every member is opened once
    and the order is sorted by offset; members without a single contiguous block
    (chunked or empty datasets) keep their relative order at the end.
    """
    gid = group_id(dataset, handle, group)
    n = len(names)

    path = handle.filename  # a property that asks HDF5 each time: read it once

    def offset(name: str) -> float:
        value = open_trace(dataset, path, gid, group, name).get_offset()
        return np.inf if value is None else float(value)

    probe = np.unique(np.linspace(0, n - 1, min(n, sample)).astype(int)) if n else np.arange(0)
    probe_offsets = np.array([offset(names[i]) for i in probe])
    if np.all(np.diff(probe_offsets) > 0):
        return np.arange(n)
    offsets = np.array([offset(name) for name in names])
    return np.argsort(offsets, kind="stable")


# HDF5 memory types of the buffers the readers fill, made once.
_NATIVE_TYPES = {
    np.dtype(np.float64): h5py.h5t.NATIVE_DOUBLE,
    np.dtype(np.float32): h5py.h5t.NATIVE_FLOAT,
}


class TraceReader:
    """Reads whole traces of one group of one file into preallocated buffers.

    ``shape`` is the on-disk shape every trace must have; ``None`` takes the shape of the
    first trace read, whose axis ``channel_axis`` must have ``channels`` entries.
    """

    def __init__(
        self,
        dataset: str,
        handle: h5py.File,
        group: str,
        *,
        shape: tuple[int, ...] | None = None,
        channels: int = 3,
        channel_axis: int = -1,
    ):
        self.dataset = dataset
        self.file = Path(handle.filename).name
        self.path = handle.filename
        self.group = group
        self.gid = group_id(dataset, handle, group)
        self.shape = shape
        self.channels = channels
        self.channel_axis = channel_axis
        self._attr_value = np.empty((), dtype=np.float64)

    def _error(self, key: str, message: str) -> DataError:
        return DataError(self.dataset, self.path, message, trace=f"{self.group}/{key}")

    def open(self, key: str) -> h5py.h5d.DatasetID:
        """The low-level id of trace ``key``, its shape checked."""
        dsid = open_trace(self.dataset, self.path, self.gid, self.group, key)
        shape = dsid.shape
        if self.shape is None:
            if len(shape) != 2 or shape[self.channel_axis] != self.channels:
                raise self._error(
                    key, f"trace shape {shape} does not have {self.channels} channels on "
                    f"axis {self.channel_axis}",
                )
            self.shape = shape
        elif shape != self.shape:
            raise self._error(key, f"trace shape {shape}, expected {self.shape}")
        return dsid

    def read_into(self, dsid: h5py.h5d.DatasetID, key: str, out: np.ndarray) -> None:
        """Read the whole trace into ``out`` (C-contiguous, shape ``self.shape``).

        HDF5 converts the stored float type to ``out``'s dtype during the read, so no
        intermediate array is made.
        """
        mtype = _NATIVE_TYPES.get(out.dtype)
        try:
            # With an explicit memory type h5py skips building one from out.dtype per call
            # (about half the cost of a small read).
            dsid.read(h5py.h5s.ALL, h5py.h5s.ALL, out, mtype)
        except (OSError, RuntimeError, TypeError) as err:
            raise self._error(key, f"cannot read the samples ({err})") from None

    def float_attr(self, dsid: h5py.h5d.DatasetID, key: str, name: bytes) -> float:
        """A numeric scalar attribute of the trace as a float (missing: DataError)."""
        try:
            attr = h5py.h5a.open(dsid, name)
        except KeyError:
            raise self._error(key, f"label attribute {name.decode()!r} missing") from None
        except (OSError, RuntimeError) as err:
            raise self._error(key, f"cannot open attribute {name.decode()!r} ({err})") from None
        try:
            # AttrID.read does not compare the attribute's size with the buffer's, so the
            # element count is checked first: a one-element numeric attribute converts to
            # a double in HDF5; anything else (a string, an array) takes the slow path.
            if attr.get_space().get_simple_extent_npoints() == 1:
                attr.read(self._attr_value, _NATIVE_TYPES[self._attr_value.dtype])
                return float(self._attr_value)
        except (OSError, RuntimeError, TypeError, ValueError):
            pass
        # Unusual storage (a string, an array): fall back to h5py's conversions once.
        try:
            value = h5py.AttributeManager(h5py.Dataset(dsid))[name.decode()]
        except (OSError, RuntimeError, TypeError, ValueError) as err:
            raise self._error(key, f"cannot read attribute {name.decode()!r} ({err})") from None
        try:
            return float(np.asarray(value, dtype=np.float64).reshape(()))
        except (TypeError, ValueError):
            raise self._error(key, f"attribute {name.decode()!r} is not a number: {value!r}") from None
