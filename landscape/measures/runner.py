"""`landscape analyze` as a library call: the runner that turns specs into stored results.

For every selected measure (`landscape.measures.registry`) and each of its keys: skip what is
stored with the same parameters, compute the rest, write each result atomically. Every result
has its own seed, derived from the analysis seed, the measure and the key, so it does not depend
on what else is computed. The specs themselves are recorded in the store's index, so the summary
and the report read what each measure declared without importing it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from landscape._version import __version__
from landscape.core.devices import cuda_free_bytes, resolve_device
from landscape.core.events import Event
from landscape.core.executor import Executor
from landscape.core.losses import loss_name, loss_units
from landscape.errors import StoreError
from landscape.measures.common import runs_of_key
from landscape.measures.registry import SPECS, names, spec
from landscape.measures.runs import Experiment, file_checksum
from landscape.measures.settings import BN_CHOICES, AnalysisConfig
from landscape.measures.spec import Context
from landscape.store import analysis_read as aread
from landscape.store import analysis_store as astore
from landscape.store.analysis_store import Result
from landscape.store.lock import store_lock
from landscape.store.summary import summarize

__all__ = ["BN_CHOICES", "AnalysisConfig", "AnalyzeOptions", "analyze", "measure_names"]


@dataclass(frozen=True)
class AnalyzeOptions:
    device: str = "auto"
    data_dir: Path | None = None
    offline: bool = False
    memory_budget: int | None = None  # bytes of activations per chunk; None: see default_budget
    wait: bool = False  # another process writes the analysis store: wait instead of failing


@dataclass
class AnalyzeSummary:
    computed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # up to date
    # "measure/key" -> why it cannot be computed on this store (e.g. an import without init)
    not_applicable: dict[str, str] = field(default_factory=dict)


def measure_names() -> list[str]:
    return names()


def default_budget(device: torch.device) -> int:
    """Activation memory for one evaluation chunk: half the free GPU memory, or a tenth of the
    machine's RAM capped at 2 GiB on a CPU (beyond that, bigger chunks stop paying)."""
    if device.type == "cuda":
        # cuda_free_bytes counts torch's cached, unused blocks as free: after training in the
        # same process (`landscape run`) the driver alone reports them taken
        return int(cuda_free_bytes(device) * 0.5)
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return int(min(ram * 0.1, 2 * 2**30))


def result_seed(seed: int, measure: str, key: str) -> int:
    parts = [seed, zlib.crc32(measure.encode()), zlib.crc32(key.encode())]
    return int(np.random.SeedSequence(parts).generate_state(1)[0])


def resolve_bn(cfg: AnalysisConfig, exp: Experiment) -> AnalysisConfig:
    """The BatchNorm mode actually used: 'none' without BatchNorm, 'recalibrate' for auto."""
    if not exp.has_batchnorm:
        bn = "none"
    elif cfg.bn in ("auto", "none"):
        bn = "recalibrate"
    else:
        bn = cfg.bn
    return dataclasses.replace(cfg, bn=bn)


def _up_to_date(
    out: Path, measure: str, key: str, params: dict, inputs: dict[str, str]
) -> tuple[bool, str | None]:
    """(whether the stored result has these parameters and was computed from run files with
    these checksums, the problem of a damaged one)."""
    if not os.path.lexists(astore.result_file(out, measure, key)):
        return False, None
    try:
        attrs = aread.result_attrs(out, measure, key, spec=spec(measure).describe())
    except StoreError as e:
        return False, str(e)
    # a result written before inputs were recorded has none: computed afresh, never trusted.
    # Settings compared as stored: JSON turns a tuple setting (perturbation's radii) into a
    # list, and a tuple never equals a list, so such results were recomputed by every call
    recorded = attrs.get("inputs")
    same = json.loads(attrs["parameters"]) == json.loads(json.dumps(params))
    return same and recorded == _inputs_text(inputs), None


def inputs_of(exp: Experiment, key: str) -> dict[str, str]:
    """{run id: sha256 of its file} for the runs result `key` is computed from."""
    return {r: exp.checksum(r) for r in runs_of_key(exp, key) or exp.run_ids}


def _inputs_text(inputs: dict[str, str]) -> str:
    return json.dumps(inputs, sort_keys=True)


def analyze(
    train_path: Path,
    out: Path,
    cfg: AnalysisConfig | None = None,
    *,
    options: AnalyzeOptions | None = None,
    on_event: Callable[[Event], None] = lambda e: None,
    executor: Executor | None = None,
) -> AnalyzeSummary:
    """Compute every selected measure that `out` does not hold yet (with these parameters).

    `executor` (landscape.core.executor) computes the results elsewhere, e.g. on Dask workers that
    share this filesystem; each writes its own result file and the index is rewritten here.
    """
    cfg, options = cfg or AnalysisConfig(), options or AnalyzeOptions()
    cfg.check()
    device = resolve_device(options.device)
    budget = options.memory_budget or default_budget(device)
    exp = Experiment(
        Path(train_path), data_dir=options.data_dir, offline=options.offline, device=device
    )
    for run_id, problem in exp.damaged.items():
        on_event(Event("note", f"run {run_id} is damaged and left out of this analysis: {problem}"))
    cfg = resolve_bn(cfg, exp)
    out = Path(out).resolve()
    aread.check_output(out, Path(train_path))
    attrs = {
        "train_store": str(Path(train_path).resolve()),
        "train_store_sha256": file_checksum(Path(train_path)),
        "config": json.dumps(dataclasses.asdict(cfg)),
        "measures": json.dumps({m.name: m.describe() for m in SPECS}),
        "landscape_version": __version__,
    }
    reasons = skip_reasons(exp, cfg)  # every measure's, so the report can say why one is absent
    attrs["skipped"] = json.dumps(reasons)
    summary = AnalyzeSummary()
    if not _plan(exp, cfg, out, summary, reasons, lambda e: None) and out.exists():
        final = attrs | {"summary": json.dumps(summarize(out))}
        if astore.index_current(out, attrs=final):  # nothing to write: no lock needed
            _say_plan(summary, [], on_event)
            return summary
    note = functools.partial(_note, on_event)
    with store_lock(out, command="landscape analyze", wait=options.wait, on_note=note):
        summary = AnalyzeSummary()  # planned again: another analyze may have computed some
        todo = _plan(exp, cfg, out, summary, reasons, on_event)
        tasks = [ResultTask(Path(train_path), attrs["train_store_sha256"], out, cfg, options,
                            m, keys, budget, {k: inputs_of(exp, k) for k in keys})
                 for m, keys in batches(todo)]  # fmt: skip
        _compute_locked(exp, out, attrs, tasks, summary, on_event, executor)
    return summary


def batches(todo: list[tuple[str, str]]) -> list[tuple[str, tuple[str, ...]]]:
    """(measure, keys) to compute together: a measure with `compute_batch` gets one batch per
    `batch_of(key)` (e.g. per restart recipe); every other result is a batch of one."""
    groups: dict[tuple[str, str], list[str]] = {}
    for measure, key in todo:
        m = spec(measure)
        group = m.batch_of(key) if m.compute_batch is not None else "\0" + key
        groups.setdefault((measure, group), []).append(key)
    return [(measure, tuple(keys)) for (measure, _), keys in groups.items()]


def _note(on_event: Callable[[Event], None], text: str) -> None:
    on_event(Event("note", text))


def _say_plan(summary: AnalyzeSummary, todo: list, on_event: Callable[[Event], None]) -> None:
    for name_key, reason in summary.not_applicable.items():
        on_event(Event("note", f"skipped {name_key}: {reason}"))
    text = f"{len(todo)} results to compute, {len(summary.skipped)} up to date"
    on_event(Event("plan", text, total=len(todo)))


def _compute_locked(
    exp: Experiment,
    out: Path,
    attrs: dict[str, Any],
    tasks: list[ResultTask],
    summary: AnalyzeSummary,
    on_event: Callable[[Event], None],
    executor: Executor | None,
) -> None:
    """The writing part of `analyze`, under the analysis store's lock: the index, each result
    (here or on the executor's workers), then the index with the summary."""
    astore.write_index(out, attrs=attrs)
    total = sum(len(t.keys) for t in tasks)
    _say_plan(summary, [k for t in tasks for k in t.keys], on_event)
    for task in tasks:  # before any worker starts: a stale partial result is said, then dropped
        for key in task.keys:
            if note := parts_of(task, key).reconcile():
                on_event(Event("note", note))
    if executor is not None and executor.remote:
        done = executor.map_unordered(compute_result_task, tasks)
    else:  # here, reusing the loaded experiment
        done = ((t, _compute_and_write(exp, t)) for t in tasks)
    for task, headlines in done:
        astore.write_index(out, attrs=attrs)
        for key, headline in headlines:
            summary.computed.append(f"{task.measure}/{key}")
            n = len(summary.computed)
            on_event(Event("run", f"{task.measure} {key}: {headline}", done=n, total=total))
    astore.write_index(out, attrs=attrs | {"summary": json.dumps(summarize(out))})


@dataclass(frozen=True)
class ResultTask:
    """The results of one measure for a worker to compute together (one key, or a batch of
    `batches`): everything it needs to compute and write them."""

    train_path: Path
    train_sha256: str  # a long-lived worker reloads a train store that changed since
    out: Path
    cfg: AnalysisConfig  # with --bn resolved
    options: AnalyzeOptions
    measure: str
    keys: tuple[str, ...]
    budget: int
    inputs: dict[str, dict[str, str]]  # key -> {run id: sha256 of the run file} as planned


def _compute_and_write(exp: Experiment, task: ResultTask) -> list[tuple[str, str]]:
    """Compute the task's results and write their files (atomically); return each key with
    its headline."""
    for key in task.keys:
        exp.forget_changed(task.inputs[key])
    parts = {key: parts_of(task, key) for key in task.keys}
    results = _compute(exp, task.cfg, parts, task.measure, task.budget)
    done = []
    for key, result in zip(task.keys, results, strict=True):
        astore.write_result(task.out, task.measure, key, result)
        parts[key].clear()
        done.append((key, str(result.attrs.get("headline", ""))))
    return done


def parts_of(task: ResultTask, key: str) -> astore.Parts:
    """The partial result of `key` in `task`, keyed by everything that determines it."""
    stamp = {
        "measure": task.measure,
        "key": key,
        "parameters": task.cfg.parameters(task.measure),
        "train_store_sha256": task.train_sha256,
        "inputs": task.inputs[key],
    }
    # through JSON once, as stored: a tuple setting must compare equal to the list read back
    return astore.Parts(task.out, task.measure, key, json.loads(json.dumps(stamp)))


@functools.lru_cache(maxsize=2)
def _worker_experiment(path: Path, sha256: str, options: AnalyzeOptions) -> Experiment:
    device = resolve_device(options.device)
    return Experiment(path, data_dir=options.data_dir, offline=options.offline, device=device)


def compute_result_task(task: ResultTask) -> list[tuple[str, str]]:
    """A worker's side: load the stores once per process, compute and write the results."""
    exp = _worker_experiment(task.train_path.resolve(), task.train_sha256, task.options)
    return _compute_and_write(exp, task)


def skip_reasons(exp: Experiment, cfg: AnalysisConfig) -> dict[str, dict[str, str]]:
    """{measure: {key: reason}} for every key of every measure that this store cannot give
    (its spec's `skip_reason`); {} for a store `landscape train` wrote."""
    out: dict[str, dict[str, str]] = {}
    for m in SPECS:
        for key in m.keys(exp, cfg):
            if reason := m.skip_reason(exp, key):
                out.setdefault(m.name, {})[key] = reason
    return out


def _plan(
    exp: Experiment,
    cfg: AnalysisConfig,
    out: Path,
    summary: AnalyzeSummary,
    reasons: dict[str, dict[str, str]],
    on_event: Callable[[Event], None],
) -> list[tuple[str, str]]:
    """(measure, key) of every result to compute; a damaged stored result is said, and redone;
    a key this store cannot give (`reasons`) is recorded as not applicable."""
    todo = []
    for name in cfg.measures or names():
        params = cfg.parameters(name)
        for key in spec(name).keys(exp, cfg):
            if key in reasons.get(name, {}):
                summary.not_applicable[f"{name}/{key}"] = reasons[name][key]
                continue
            current, problem = _up_to_date(out, name, key, params, inputs_of(exp, key))
            if problem:
                on_event(Event("note", f"{name} {key}: damaged, computing it afresh ({problem})"))
            if current:
                summary.skipped.append(f"{name}/{key}")
            else:
                todo.append((name, key))
    return todo


def _compute(
    exp: Experiment,
    cfg: AnalysisConfig,
    parts: dict[str, astore.Parts],
    measure: str,
    budget: int,
) -> list[Result]:
    """The results of `measure` for the keys of `parts`: each alone (`compute`), or, for more
    than one, together (`compute_batch`); every key has its own seed and kept parts."""
    m, keys = spec(measure), list(parts)
    seeds = [result_seed(cfg.seed, measure, key) for key in keys]
    units = loss_units(loss_name(exp.cfg, exp.dataset))
    ctxs = [
        Context(exp=exp, cfg=cfg, generator=torch.Generator().manual_seed(seed),
                save_part=parts[key].save, load_parts=parts[key].load, budget=budget,
                loss_units=units)
        for key, seed in zip(keys, seeds, strict=True)
    ]  # fmt: skip
    started = time.perf_counter()
    if len(keys) > 1 and m.compute_batch is not None:
        computed = m.compute_batch(ctxs, keys)
    else:
        computed = [m.compute(ctx, key) for ctx, key in zip(ctxs, keys, strict=True)]
    seconds = (time.perf_counter() - started) / len(keys)
    results = []
    for ctx, key, seed, (values, attrs) in zip(ctxs, keys, seeds, computed, strict=True):
        result = m.result(ctx, values, attrs)
        _flag(exp, key, result)
        result.attrs.update(
            {
                "parameters": json.dumps(cfg.parameters(measure)),
                "inputs": _inputs_text(inputs_of(exp, key)),
                "seed": seed,
                "seconds": seconds,  # a batch's time shared evenly between its results
                "batch_size": len(keys),
                "train_store": str(exp.path),
                "landscape_version": __version__,
                "torch_version": torch.__version__,
                "device": str(exp.device),
            }
        )
        results.append(result)
    return results


def _flag(exp: Experiment, key: str, result: Result) -> None:
    """Mark a result that involves a diverged run, or holds a non-finite value (never hidden)."""
    diverged = [r for r in runs_of_key(exp, key) if exp.run(r).status == "diverged"]
    result.attrs["diverged_runs"] = json.dumps(diverged)
    result.attrs["diverged"] = bool(diverged)
    result.attrs["finite"] = all(
        bool(np.isfinite(a.values).all())
        for a in result.arrays.values()
        if np.issubdtype(np.asarray(a.values).dtype, np.floating)
    )
