"""The HDF5 train store: one file per run plus an index file that links them.

Layout (all readable with plain h5py; every array has `long_name` and `units`)::

    quick.h5                      index: attrs config (JSON), schema, planned run ids;
      /runs/<run_id>              external link -> quick.runs/<run_id>.h5:/
    quick.runs/normal-000.h5      one run
      attrs                       config, run_id, mode, seed, status, diverged_step, versions, ...
      /layout/{name,shape,offset,numel,kind}          parameter layout table
      /buffer_layout/...                              BatchNorm running statistics, if any
      /init/params (P,)  /init/buffers (P_b,)
      /checkpoints/step (n,) [dimension scale]  /checkpoints/epoch  /checkpoints/params (n, P)
      /final/params (P,)  /final/buffers  attrs step, epoch
      /history/step (m,) [dimension scale]  /history/{epoch,train_loss,train_acc,...} (m,)

Crash safety: a run file is written under a temporary name and renamed into place only when
complete (`landscape.store.atomic`), and the index is rewritten the same way, so a kill at any
moment loses at most the runs in flight. Reading is checked (`landscape.store.train_read`).
Nothing here imports torch or unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from landscape.errors import StoreError
from landscape.store import h5write
from landscape.store.atomic import atomic_path
from landscape.store.h5read import open_h5, plain

# The layout's names and paths, and the checked readers, live in train_read; here for callers.
from landscape.store.train_read import (  # noqa: F401
    KIND_TRAIN,
    STORE_SCHEMA,
    check_run,
    check_runs,
    completed_runs,
    read_index,
    read_run,
    run_file,
    run_summary,
    runs_dir,
    store_info,
    store_kind,
)

# name -> (long_name, units) for every history array; loss units depend on the task.
HISTORY_META: dict[str, tuple[str, str]] = {
    "step": ("optimizer steps taken", "steps"),
    "epoch": ("passes over this mode's training set", "epochs"),
    "train_loss": ("full-batch loss on the clean training set", "{loss}"),
    "train_acc": ("accuracy on the clean training set", "fraction"),
    "test_loss": ("loss on the test set with its true targets", "{loss}"),
    "test_acc": ("accuracy on the test set with its true labels", "fraction"),
    "corrupt_loss": ("loss on the corrupted test targets trained on (overfit mode)", "{loss}"),
    "corrupt_acc": ("accuracy on the corrupted test labels trained on (overfit mode)", "fraction"),
    "grad_norm": ("L2 norm of the gradient of the full-batch clean training loss", "L2 norm"),
    "dist_init": ("L2 distance from the initial parameters", "L2 norm in parameter space"),
    "objective_loss": (
        "mean minibatch loss of the objective trained on since last point",
        "{loss}",
    ),
}


@dataclass
class RunRecord:
    """Everything one finished run stores; numpy arrays only."""

    run_id: str  # e.g. "overfit-003"
    mode: str  # normal | overfit
    index: int  # k: run k of every mode shares its initial parameters
    seed: int  # seed + k
    status: str  # complete | diverged
    diverged_step: int  # first step whose loss was NaN or inf; -1 if none
    config_json: str
    layout: dict[str, np.ndarray]
    buffer_layout: dict[str, np.ndarray]
    init_params: np.ndarray  # (P,) float32
    init_buffers: np.ndarray  # (P_b,)
    checkpoint_steps: np.ndarray  # (n,) int64
    checkpoint_epochs: np.ndarray  # (n,) float64
    checkpoint_params: np.ndarray  # (n, P) float32
    checkpoint_buffers: np.ndarray  # (n, P_b)
    final_step: int
    final_epoch: float
    final_params: np.ndarray  # (P,)
    final_buffers: np.ndarray
    history: dict[str, np.ndarray]  # keys of HISTORY_META, each (m,)
    corrupt_targets: np.ndarray | None  # overfit: corrupted test targets (one copy)
    attrs: dict[str, Any] = field(default_factory=dict)  # dataset, versions, device, timing


def _set_meta(ds: h5py.Dataset, long_name: str, units: str) -> None:
    ds.attrs["long_name"] = long_name
    ds.attrs["units"] = units


def _write_layout(group: h5py.Group, arrays: dict[str, np.ndarray], what: str) -> None:
    text = h5py.string_dtype()
    meta = {
        "name": "tensor name",
        "shape": "tensor shape, comma separated",
        "offset": "first index in the flat vector",
        "numel": "number of entries",
        "kind": "weight | bias | norm | buffer",
    }
    group.attrs["description"] = f"layout of the flat {what} vectors"
    for key, values in arrays.items():
        if values.dtype == object:  # names and shapes: variable-length text
            ds = group.create_dataset(key, data=[str(v) for v in values], dtype=text)
        else:
            ds = h5write.array(group, key, values)
        _set_meta(ds, meta[key], "1" if key != "offset" and key != "numel" else "entries")


def _write_vectors(f: h5py.File, rec: RunRecord) -> None:
    units = "parameter value"
    for name, params, buffers in (
        ("init", rec.init_params, rec.init_buffers),
        ("final", rec.final_params, rec.final_buffers),
    ):
        g = f.create_group(name)
        _set_meta(
            h5write.array(g, "params", data=params.astype(np.float32)),
            f"{name} parameters, flat (see /layout)",
            units,
        )
        _set_meta(
            h5write.array(g, "buffers", data=buffers.astype(np.float32)),
            f"{name} running statistics, flat (see /buffer_layout)",
            units,
        )
    f["final"].attrs["step"] = rec.final_step
    f["final"].attrs["epoch"] = rec.final_epoch
    c = f.create_group("checkpoints")
    step = h5write.array(c, "step", data=rec.checkpoint_steps.astype(np.int64))
    _set_meta(step, "optimizer steps taken at the checkpoint", "steps")
    step.make_scale("step")
    epoch = h5write.array(c, "epoch", data=rec.checkpoint_epochs.astype(np.float64))
    _set_meta(epoch, "epochs at the checkpoint", "epochs")
    p = h5write.array(
        c,
        "params",
        data=rec.checkpoint_params.astype(np.float32),
        chunks=True,
        compression="gzip",
        compression_opts=1,
    )
    _set_meta(p, "parameters at each checkpoint, flat (see /layout)", units)
    b = h5write.array(c, "buffers", data=rec.checkpoint_buffers.astype(np.float32))
    _set_meta(b, "running statistics at each checkpoint", units)
    for ds in (epoch, p, b):
        ds.dims[0].attach_scale(step)


def _write_history(f: h5py.File, rec: RunRecord, loss_units: str) -> None:
    g = f.create_group("history")
    step = h5write.array(g, "step", data=rec.history["step"].astype(np.int64))
    _set_meta(step, *HISTORY_META["step"])
    step.make_scale("step")
    for key, values in rec.history.items():
        if key == "step":
            continue
        ds = h5write.array(g, key, data=values.astype(np.float64))
        long_name, units = HISTORY_META[key]
        _set_meta(ds, long_name, units.format(loss=loss_units))
        ds.dims[0].attach_scale(step)


def write_run(index_path: Path, rec: RunRecord, *, loss_units: str) -> Path:
    """Write one run's file atomically (temporary name, then rename); return its path."""
    path = run_file(index_path, rec.run_id)
    with atomic_path(path, what="run file") as tmp, h5write.new_file(tmp) as f:
        f.attrs["landscape_kind"] = "landscape.run"
        f.attrs["schema"] = STORE_SCHEMA
        for key in ("run_id", "mode", "index", "seed", "status", "diverged_step"):
            f.attrs[key] = _attr(getattr(rec, key))
        f.attrs["config"] = rec.config_json
        for key, value in rec.attrs.items():
            f.attrs[key] = _attr(value)
        _write_layout(f.create_group("layout"), rec.layout, "parameter")
        _write_layout(f.create_group("buffer_layout"), rec.buffer_layout, "buffer")
        _write_vectors(f, rec)
        _write_history(f, rec, loss_units)
        if rec.corrupt_targets is not None:
            ds = h5write.array(f, "corrupt_targets", data=rec.corrupt_targets)
            _set_meta(ds, "corrupted test targets appended to the training set", "label or target")
        h5write.list_arrays(f)
    return path


def _attr(value: Any) -> Any:
    """Plain Python values: numpy scalars and str subclasses (TorchVersion) have no HDF5 type."""
    if isinstance(value, str):
        return str(value)
    return value.item() if isinstance(value, np.generic) else value


def file_checksum(path: Path) -> str:
    """sha256 of a file's bytes (the index file of a train store)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


def write_index(index_path: Path, *, config_json: str, planned: list[str], attrs: dict) -> bool:
    """(Re)write the index atomically: attributes plus links to every completed run file.

    An index that already holds exactly this is left alone (a complete store may be on a
    read-only filesystem); returns whether it was written.
    """
    wanted, linked = _index_content(index_path, config_json, planned, attrs)
    if index_holds(index_path, wanted, {"runs": linked}):
        return False
    rel = runs_dir(index_path).name
    with atomic_path(index_path, what="store index") as tmp, h5write.new_file(tmp) as f:
        for key, value in wanted.items():
            f.attrs[key] = value
        g = f.create_group("runs")
        g.attrs["description"] = "external links to one file per completed run"
        for run_id in linked:
            g[run_id] = h5py.ExternalLink(f"{rel}/{run_id}.h5", "/")
    return True


def index_current(index_path: Path, *, config_json: str, planned: list[str], attrs: dict) -> bool:
    """Whether `write_index` with these arguments would leave the index as it is."""
    wanted, linked = _index_content(index_path, config_json, planned, attrs)
    return index_holds(index_path, wanted, {"runs": linked})


def _index_content(
    index_path: Path, config_json: str, planned: list[str], attrs: dict
) -> tuple[dict[str, Any], list[str]]:
    wanted = {
        "landscape_kind": KIND_TRAIN,
        "schema": STORE_SCHEMA,
        "config": config_json,
        "planned_runs": json.dumps(planned),
    } | {key: _attr(value) for key, value in attrs.items()}
    return wanted, [r for r in planned if os.path.lexists(run_file(index_path, r))]


def index_holds(index_path: Path, attrs: dict[str, Any], links: dict[str, list[str]]) -> bool:
    """Whether the index file at `index_path` has exactly these attributes and, per group,
    these link names (an unreadable or absent index holds nothing)."""
    if not index_path.is_file():
        return False
    try:
        with open_h5(index_path, what="index") as r:
            if r.attrs() != {k: plain(v) for k, v in attrs.items()}:
                return False
            groups = [g for g in r.keys("/") if g not in links]
            return not groups and all(r.keys(g) == sorted(names) for g, names in links.items())
    except StoreError:
        return False


def remove_stale_temporaries(index_path: Path) -> list[Path]:
    """Delete temporary run files left by a killed writer (its pid is gone); return them.

    A live writer's temporaries are kept, so two processes never delete each other's work.
    """
    removed = []
    folder = runs_dir(index_path)
    for tmp in folder.glob(".*.h5.tmp*") if folder.is_dir() else ():
        pid = tmp.name.rsplit(".tmp", 1)[1]
        if pid.isdigit() and not _alive(int(pid)):
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                continue  # a read-only store: the temporary stays, harmless
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _plain(value: Any) -> Any:
    return plain(value)
