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

import contextlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from landscape.store import h5write

# The layout's names and paths, and the checked readers, live in analysis_read.
from landscape.store.analysis_read import (  # noqa: F401
    ANALYSIS_SCHEMA,
    KIND_ANALYSIS,
    analysis_info,
    completed,
    read_index,
    read_result,
    result_file,
    results_dir,
)
from landscape.store.atomic import atomic_path, write_bytes
from landscape.store.train_store import _attr, index_holds

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


def parts_dir(index_path: Path, measure: str, key: str) -> Path:
    """Where the rows of a result in flight are kept until it completes."""
    return results_dir(index_path) / ".parts" / measure / key


def write_result(index_path: Path, measure: str, key: str, result: Result) -> Path:
    """Write one result file atomically; return its path."""
    path = result_file(index_path, measure, key)
    with atomic_path(path, what="result file") as tmp, h5write.new_file(tmp) as f:
        f.attrs["landscape_kind"] = "landscape.result"
        f.attrs["measure"] = measure
        f.attrs["key"] = key
        for name, value in result.attrs.items():
            f.attrs[name] = _attr(value)
        for name, arr in result.arrays.items():
            ds = h5write.array(f, name, arr.values)
            ds.attrs["long_name"] = arr.long_name
            ds.attrs["units"] = arr.units
        _attach_scales(f, result)
        h5write.list_arrays(f)
    return path


def _attach_scales(f: h5py.File, result: Result) -> None:
    scales = {d for arr in result.arrays.values() for d in arr.dims}
    for name in scales:
        f[name].make_scale(name)
    for name, arr in result.arrays.items():
        for axis, dim in enumerate(arr.dims):
            if dim != name:
                f[name].dims[axis].attach_scale(f[dim])


def write_index(index_path: Path, *, attrs: dict[str, Any]) -> bool:
    """(Re)write the index atomically with links to every completed result file; an index
    that already holds exactly this is left alone. Returns whether it was written."""
    wanted, links = _index_content(index_path, attrs)
    if index_holds(index_path, wanted, links):
        return False
    root = results_dir(index_path)
    with atomic_path(index_path, what="analysis store index") as tmp, h5write.new_file(tmp) as f:
        for name, value in wanted.items():
            f.attrs[name] = value
        for measure, keys in links.items():
            group = f.require_group(measure)
            for key in keys:
                group[key] = h5py.ExternalLink(f"{root.name}/{measure}/{key}.h5", "/")
    return True


def index_current(index_path: Path, *, attrs: dict[str, Any]) -> bool:
    """Whether `write_index` with these attributes would leave the index as it is."""
    return index_holds(index_path, *_index_content(index_path, attrs))


def _index_content(index_path: Path, attrs: dict[str, Any]) -> tuple[dict, dict[str, list[str]]]:
    wanted = {"landscape_kind": KIND_ANALYSIS, "schema": ANALYSIS_SCHEMA} | {
        name: _attr(value) for name, value in attrs.items()
    }
    links: dict[str, list[str]] = {}
    for measure, key in completed(index_path):
        links.setdefault(measure, []).append(key)
    return wanted, links


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
        if not (folder / PARTS_STAMP).is_file():
            stamp = json.dumps(self.stamp, sort_keys=True).encode()
            write_bytes(folder / PARTS_STAMP, stamp, what="partial result stamp")
        with atomic_path(folder / f"{part}.npz", what="partial result", suffix=".npz") as tmp:
            np.savez(tmp, allow_pickle=False, **arrays)  # type: ignore[arg-type]

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
            except (OSError, ValueError, EOFError, MemoryError, zipfile.BadZipFile):
                with contextlib.suppress(OSError):
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
