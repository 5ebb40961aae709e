"""The HDF5 analysis store: one file per measure result plus an index that links them.

Layout (plain h5py reads it; every array has `long_name` and `units`)::

    quick.analysis.h5                 index: attrs train_store, train_store_sha256, config
      /<measure>/<key>                external link -> quick.analysis.d/<measure>/<key>.h5:/
    quick.analysis.d/surface2d/normal-000.h5
      attrs                           measure, key, parameters (JSON), seed, seconds, versions
      /xcoordinates /ycoordinates     dimension scales
      /train_loss (nx, ny) ...        Li et al.'s names, so their plotting scripts read them
    quick.analysis.d/.parts/...       rows of a surface in flight (.npz, no pickle) and
                                      stamp.json: what they depend on (see Parts)

A result file is written under a temporary name and renamed when complete; the index is
rewritten the same way. A kill loses at most the result in flight (a surface: its rows in
flight). The train store is only ever read.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from landscape.errors import StoreError
from landscape.store.train_store import _attr, _fsync, _plain

KIND_ANALYSIS = "landscape.analysis"
ANALYSIS_SCHEMA = 1
# The index attribute `source` of a store of `landscape.Probe` results: no train store behind it
PROBE_SOURCE = "landscape.Probe"


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


PARTS_STAMP = "stamp.json"


@dataclass(frozen=True)
class Parts:
    """The pieces (e.g. rows) of one result in flight, kept so a killed run resumes them.

    `stamp` is everything the result depends on (measure, key, parameters, the train store's
    checksum); pieces kept under another stamp are never reused: they are discarded and the
    result starts afresh, so a resumed surface cannot mix two spans, seeds or grids.
    """

    index_path: Path
    measure: str
    key: str
    stamp: dict[str, Any]

    @property
    def folder(self) -> Path:
        return parts_dir(self.index_path, self.measure, self.key)

    def reconcile(self) -> str | None:
        """Discard pieces kept under another stamp; return a note saying so, else None."""
        folder = self.folder
        if not folder.is_dir():
            return None
        found = _read_stamp(folder / PARTS_STAMP)
        if found == self.stamp:
            return None
        self.clear()
        what = "no readable stamp" if found is None else _stamp_difference(found, self.stamp)
        return (
            f"{self.measure} {self.key}: discarded the partial result of an interrupted run "
            f"({what}); computing it afresh"
        )

    def save(self, part: str, **arrays: np.ndarray) -> None:
        """Keep one piece atomically, as a plain .npz (numeric arrays only, never pickled)."""
        folder = self.folder
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / PARTS_STAMP).is_file():
            _write_atomic(folder / PARTS_STAMP, json.dumps(self.stamp, sort_keys=True).encode())
        tmp = folder / f".{part}.tmp{os.getpid()}.npz"
        np.savez(tmp, allow_pickle=False, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, folder / f"{part}.npz")

    def load(self) -> dict[str, dict[str, np.ndarray]]:
        """The pieces kept under this stamp; an unreadable piece counts as not computed."""
        self.reconcile()
        folder = self.folder
        out = {}
        for p in sorted(folder.glob("*.npz")) if folder.is_dir() else ():
            if p.name.startswith(".") or not p.is_file() or p.is_symlink():
                continue
            try:
                with np.load(p, allow_pickle=False) as z:
                    out[p.stem] = {k: z[k] for k in z.files}
            except (OSError, ValueError, EOFError, zipfile.BadZipFile):
                p.unlink(missing_ok=True)  # a torn piece: recompute it
        return out

    def clear(self) -> None:
        folder = self.folder
        if not folder.is_dir():
            return
        for p in folder.iterdir():
            p.unlink(missing_ok=True)
        folder.rmdir()


def _read_stamp(path: Path) -> dict[str, Any] | None:
    try:
        found = json.loads(path.read_bytes()) if path.is_file() else None
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _stamp_difference(found: dict[str, Any], wanted: dict[str, Any]) -> str:
    diffs = [
        f"{k}: kept {found.get(k)!r}, now {wanted.get(k)!r}"
        for k in sorted(set(found) | set(wanted))
        if found.get(k) != wanted.get(k)
    ]
    return "; ".join(diffs)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


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
    # the specs of the measures the analysis ran, as recorded (name -> spec), with their counts
    measures = json.loads(attrs.get("measures") or "{}")
    for name, spec in measures.items():
        spec["results"] = sum(r["measure"] == name for r in results)
    return {
        "train_store": attrs.get("train_store"),
        "config": json.loads(attrs.get("config", "{}")),
        "summary": json.loads(attrs.get("summary", "{}")),
        "measures": measures,
        "results": results,
    }
