"""`landscape train` as a library call: plan the runs, skip the complete ones, train the rest.

Runs are grouped per mode (at most `group_size` together), each group's run files are written
as soon as it finishes and the index is rewritten, so a crash loses only the group in flight
and running the same call again trains only what is missing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from landscape import store
from landscape._version import __version__
from landscape.config import ExperimentConfig, config_from_json
from landscape.data import Dataset, build_training_set, load_dataset
from landscape.errors import ConfigError, StoreError
from landscape.train import (
    MODES,
    Event,
    RuntimeOptions,
    TrainSummary,
    batching_problem,
    loss_units,
    make_schedule,
    resolve_device,
    train_group,
)


def planned_runs(cfg: ExperimentConfig) -> list[str]:
    """Run ids of the experiment, e.g. normal-000 ... overfit-003."""
    modes = MODES if cfg.train.mode == "both" else (cfg.train.mode,)
    return [f"{mode}-{k:03d}" for mode in modes for k in range(cfg.train.runs)]


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}: stored {va!r}, requested {vb!r}")
    return out


def _merge_plan(path: Path, cfg: ExperimentConfig, index: dict | None) -> list[str]:
    """The run ids to keep in the index; refuses a store made with another config."""
    plan = planned_runs(cfg)
    if index is None:
        return plan
    stored = config_from_json(index["config"])
    diffs = _differences(stored.identity(), cfg.identity())
    if diffs:
        raise ConfigError(
            f"store {path} holds an experiment with a different config ("
            + "; ".join(diffs[:5])
            + "); write to a new -o path, or delete the store to start over"
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
) -> TrainSummary:
    """Train every planned run of `cfg` that `path` does not hold yet; return what happened.

    `extra_attrs` go into the index's attributes before any run trains (a preset's name and
    claims, so their thresholds are on record before the result).
    """
    path = Path(path)
    options = options or RuntimeOptions()
    device = resolve_device(options.device)
    index = store.read_index(path) if path.exists() else None  # read once: plan and fingerprint
    plan = _merge_plan(path, cfg, index)
    ds = load_dataset(cfg.data, data_dir=options.data_dir, offline=options.offline)
    _check_fingerprint(path, ds, index)
    kept = {k: index[k] for k in ("preset", "claims") if index and k in index}  # on resume
    attrs = _index_attrs(ds) | kept | (extra_attrs or {})
    store.write_index(path, config_json=cfg.to_json(), planned=plan, attrs=attrs)
    stale = store.remove_stale_temporaries(path)
    if stale:
        on_event(Event("note", f"removed {len(stale)} partial run file(s) of an interrupted run"))
    done = set(store.completed_runs(path, plan))
    summary = TrainSummary(skipped=[r for r in planned_runs(cfg) if r in done])
    todo = [r for r in planned_runs(cfg) if r not in done]
    on_event(
        Event(
            "plan",
            f"{len(todo)} of {len(planned_runs(cfg))} runs to train on {device} ({ds.title})",
            done=len(done),
            total=len(plan),
        )
    )
    if options.batched and todo and (problem := batching_problem(cfg, ds)):
        on_event(
            Event(
                "note",
                f"model {cfg.model.name!r} cannot be batched under vmap "
                f"({problem}); training the runs one at a time instead",
            )
        )
        options = dataclasses.replace(options, batched=False)
    session = _Session(cfg, ds, path, plan, attrs, options, device, on_event, summary)
    for mode in dict.fromkeys(r.rsplit("-", 1)[0] for r in todo):
        indices = [int(r.rsplit("-", 1)[1]) for r in todo if r.startswith(mode + "-")]
        _train_mode(session, mode, indices)
    return summary


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


def _train_mode(s: _Session, mode: str, indices: list[int]) -> None:
    cfg = s.cfg
    tset = build_training_set(
        s.ds, mode, copies=cfg.train.copies, noise=cfg.train.overfit_noise, seed=cfg.data.seed
    )
    total = make_schedule(cfg, len(tset.x)).total_steps
    for group in _groups(indices, s.options):
        ids = ", ".join(f"{mode}-{k:03d}" for k in group)
        s.on_event(Event("group", f"{ids} ({len(tset.x)} examples)", total=total))

        def on_steps(step: int, _ids: str = ids) -> None:
            s.on_event(Event("steps", _ids, done=step, total=total))

        records = train_group(
            cfg,
            s.ds,
            tset,
            group,
            device=s.device,
            batched=s.options.batched and len(group) > 1,
            budget=s.options.memory_budget,
            on_steps=on_steps,
        )
        for rec in records:
            store.write_run(s.path, rec, loss_units=loss_units(rec.attrs["loss"]))
            s.summary.trained.append(rec.run_id)
            if rec.status == "diverged":
                s.summary.diverged.append(rec.run_id)
        store.write_index(s.path, config_json=cfg.to_json(), planned=s.plan, attrs=s.attrs)
        for rec in records:
            s.on_event(Event("run", rec.run_id, run=store.run_summary(s.path, rec.run_id)))


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
