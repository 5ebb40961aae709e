"""The store side of `landscape import`: the index to append to, one run record, the writes.

An imported point is a run like a trained one (see `store.train_store`) with no history: its
checkpoints are the imported ones plus the final point, its initial point is empty (0,) when
none was imported, its seed is -1 (unknown) and its epochs NaN. The run file is written, then
the index, each atomically; on a failure neither is left behind.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import nn

from landscape._version import __version__
from landscape.config import ExperimentConfig, from_dict
from landscape.core.layout import Layout
from landscape.core.losses import loss_units
from landscape.data import Dataset
from landscape.errors import StoreError
from landscape.importer.sources import ImportRecord, stored_record
from landscape.importer.weights import Point
from landscape.store import train_store as store


def existing_index(out: Path, append: bool) -> dict[str, Any] | None:
    """The index of the store to append to; None for a new store."""
    if out.exists() and not append:
        raise StoreError(
            f"output {out}: exists; landscape import never overwrites a store: choose a new "
            "-o path, or pass --append to add this point to it as another run"
        )
    if not out.exists():
        return None
    index = store.read_index(out)
    if not index.get("imported"):
        raise StoreError(
            f"output {out}: a store written by `landscape train`; imported points go to a store "
            "of their own: choose a new -o path"
        )
    return index


def check_same(
    out: Path,
    index: dict[str, Any],
    record: ImportRecord,
    cfg: ExperimentConfig,
    ds: Dataset,
    template: nn.Module,
) -> ExperimentConfig:
    """Appending: the same model, arguments, data and parameter layout as the stored runs."""
    stored_cfg, now = json.loads(index["config"]), json.loads(cfg.to_json())  # tuples as lists
    stored = stored_record(index)
    ours = {
        "imported": json.loads(record.to_json()),
        "data": now["data"],
        "model": now["model"],
        "dataset_fingerprint": ds.fingerprint,
    }
    theirs = {
        "imported": json.loads(stored.to_json()) if stored else None,
        "data": stored_cfg["data"],
        "model": stored_cfg["model"],
        "dataset_fingerprint": index.get("dataset_fingerprint"),
    }
    diffs = [f"{k}: stored {theirs[k]!r}, now {ours[k]!r}" for k in ours if ours[k] != theirs[k]]
    stored_layout = Layout.from_arrays(store.read_run(out, index["planned_runs"][0])["layout"])
    if not diffs and stored_layout != Layout.of_parameters(template):
        diffs.append("the parameter layout of the model differs from the stored runs'")
    if diffs:
        raise StoreError(
            f"output {out}: holds points of another model or data ({'; '.join(diffs)}); "
            "--append needs the same --model, --model-arg and data: choose a new -o path"
        )
    return from_dict(stored_cfg)


def next_run_id(index: dict[str, Any] | None, label: str) -> str:
    taken = [r for r in (index or {}).get("planned_runs", []) if r.rsplit("-", 1)[0] == label]
    return f"{label}-{len(taken):03d}"


def run_record(
    run_id: str,
    cfg: ExperimentConfig,
    template: nn.Module,
    points: list[tuple[str, Point]],
    steps: list[int],
    ds: Dataset,
    record: ImportRecord,
    *,
    step_given: bool,
) -> store.RunRecord:
    """One run: `points` (name, Point) in path order (init first if any, final last) at
    `steps` (one per point after init); no history, an empty init when none was imported."""
    init = points[0][1] if points[0][0] == "init" else None
    path = [p for name, p in points if name != "init"]  # checkpoints, then the final point
    final_step = steps[-1]
    empty = np.zeros(0, dtype=np.float32)
    return store.RunRecord(
        run_id=run_id,
        mode=run_id.rsplit("-", 1)[0],
        index=int(run_id.rsplit("-", 1)[1]),
        seed=-1,  # not known: the point was trained elsewhere
        status="complete",
        diverged_step=-1,
        config_json=cfg.to_json(),
        layout=Layout.of_parameters(template).to_arrays(),
        buffer_layout=Layout.of_buffers(template).to_arrays(),
        init_params=init.params if init else empty,
        init_buffers=init.buffers if init else empty,
        checkpoint_steps=np.array(steps, dtype=np.int64),
        checkpoint_epochs=np.full(len(steps), np.nan),
        checkpoint_params=np.stack([p.params for p in path]),
        checkpoint_buffers=np.stack([p.buffers for p in path]),
        final_step=final_step,
        final_epoch=float("nan"),  # unknown
        final_params=path[-1].params,
        final_buffers=path[-1].buffers,
        history={"step": np.zeros(0, dtype=np.int64)},  # none: trained elsewhere
        corrupt_targets=None,
        attrs=_run_attrs(cfg, ds, record, points, path[-1].params.size, step_given),
    )


def _run_attrs(
    cfg: ExperimentConfig,
    ds: Dataset,
    record: ImportRecord,
    points: list[tuple[str, Point]],
    n_params: int,
    step_given: bool,
) -> dict[str, Any]:
    sources = {
        name: {"file": p.file, "sha256": p.sha256, "buffers_from_file": p.buffers_from_file}
        for name, p in points
    }
    return {
        "dataset": ds.name,
        "dataset_title": ds.title,
        "dataset_fingerprint": ds.fingerprint,
        "dataset_source": ds.source,
        "task": ds.task,
        "loss": cfg.train.loss,
        "n_train_clean": len(ds.x_train),
        "n_train": len(ds.x_train),
        "n_test": len(ds.x_test),
        "copies": 0,
        "n_params": n_params,
        "model": record.model_name(cfg),
        "imported_points": json.dumps(sources),
        "final_step_given": step_given,
        "landscape_version": __version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "h5py_version": h5py.__version__,
        "python_version": platform.python_version(),
    }


def write(
    out: Path, rec: store.RunRecord, cfg: ExperimentConfig, planned: list[str], attrs: dict
) -> Path:
    """The run file, then the index, each atomically; on any failure neither is left behind."""
    path = store.run_file(out, rec.run_id)
    if path.exists():
        raise StoreError(
            f"output {out}: its run folder already holds {path.name} (left by an earlier "
            f"import?); remove {store.runs_dir(out)} or choose a new -o path"
        )
    created = not store.runs_dir(out).exists()
    try:
        store.write_run(out, rec, loss_units=loss_units(cfg.train.loss))
        store.write_index(out, config_json=cfg.to_json(), planned=planned, attrs=attrs)
    except BaseException:
        pid = os.getpid()  # store's temporaries are .<name>.tmp<pid>
        for leftover in (
            path,
            path.with_name(f".{path.name}.tmp{pid}"),
            out.with_name(f".{out.name}.tmp{pid}"),
        ):
            leftover.unlink(missing_ok=True)
        if created:
            shutil.rmtree(store.runs_dir(out), ignore_errors=True)
        raise
    return path
