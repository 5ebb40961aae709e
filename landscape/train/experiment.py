"""`landscape train` as a library call: plan the runs, skip the complete ones, train the rest.

Runs are grouped per mode (at most `group_size` together), each group's run files are written
as soon as it finishes and the index is rewritten, so a crash loses only the group in flight
and running the same call again trains only what is missing.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from landscape._version import __version__
from landscape.config import ExperimentConfig, config_from_json
from landscape.core.devices import resolve_device
from landscape.core.events import Event
from landscape.core.executor import Executor
from landscape.core.losses import loss_units
from landscape.data import Dataset, TrainingSet, build_training_set, load_dataset
from landscape.errors import ConfigError, StoreError
from landscape.store import train_store as store
from landscape.store.atomic import check_file_target
from landscape.store.lock import store_lock
from landscape.store.train_read import check_runs, differences, read_index, run_summary
from landscape.train.memory import check_training_memory
from landscape.train.trainer import (
    MODES,
    RuntimeOptions,
    TrainSummary,
    batching_problem,
    make_schedule,
    train_group,
)


def planned_runs(cfg: ExperimentConfig) -> list[str]:
    """Run ids of the experiment, e.g. normal-000 ... overfit-003."""
    modes = MODES if cfg.train.mode == "both" else (cfg.train.mode,)
    return [f"{mode}-{k:03d}" for mode in modes for k in range(cfg.train.runs)]


def _merge_plan(path: Path, cfg: ExperimentConfig, index: dict | None) -> list[str]:
    """The run ids to keep in the index; refuses a store made with another config."""
    plan = planned_runs(cfg)
    if index is None:
        return plan
    if index.get("imported"):
        raise StoreError(
            f"store {path} holds points imported with `landscape import`, not runs this config "
            "trains; write to a new -o path"
        )
    stored = config_from_json(index["config"])
    diffs = differences(stored.identity(), cfg.identity(), ("stored", "requested"))
    if diffs:
        raise ConfigError(
            f"store {path} holds an experiment with a different config ("
            + "; ".join(diffs[:5])
            + "); write to a new -o path, or move this store away to start over"
        )
    return list(dict.fromkeys(index["planned_runs"] + plan))


def _index_attrs(ds: Dataset) -> dict:
    return {
        "dataset": ds.name,
        "dataset_title": ds.title,
        "dataset_fingerprint": ds.fingerprint,
        "landscape_version": __version__,
    }


def train_experiment(
    cfg: ExperimentConfig,
    path: Path,
    *,
    options: RuntimeOptions | None = None,
    on_event: Callable[[Event], None] = lambda e: None,
    extra_attrs: dict[str, str] | None = None,
    executor: Executor | None = None,
) -> TrainSummary:
    """Train every planned run of `cfg` that `path` does not hold yet; return what happened.

    `executor` (landscape.core.executor) runs the groups elsewhere, e.g. on Dask workers that share
    this filesystem; by default they run here, with step-level progress.

    `extra_attrs` go into the index's attributes before any run trains (a preset's name and
    claims, so their thresholds are on record before the result).
    """
    path = Path(path)
    options = options or RuntimeOptions()
    device = resolve_device(options.device)
    check_file_target(path, what="train store")
    index = read_index(path) if os.path.lexists(path) else None  # read once: plan, fingerprint
    plan = _merge_plan(path, cfg, index)
    ds = load_dataset(cfg.data, data_dir=options.data_dir, offline=options.offline)
    _check_fingerprint(path, ds, index)
    together = 1 if not options.batched else (options.group_size or cfg.train.runs)
    check_training_memory(cfg, ds, together, device)  # before the store is touched
    kept = {k: index[k] for k in ("preset", "claims") if index and k in index}  # on resume
    attrs = _index_attrs(ds) | kept | (extra_attrs or {})
    summary, todo = _todo(path, cfg, options)
    s = _Session(cfg, ds, path, plan, attrs, options, device, on_event, summary)
    if not todo and store.index_current(path, config_json=cfg.to_json(), planned=plan, attrs=attrs):
        on_event(_plan_event(s, todo))  # nothing to write: no lock, no write (read-only is fine)
        return summary
    note = functools.partial(_note, on_event)
    with store_lock(path, command="landscape train", wait=options.wait, on_note=note):
        s.summary, todo = _todo(path, cfg, options)  # again: another writer may have trained some
        _train_locked(s, todo, executor)
    return s.summary


def _note(on_event: Callable[[Event], None], text: str) -> None:
    on_event(Event("note", text))


def _todo(
    path: Path, cfg: ExperimentConfig, options: RuntimeOptions
) -> tuple[TrainSummary, list[str]]:
    """The planned runs still to train; refuses a damaged run file unless told to replace it."""
    wanted = planned_runs(cfg)
    checks = check_runs(path, {"config": cfg.to_json(), "planned_runs": wanted})
    damaged = {r: c.problem for r, c in checks.items() if c.status == "damaged"}
    if damaged and not options.replace_damaged:
        raise StoreError(
            f"store {path}: {len(damaged)} run file(s) are damaged: "
            + "; ".join(f"{r}: {p}" for r, p in list(damaged.items())[:3])
            + ". `landscape train` does not overwrite a damaged run file: pass "
            "--replace-damaged to train those runs afresh (their files are replaced), or move "
            "the files away first to keep them"
        )
    summary = TrainSummary(
        skipped=[r for r in wanted if checks[r].readable], replaced=list(damaged)
    )
    return summary, [r for r in wanted if not checks[r].readable]


def _plan_event(s: _Session, todo: list[str]) -> Event:
    return Event(
        "plan",
        f"{len(todo)} of {len(planned_runs(s.cfg))} runs to train on {s.device} ({s.ds.title})",
        done=len(s.summary.skipped),
        total=len(s.plan),
    )


def _train_locked(s: _Session, todo: list[str], executor: Executor | None) -> None:
    """The writing part of `train_experiment`, under the store's lock."""
    store.write_index(s.path, config_json=s.cfg.to_json(), planned=s.plan, attrs=s.attrs)
    stale = store.remove_stale_temporaries(s.path)
    if stale:
        s.on_event(Event("note", f"removed {len(stale)} partial run file(s) of an interrupted run"))
    if s.summary.replaced:
        s.on_event(Event("note", "replacing damaged run file(s): " + ", ".join(s.summary.replaced)))
    s.on_event(_plan_event(s, todo))
    if s.options.batched and todo and (problem := batching_problem(s.cfg, s.ds)):
        s.on_event(
            Event(
                "note",
                f"model {s.cfg.model.name!r} cannot be batched under vmap "
                f"({problem}); training the runs one at a time instead",
            )
        )
        s.options = dataclasses.replace(s.options, batched=False)
    if executor is not None and executor.remote:
        _train_remote(s, todo, executor)
        return
    for mode in dict.fromkeys(r.rsplit("-", 1)[0] for r in todo):
        indices = [int(r.rsplit("-", 1)[1]) for r in todo if r.startswith(mode + "-")]
        _train_mode(s, mode, indices)


def _groups(indices: list[int], options: RuntimeOptions) -> list[list[int]]:
    # A group of one trains as a plain module: vmap over K = 1 only adds overhead
    # (bench/train_seeds.py: 0.65-0.77x the loop at K = 1), and both give the same numbers.
    size = 1 if not options.batched else (options.group_size or len(indices))
    return [indices[i : i + size] for i in range(0, len(indices), size)]


@dataclass
class _Session:
    """What every group of one `train_experiment` call shares."""

    cfg: ExperimentConfig
    ds: Dataset
    path: Path
    plan: list[str]
    attrs: dict
    options: RuntimeOptions
    device: torch.device
    on_event: Callable[[Event], None]
    summary: TrainSummary


def _training_set(cfg: ExperimentConfig, ds: Dataset, mode: str) -> TrainingSet:
    return build_training_set(
        ds, mode, copies=cfg.train.copies, noise=cfg.train.overfit_noise, seed=cfg.data.seed
    )


def _train_and_write(
    cfg: ExperimentConfig,
    ds: Dataset,
    tset: TrainingSet,
    group: list[int],
    path: Path,
    options: RuntimeOptions,
    device: torch.device,
    on_steps: Callable[[int], None] = lambda step: None,
) -> list[store.RunRecord]:
    """Train one group and write its run files (each atomically); the index is not touched."""
    records = train_group(
        cfg,
        ds,
        tset,
        group,
        device=device,
        batched=options.batched and len(group) > 1,
        budget=options.memory_budget,
        on_steps=on_steps,
    )
    for rec in records:
        store.write_run(path, rec, loss_units=loss_units(rec.attrs["loss"]))
    return records


def _record_group(s: _Session, statuses: list[tuple[str, str]]) -> None:
    """The caller's side after a group is written: the summary, the index, the events."""
    for run_id, status in statuses:
        s.summary.trained.append(run_id)
        if status == "diverged":
            s.summary.diverged.append(run_id)
    store.write_index(s.path, config_json=s.cfg.to_json(), planned=s.plan, attrs=s.attrs)
    for run_id, _ in statuses:
        s.on_event(Event("run", run_id, run=run_summary(s.path, run_id)))


def _train_mode(s: _Session, mode: str, indices: list[int]) -> None:
    tset = _training_set(s.cfg, s.ds, mode)
    total = make_schedule(s.cfg, len(tset.x)).total_steps
    for group in _groups(indices, s.options):
        ids = ", ".join(f"{mode}-{k:03d}" for k in group)
        s.on_event(Event("group", f"{ids} ({len(tset.x)} examples)", total=total))

        def on_steps(step: int, _ids: str = ids) -> None:
            s.on_event(Event("steps", _ids, done=step, total=total))

        records = _train_and_write(s.cfg, s.ds, tset, group, s.path, s.options, s.device, on_steps)
        _record_group(s, [(rec.run_id, rec.status) for rec in records])


@dataclass(frozen=True)
class GroupTask:
    """One group of runs for a worker: everything it needs to train and write them."""

    cfg: ExperimentConfig
    path: Path
    mode: str
    group: list[int]
    options: RuntimeOptions


@functools.lru_cache(maxsize=2)
def _worker_data(config_json: str, data_dir: Path | None, offline: bool) -> Dataset:
    cfg = config_from_json(config_json)  # the key: a config's dataclasses need not hash
    return load_dataset(cfg.data, data_dir=data_dir, offline=offline)  # once per worker


def train_group_task(task: GroupTask) -> list[tuple[str, str]]:
    """A worker's side: load the data, train one group, write its run files.

    Returns [(run_id, status)]; status is "complete" or "diverged".
    """
    ds = _worker_data(task.cfg.to_json(), task.options.data_dir, task.options.offline)
    tset = _training_set(task.cfg, ds, task.mode)
    device = resolve_device(task.options.device)
    records = _train_and_write(task.cfg, ds, tset, task.group, task.path, task.options, device)
    return [(rec.run_id, rec.status) for rec in records]


def _train_remote(s: _Session, todo: list[str], executor: Executor) -> None:
    tasks = []
    for mode in dict.fromkeys(r.rsplit("-", 1)[0] for r in todo):
        indices = [int(r.rsplit("-", 1)[1]) for r in todo if r.startswith(mode + "-")]
        for group in _groups(indices, s.options):
            tasks.append(GroupTask(s.cfg, s.path.resolve(), mode, group, s.options))
    s.on_event(Event("note", f"{len(tasks)} group(s) sent to {executor.name}"))
    for _, statuses in executor.map_unordered(train_group_task, tasks):
        _record_group(s, statuses)


def _check_fingerprint(path: Path, ds: Dataset, index: dict | None) -> None:
    if index is None:
        return
    stored = index.get("dataset_fingerprint")
    if stored and stored != ds.fingerprint:
        raise StoreError(
            f"store {path}: its runs were trained on dataset {ds.name} with fingerprint "
            f"{stored[:12]}..., but the data found now has {ds.fingerprint[:12]}...; the files "
            "changed: restore them, or write to a new -o path"
        )
