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
    # a result written before inputs were recorded has none: computed afresh, never trusted
    recorded = attrs.get("inputs")
    return json.loads(attrs["parameters"]) == params and recorded == _inputs_text(inputs), None


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
                            m, k, budget, inputs_of(exp, k)) for m, k in todo]  # fmt: skip
        _compute_locked(exp, out, attrs, tasks, summary, on_event, executor)
    return summary


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
    _say_plan(summary, tasks, on_event)
    for task in tasks:  # before any worker starts: a stale partial result is said, then dropped
        if note := parts_of(task).reconcile():
            on_event(Event("note", note))
    if executor is not None and executor.remote:
        done = executor.map_unordered(compute_result_task, tasks)
    else:  # here, reusing the loaded experiment
        done = ((t, _compute_and_write(exp, t)) for t in tasks)
    for i, (task, headline) in enumerate(done):
        astore.write_index(out, attrs=attrs)
        summary.computed.append(f"{task.measure}/{task.key}")
        on_event(
            Event("run", f"{task.measure} {task.key}: {headline}", done=i + 1, total=len(tasks))
        )
    astore.write_index(out, attrs=attrs | {"summary": json.dumps(summarize(out))})


@dataclass(frozen=True)
class ResultTask:
    """One (measure, key) result for a worker: everything it needs to compute and write it."""

    train_path: Path
    train_sha256: str  # a long-lived worker reloads a train store that changed since
    out: Path
    cfg: AnalysisConfig  # with --bn resolved
    options: AnalyzeOptions
    measure: str
    key: str
    budget: int
    inputs: dict[str, str]  # {run id: sha256 of the run file} as planned


def _compute_and_write(exp: Experiment, task: ResultTask) -> str:
    """Compute one result and write its file (atomically); return its headline."""
    parts = parts_of(task)
    exp.forget_changed(task.inputs)
    result = _compute(exp, task.cfg, parts, task.measure, task.key, task.budget)
    astore.write_result(task.out, task.measure, task.key, result)
    parts.clear()
    return str(result.attrs.get("headline", ""))


def parts_of(task: ResultTask) -> astore.Parts:
    """The partial result of `task`, keyed by everything that determines it."""
    stamp = {
        "measure": task.measure,
        "key": task.key,
        "parameters": task.cfg.parameters(task.measure),
        "train_store_sha256": task.train_sha256,
        "inputs": task.inputs,
    }
    # through JSON once, as stored: a tuple setting must compare equal to the list read back
    return astore.Parts(task.out, task.measure, task.key, json.loads(json.dumps(stamp)))


@functools.lru_cache(maxsize=2)
def _worker_experiment(path: Path, sha256: str, options: AnalyzeOptions) -> Experiment:
    device = resolve_device(options.device)
    return Experiment(path, data_dir=options.data_dir, offline=options.offline, device=device)


def compute_result_task(task: ResultTask) -> str:
    """A worker's side: load the stores once per process, compute and write one result."""
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
    exp: Experiment, cfg: AnalysisConfig, parts: astore.Parts, measure: str, key: str, budget: int
) -> Result:
    seed = result_seed(cfg.seed, measure, key)
    ctx = Context(
        exp=exp,
        cfg=cfg,
        generator=torch.Generator().manual_seed(seed),
        save_part=parts.save,
        load_parts=parts.load,
        budget=budget,
        loss_units=loss_units(loss_name(exp.cfg, exp.dataset)),
    )
    started = time.perf_counter()
    values, attrs = spec(measure).compute(ctx, key)
    result = spec(measure).result(ctx, values, attrs)
    _flag(exp, key, result)
    result.attrs.update(
        {
            "parameters": json.dumps(cfg.parameters(measure)),
            "inputs": _inputs_text(inputs_of(exp, key)),
            "seed": seed,
            "seconds": time.perf_counter() - started,
            "train_store": str(exp.path),
            "landscape_version": __version__,
            "torch_version": torch.__version__,
            "device": str(exp.device),
        }
    )
    return result


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
