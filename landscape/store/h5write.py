"""Writing store files so that damage is found when they are read, never read as numbers.

HDF5 checks nothing by default: a flipped bit in an array reads back as a different number.
Two of its own features close that:

- `FORMAT`: files in the HDF5 1.10 format, whose object headers (where attributes and small
  metadata live), B-trees, heaps and superblock carry checksums that the library verifies on
  every read; the 1.10 format (2016) also gives a one-chunk array a compact index, so the
  checksums below cost a file a few bytes per array, not a B-tree node.
- `array`: every non-empty numeric array is chunked with the Fletcher-32 filter, so a
  damaged chunk raises an error on read (turned into a StoreError by the validating reader).

- `list_arrays`: the root attribute `landscape_arrays` lists every array written, so that an
  array deleted later is found missing (`h5read.H5.check_manifest`), not taken for an optional
  one.

What is left unchecked: 0-d (scalar) datasets, whose data HDF5 cannot filter, and the global
heap that holds variable-length strings (checked for sanity by `h5files.check_global_heaps`).
Files written before this (HDF5's default earliest format, no filter) are read as before.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from landscape.store.h5read import MANIFEST

FORMAT = ("v110", "v110")  # (oldest, newest) HDF5 file-format version a writer may use


def new_file(path: Path) -> h5py.File:
    """A new HDF5 file at `path` (truncating), in the checksummed 1.10 format."""
    return h5py.File(path, "w", libver=FORMAT)


def array(group: h5py.Group, name: str, data: Any, **options: Any) -> h5py.Dataset:
    """`group[name] = data`, Fletcher-32 checksummed when it is a non-empty numeric array.

    `options` go to `create_dataset` (chunks, compression, dtype).
    """
    values = np.asarray(data)
    if _checkable(values):
        options.setdefault("chunks", True)
        options["fletcher32"] = True
    return group.create_dataset(name, data=values, **options)


def _checkable(values: np.ndarray) -> bool:
    return values.ndim > 0 and values.size > 0 and values.dtype.kind in "fiub"


def list_arrays(f: h5py.File) -> None:
    """Record the path of every array in `f` in its root attribute MANIFEST (call last)."""
    names: list[str] = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    f.attrs[MANIFEST] = json.dumps(sorted(names))
