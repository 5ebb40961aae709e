"""The HDF5 analysis store: one file per measure result plus an index that links them.

Layout (plain h5py reads it; every array has `long_name` and `units`)::

    quick.analysis.h5                 index: attrs train_store, train_store_sha256, config
      /<measure>/<key>                external link -> quick.analysis.d/<measure>/<key>.h5:/
    quick.analysis.d/surface2d/normal-000.h5
      attrs                           measure, key, parameters (JSON), seed, seconds, versions
      /xcoordinates /ycoordinates     dimension scales
      /train_loss (nx, ny) ...        Li et al.'s names, so their plotting scripts read them
    quick.analysis.d/.parts/...       rows of a surface in flight (.npz, no pickle)

A result file is written under a temporary name and renamed when complete; the index is
rewritten the same way. A kill loses at most the result in flight (a surface: its rows in
flight). The train store is only ever read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from landscape.errors import StoreError
from landscape.store import _attr, _fsync, _plain

KIND_ANALYSIS = "landscape.analysis"
ANALYSIS_SCHEMA = 1


@dataclass(frozen=True)
class Array:
    """One stored array with its meaning."""

    values: np.ndarray
    long_name: str
    units: str
    dims: tuple[str, ...] = ()  # names of arrays in the same result used as dimension scales


@dataclass
class Result:
    """What one measure computed for one key (a run, a pair of runs, ...)."""

    arrays: dict[str, Array]
    attrs: dict[str, Any] = field(default_factory=dict)


def results_dir(index_path: Path) -> Path:
    """`runs/quick.analysis.h5` -> `runs/quick.analysis.d/`."""
    return index_path.with_name(index_path.stem + ".d")


def result_file(index_path: Path, measure: str, key: str) -> Path:
    return results_dir(index_path) / measure / f"{key}.h5"


def parts_dir(index_path: Path, measure: str, key: str) -> Path:
    """Where the rows of a result in flight are kept until it completes."""
    return results_dir(index_path) / ".parts" / measure / key


def write_result(index_path: Path, measure: str, key: str, result: Result) -> Path:
    """Write one result file atomically; return its path."""
    path = result_file(index_path, measure, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with h5py.File(tmp, "w") as f:
        f.attrs["landscape_kind"] = "landscape.result"
        f.attrs["measure"] = measure
        f.attrs["key"] = key
        for name, value in result.attrs.items():
            f.attrs[name] = _attr(value)
        for name, arr in result.arrays.items():
            ds = f.create_dataset(name, data=arr.values)
            ds.attrs["long_name"] = arr.long_name
            ds.attrs["units"] = arr.units
        _attach_scales(f, result)
    _fsync(tmp)
    os.replace(tmp, path)
    return path


def _attach_scales(f: h5py.File, result: Result) -> None:
    scales = {d for arr in result.arrays.values() for d in arr.dims}
    for name in scales:
        f[name].make_scale(name)
    for name, arr in result.arrays.items():
        for axis, dim in enumerate(arr.dims):
            if dim != name:
                f[name].dims[axis].attach_scale(f[dim])


def write_index(index_path: Path, *, attrs: dict[str, Any]) -> None:
    """(Re)write the index atomically with links to every completed result file."""
    index_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = index_path.with_name(f".{index_path.name}.tmp{os.getpid()}")
    root = results_dir(index_path)
    with h5py.File(tmp, "w") as f:
        f.attrs["landscape_kind"] = KIND_ANALYSIS
        f.attrs["schema"] = ANALYSIS_SCHEMA
        for name, value in attrs.items():
            f.attrs[name] = _attr(value)
        for measure, key in completed(index_path):
            group = f.require_group(measure)
            group[key] = h5py.ExternalLink(f"{root.name}/{measure}/{key}.h5", "/")
    _fsync(tmp)
    os.replace(tmp, index_path)


def completed(index_path: Path) -> list[tuple[str, str]]:
    """(measure, key) of every result file present."""
    root = results_dir(index_path)
    if not root.is_dir():
        return []
    return sorted(
        (p.parent.name, p.stem)
        for p in root.glob("*/*.h5")
        if not p.name.startswith(".") and p.parent.name != ".parts"
    )


def read_index(index_path: Path) -> dict[str, Any]:
    if not index_path.exists():
        raise StoreError(
            f"analysis store {index_path}: no such file; run `landscape analyze` first"
        )
    try:
        with h5py.File(index_path, "r") as f:
            attrs = {k: _plain(v) for k, v in f.attrs.items()}
    except OSError as e:
        raise StoreError(
            f"analysis store {index_path}: not a readable HDF5 file ({e}); delete it (results "
            "stay in its .d/ folder) and re-run `landscape analyze`"
        ) from None
    if attrs.get("landscape_kind") != KIND_ANALYSIS:
        raise StoreError(
            f"{index_path}: expected an analysis store (landscape_kind = {KIND_ANALYSIS!r}), "
            f"found {attrs.get('landscape_kind')!r}"
        )
    return attrs


def read_result(index_path: Path, measure: str, key: str) -> dict[str, Any]:
    """A result's arrays and attributes."""
    path = result_file(index_path, measure, key)
    with h5py.File(path, "r") as f:
        out: dict[str, Any] = {"attrs": {k: _plain(v) for k, v in f.attrs.items()}}
        for name, ds in f.items():
            out[name] = ds[()]
    return out


def save_part(index_path: Path, measure: str, key: str, part: str, **arrays: np.ndarray) -> None:
    """Keep one piece (e.g. a row) of a result in flight, atomically, as a plain .npz."""
    folder = parts_dir(index_path, measure, key)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{part}.tmp{os.getpid()}.npz"
    # numeric arrays only: allow_pickle=False refuses object arrays on save as on load
    np.savez(tmp, allow_pickle=False, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, folder / f"{part}.npz")


def load_parts(index_path: Path, measure: str, key: str) -> dict[str, dict[str, np.ndarray]]:
    """The pieces kept so far (never unpickled: allow_pickle=False)."""
    folder = parts_dir(index_path, measure, key)
    out = {}
    for p in sorted(folder.glob("*.npz")) if folder.is_dir() else ():
        if p.name.startswith("."):
            continue
        with np.load(p, allow_pickle=False) as z:
            out[p.stem] = {k: z[k] for k in z.files}
    return out


def clear_parts(index_path: Path, measure: str, key: str) -> None:
    folder = parts_dir(index_path, measure, key)
    for p in folder.glob("*") if folder.is_dir() else ():
        p.unlink(missing_ok=True)
    if folder.is_dir():
        folder.rmdir()


def analysis_info(index_path: Path) -> dict[str, Any]:
    """`landscape info --json` for an analysis store: the results it holds."""
    attrs = read_index(index_path)
    results = []
    for measure, key in completed(index_path):
        with h5py.File(result_file(index_path, measure, key), "r") as f:
            results.append(
                {
                    "measure": measure,
                    "key": key,
                    "arrays": {n: list(ds.shape) for n, ds in f.items()},
                    "seconds": float(f.attrs.get("seconds", float("nan"))),
                }
            )
    return {
        "train_store": attrs.get("train_store"),
        "config": json.loads(attrs.get("config", "{}")),
        "summary": json.loads(attrs.get("summary", "{}")),
        "results": results,
    }
