"""The trainer: K runs of one configuration at once, checkpoints and histories, into the store.

Run k of every mode is initialized from the seed `train.seed + k` (so a normal and an overfit
run with the same k start from the same point) and draws its own data order from a generator
derived from that seed and the mode. With `batched=True` the K runs of a mode train together as
one stack under `vmap`; with `batched=False` each trains alone as a plain module. Both paths run
the same loop below and store the same things.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from landscape._version import __version__
from landscape.config import ExperimentConfig, total_steps
from landscape.core.batched import Engine, ModuleEngine, StackedEngine
from landscape.core.devices import cuda_free_bytes
from landscape.core.loop import LoopData, Schedule, StackLoop, make_optimizer, run_loop
from landscape.core.losses import loss_name
from landscape.data import Dataset, TrainingSet
from landscape.errors import ConfigError
from landscape.models import build_model, init_parameters
from landscape.store import train_store as store

MODES = ("normal", "overfit")


@dataclass(frozen=True)
class RuntimeOptions:
    """How to run, not what: none of these change the stored numbers' meaning."""

    device: str = "auto"  # auto (CUDA when present) | cpu | cuda | cuda:N
    batched: bool = True  # train the runs of a mode together under vmap
    group_size: int = 0  # most runs trained together; 0: all runs of a mode
    data_dir: Path | None = None  # where datasets are looked for; None: $LANDSCAPE_DATA or ./data
    offline: bool = False  # never download
    # bytes of activations per evaluation chunk; None: train_budget(device)
    memory_budget: int | None = None
    wait: bool = False  # another process writes the store: wait for it instead of failing
    replace_damaged: bool = False  # train damaged run files afresh instead of refusing to


@dataclass
class TrainSummary:
    trained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already complete in the store
    diverged: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # damaged run files trained afresh


CPU_TRAIN_BUDGET = 512 * 2**20  # bytes; the trainer's evaluation chunks on a CPU
CUDA_TRAIN_BUDGET_CAP = 8 * 2**30  # bytes; larger chunks stop paying on a GPU


def train_budget(device: torch.device) -> int:
    """Activation bytes per chunk of the trainer's history evaluations (full train and test
    sets at every logged step): 512 MiB on a CPU; on CUDA a quarter of the free memory, at
    most 8 GiB, since 512 MiB cut the full MNIST into ~500 chunks per evaluation for 200
    stacked runs, each a few small kernels (the steps' own memory is not counted in it)."""
    if device.type != "cuda":
        return CPU_TRAIN_BUDGET
    return max(CPU_TRAIN_BUDGET, min(cuda_free_bytes(device) // 4, CUDA_TRAIN_BUDGET_CAP))


def make_schedule(cfg: ExperimentConfig, n_train: int) -> Schedule:
    """Steps per epoch, total steps, and the log-spaced checkpoint and history steps."""
    per_epoch, total = total_steps(cfg, n_train)
    batch = min(cfg.optim.batch_size or n_train, n_train)
    ckpt = np.unique(np.round(np.geomspace(1, total, cfg.train.checkpoints)).astype(np.int64))
    half = max(cfg.train.log_points // 2, 1)
    logs = np.concatenate(
        [
            [0, total],
            np.geomspace(1, total, half),
            np.linspace(0, total, half),
            ckpt,
        ]
    )
    logs = np.unique(np.round(logs).astype(np.int64))
    return Schedule(per_epoch, total, batch, ckpt, logs)


def _order_seed(run_seed: int, mode: str) -> int:
    return int(np.random.SeedSequence([run_seed, MODES.index(mode)]).generate_state(1)[0])


def _initial_modules(cfg: ExperimentConfig, ds: Dataset, indices: list[int]) -> list[nn.Module]:
    modules = []
    for k in indices:
        m = build_model(cfg.model, input_shape=ds.input_shape, n_outputs=ds.n_outputs)
        init_parameters(m, cfg.model, generator=torch.Generator().manual_seed(cfg.train.seed + k))
        modules.append(m)
    return modules


def loop_data(ds: Dataset, tset: TrainingSet, device: torch.device) -> LoopData:
    """The mode's training set, and the clean sets it is logged on, on the device."""

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a).to(device)

    targets = {"test": t(ds.y_test)}
    if tset.corrupt_y_test is not None:
        targets["corrupt"] = t(tset.corrupt_y_test)
    return LoopData(t(tset.x), t(tset.y), t(ds.x_train), t(ds.y_train), t(ds.x_test), targets)


def _records(
    loop: StackLoop,
    cfg: ExperimentConfig,
    mode: str,
    indices: list[int],
    last: int,
    attrs: dict,
    tset: TrainingSet,
) -> list[store.RunRecord]:
    """Cut the group's stacked results into one RunRecord per run."""
    histories = loop.histories()  # each cut after its run's first bad step
    first_bad = loop.first_bad.cpu().numpy()
    theta0 = loop.theta0.cpu().numpy()
    layout, blayout = loop.engine.layout, loop.engine.buffer_layout
    records = []
    for j, k in enumerate(indices):
        bad = int(first_bad[j])
        ckpts = [(s, p[j], b[j]) for s, p, b in loop.checkpoints if bad < 0 or s < bad]
        final_step, final_p, final_b = ckpts[-1] if ckpts else (0, theta0[j], loop.init_buffers[j])
        if bad < 0:
            final_step = last
        records.append(
            store.RunRecord(
                run_id=f"{mode}-{k:03d}",
                mode=mode,
                index=k,
                seed=cfg.train.seed + k,
                status="diverged" if bad >= 0 else "complete",
                diverged_step=bad,
                config_json=cfg.to_json(),
                layout=layout.to_arrays(),
                buffer_layout=blayout.to_arrays(),
                init_params=theta0[j],
                init_buffers=loop.init_buffers[j],
                checkpoint_steps=np.array([c[0] for c in ckpts], dtype=np.int64),
                checkpoint_epochs=np.array([c[0] / loop.sched.steps_per_epoch for c in ckpts]),
                checkpoint_params=_stack([c[1] for c in ckpts], layout.size),
                checkpoint_buffers=_stack([c[2] for c in ckpts], blayout.size),
                final_step=final_step,
                final_epoch=final_step / loop.sched.steps_per_epoch,
                final_params=final_p,
                final_buffers=final_b,
                history=histories[j],
                corrupt_targets=tset.corrupt_y_test,
                attrs=attrs,
            )
        )
    return records


def _stack(rows: list[np.ndarray], width: int) -> np.ndarray:
    return np.stack(rows) if rows else np.zeros((0, width), dtype=np.float32)


def _engine(
    modules: list[nn.Module],
    cfg: ExperimentConfig,
    ds: Dataset,
    batched: bool,
    device: torch.device,
) -> Engine:
    if not batched:
        return ModuleEngine(modules[0], device)
    template = build_model(cfg.model, input_shape=ds.input_shape, n_outputs=ds.n_outputs)
    return StackedEngine(template, modules, device)


def train_group(
    cfg: ExperimentConfig,
    ds: Dataset,
    tset: TrainingSet,
    indices: list[int],
    *,
    device: torch.device,
    batched: bool,
    budget: int | None = None,
    on_steps: Callable[[int], None] = lambda s: None,
) -> list[store.RunRecord]:
    """Train runs `indices` of `tset.mode` together (batched) or the single run (loop).

    `budget`: activation bytes per evaluation chunk; None: `train_budget(device)`.
    """
    if not batched and len(indices) != 1:
        raise ConfigError(f"the per-seed loop trains one run at a time, got {len(indices)}")
    budget = budget or train_budget(device)
    sched = make_schedule(cfg, len(tset.x))
    started = time.perf_counter()
    engine = _engine(_initial_modules(cfg, ds, indices), cfg, ds, batched, device)
    loop = StackLoop(
        engine,
        loop_data(ds, tset, device),
        sched,
        loss_name(cfg, ds),
        ds.task == "classification",
        budget,
    )
    gens = [
        torch.Generator().manual_seed(_order_seed(cfg.train.seed + k, tset.mode)) for k in indices
    ]
    opt = make_optimizer(cfg.optim, engine.parameters())
    last = run_loop(loop, sched, gens, opt, on_steps)
    attrs = _run_attrs(
        ds, tset, sched, device, batched, engine.layout.size, cfg, ds_loss=loss_name(cfg, ds)
    )
    attrs["wall_time_s"] = (time.perf_counter() - started) / len(indices)
    attrs["group_size"] = len(indices)
    return _records(loop, cfg, tset.mode, indices, last, attrs, tset)


def batching_problem(cfg: ExperimentConfig, ds: Dataset) -> str | None:
    """Why the model cannot train under vmap (None if it can), found by one tiny step."""
    try:
        modules = _initial_modules(cfg, ds, [0, 1])
        engine = _engine(modules, cfg, ds, True, torch.device("cpu"))
        x = torch.as_tensor(ds.x_train[:2]).unsqueeze(0).expand(2, 2, *ds.input_shape)
        engine.forward(x).sum().backward()
    except RuntimeError as e:  # vmap raises RuntimeError for unsupported operations
        return str(e).splitlines()[0]
    return None


def _run_attrs(
    ds: Dataset,
    tset: TrainingSet,
    sched: Schedule,
    device: torch.device,
    batched: bool,
    n_params: int,
    cfg: ExperimentConfig,
    ds_loss: str,
) -> dict:
    return {
        "dataset": ds.name,
        "dataset_title": ds.title,
        "dataset_fingerprint": ds.fingerprint,
        "dataset_source": ds.source,
        "task": ds.task,
        "loss": ds_loss,
        "n_train_clean": len(ds.x_train),
        "n_train": len(tset.x),
        "n_test": len(ds.x_test),
        "copies": tset.copies,
        "steps_per_epoch": sched.steps_per_epoch,
        "total_steps": sched.total_steps,
        "batch_size": sched.batch_size,
        "n_params": n_params,
        "model": cfg.model.name,
        "device": str(device),
        "batched": batched,
        "landscape_version": __version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "h5py_version": h5py.__version__,
        "python_version": platform.python_version(),
    }
