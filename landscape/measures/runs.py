"""A train store opened for analysis: its config, dataset, runs and objectives.

The dataset is rebuilt from the stored config and must match the stored fingerprint; the
architecture is rebuilt and its layout must match the stored table, so a measure can never
silently evaluate parameters in the wrong network or on other data.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch import nn

from landscape.config import ExperimentConfig, config_from_json
from landscape.core.flat import FlatModel
from landscape.core.layout import Layout
from landscape.core.losses import loss_name
from landscape.core.objective import Objective
from landscape.data import Dataset, load_dataset
from landscape.errors import StoreError
from landscape.importer.sources import ImportRecord, stored_record
from landscape.models import build_model
from landscape.store.train_read import check_runs, read_index, read_run, run_file
from landscape.store.train_store import file_checksum


@dataclass(frozen=True)
class StoredRun:
    """One run's stored points as tensors (CPU, float32)."""

    run_id: str
    mode: str
    index: int
    seed: int
    status: str
    init: torch.Tensor  # (P,)
    final: torch.Tensor  # (P,)
    final_step: int
    checkpoints: torch.Tensor  # (n, P)
    checkpoint_steps: np.ndarray  # (n,)
    init_buffers: torch.Tensor  # (P_b,) BatchNorm running statistics; (0,) without BatchNorm
    final_buffers: torch.Tensor  # (P_b,)
    checkpoint_buffers: torch.Tensor  # (n, P_b)

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def has_init(self) -> bool:
        """False for a point imported without --init: `init` is then empty, (0,)."""
        return self.init.numel() > 0


class Experiment:
    """A train store, read-only: config, dataset, layout, runs, objectives."""

    def __init__(
        self,
        path: Path,
        *,
        data_dir: Path | None = None,
        offline: bool = False,
        device: torch.device | str = "cpu",
    ):
        self.path = Path(path)
        self.index = read_index(self.path)
        self.cfg: ExperimentConfig = config_from_json(self.index["config"])
        self.device = torch.device(device)
        checks = check_runs(self.path, self.index)
        self.run_ids = [r for r, c in checks.items() if c.readable]
        # damaged run files are left out of the analysis (the runner says so); never "missing"
        self.damaged = {r: c.problem or "" for r, c in checks.items() if c.status == "damaged"}
        if not self.run_ids:
            raise StoreError(
                f"store {self.path}: no completed runs to analyze"
                + (f" ({len(self.damaged)} run file(s) are damaged)" if self.damaged else "")
                + f"; run `landscape train -o {self.path}` first"
            )
        self._data_dir, self._offline = data_dir, offline
        self._runs: dict[str, StoredRun] = {}
        self._checksums: dict[str, str] = {}  # sha256 of each run file as this object read it
        # imported points (`landscape import`): the user's model and data, rebuilt from here
        self.imported: ImportRecord | None = stored_record(self.index)

    @cached_property
    def dataset(self) -> Dataset:
        data_dir, offline = self._data_dir, self._offline
        if self.imported is not None:
            ds = self.imported.dataset(self.cfg.data, data_dir=data_dir, offline=offline)
        else:
            ds = load_dataset(self.cfg.data, data_dir=data_dir, offline=offline)
        stored = self.index.get("dataset_fingerprint")
        if stored != ds.fingerprint:
            raise StoreError(
                f"store {self.path}: trained on {ds.name} with fingerprint {str(stored)[:12]}..., "
                f"but the data found now has {ds.fingerprint[:12]}...; restore the original "
                "files (or --data-dir pointing at them)"
            )
        return ds

    def template(self) -> nn.Module:
        """A fresh module of the stored architecture (its own parameters are never used)."""
        ds = self.dataset
        if self.imported is not None:
            return self.imported.template(self.cfg, ds)
        return build_model(self.cfg.model, input_shape=ds.input_shape, n_outputs=ds.n_outputs)

    @cached_property
    def layout(self) -> Layout:
        built = Layout.of_parameters(self.template())
        stored = Layout.from_arrays(read_run(self.path, self.run_ids[0])["layout"])
        if built != stored:
            raise StoreError(
                f"store {self.path}: the stored parameter layout ({stored.size} parameters) "
                f"does not match the architecture rebuilt from its config ({built.size}); "
                + (
                    f"the model {self.imported.model_name(self.cfg)} changed since it was "
                    "imported: restore its code or import again"
                    if self.imported is not None
                    else "the store was written by an incompatible landscape version"
                )
            )
        return built

    def run(self, run_id: str) -> StoredRun:
        if run_id not in self._runs:
            planned = self.checksum(run_id)
            self._runs[run_id] = _load_run(self.path, run_id)
            if file_checksum(run_file(self.path, run_id)) != planned:
                del self._runs[run_id]
                raise StoreError(
                    f"store {self.path}, run {run_id}: its file changed while this analysis "
                    "read it (another process wrote it); run the command again once that "
                    "process is done"
                )
        return self._runs[run_id]

    def checksum(self, run_id: str) -> str:
        """sha256 of run `run_id`'s file, as this object reads it: a result computed from the
        run records it, so a result is never reused once the file changed."""
        if run_id not in self._checksums:
            self._checksums[run_id] = file_checksum(run_file(self.path, run_id))
        return self._checksums[run_id]

    def forget_changed(self, checksums: dict[str, str]) -> None:
        """Drop what was read of each run whose file's checksum is no longer `checksums`' (a
        long-lived worker's Experiment, after a run file was written anew)."""
        for run_id, wanted in checksums.items():
            if self._checksums.get(run_id, wanted) != wanted:
                self._runs.pop(run_id, None)
                self._checksums.pop(run_id, None)

    @cached_property
    def _template(self) -> nn.Module:
        _ = self.layout  # check compatibility once
        return self.template().to(self.device)

    def model(
        self, buffers: torch.Tensor | None = None, *, bn: str = "stored", bn_samples: int = 2048
    ) -> FlatModel:
        """The architecture as f(theta, x); BatchNorm statistics chosen by `bn` (see FlatModel):
        'stored' uses `buffers` (a run's statistics), 'recalibrate' re-estimates them at each
        point on `bn_samples` training inputs spread evenly over the training set."""
        return FlatModel(
            self._template,
            buffers=_to(buffers, self.device),
            bn=bn,
            calibration=self.calibration_inputs(bn_samples) if bn == "recalibrate" else None,
        )

    def calibration_inputs(self, n: int) -> torch.Tensor:
        """`n` training inputs at evenly spaced indices (deterministic, covers every class)."""
        x = self._tensors["train"][0]
        idx = torch.linspace(0, len(x) - 1, min(n, len(x))).round().long().unique()
        return x[idx.to(x.device)]

    @property
    def has_batchnorm(self) -> bool:
        return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self._template.modules())

    @cached_property
    def _tensors(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        ds = self.dataset

        def t(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(a).to(self.device)

        return {"train": (t(ds.x_train), t(ds.y_train)), "test": (t(ds.x_test), t(ds.y_test))}

    def objective(
        self,
        split: str,
        *,
        buffers: torch.Tensor | None = None,
        budget_bytes: int = 256 * 2**20,
        bn: str = "stored",
        bn_samples: int = 2048,
    ) -> Objective:
        """Mean loss on the clean training set (`train`) or the test set (`test`)."""
        if split not in self._tensors:
            raise ValueError(f"split {split!r}: expected train or test")
        x, y = self._tensors[split]
        return Objective(
            self.model(buffers, bn=bn, bn_samples=bn_samples),
            x,
            y,
            loss=loss_name(self.cfg, self.dataset),
            classification=self.dataset.task == "classification",
            budget_bytes=budget_bytes,
        )


def _to(t: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    return None if t is None or t.numel() == 0 else t.to(device)


def _load_run(path: Path, run_id: str) -> StoredRun:
    r = read_run(path, run_id)
    a = r["attrs"]
    t = torch.from_numpy
    return StoredRun(
        run_id=run_id,
        mode=a["mode"],
        index=int(a["index"]),
        seed=int(a["seed"]),
        status=a["status"],
        init=t(r["init"]["params"]),
        final=t(r["final"]["params"]),
        final_step=int(r["final_attrs"]["step"]),
        checkpoints=t(r["checkpoints"]["params"]),
        checkpoint_steps=r["checkpoints"]["step"],
        init_buffers=t(r["init"]["buffers"]),
        final_buffers=t(r["final"]["buffers"]),
        checkpoint_buffers=t(r["checkpoints"]["buffers"]),
    )
