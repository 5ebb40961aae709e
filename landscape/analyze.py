"""`landscape analyze` as a library call: measures of a train store into an analysis store.

Each measure is registered with the keys it computes (a run, a pair of runs) and a pure compute
function. A result whose stored parameters equal the requested ones is kept; anything missing
or computed with other parameters is (re)computed. Every result has its own seed, derived from
the analysis seed, the measure and the key, so it does not depend on what else is computed.
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

import h5py
import numpy as np
import torch

from landscape import analysis_store as astore
from landscape._version import __version__
from landscape.analysis_store import Array, Result
from landscape.errors import ConfigError
from landscape.executor import Executor
from landscape.runs import Experiment, StoredRun, file_checksum
from landscape.summary import summarize
from landscape.train import Event, resolve_device


@dataclass(frozen=True)
class AnalysisConfig:
    measures: tuple[str, ...] = ()  # empty: every registered measure
    runs: str = (
        "first"  # expensive per-run measures (surfaces): "first" (k = 0 of each mode) | "all"
    )
    seed: int = 0  # every result's generator derives from it, the measure and the key
    grid: int = 51  # 2D surface: points per axis (odd, so the centre is on the grid)
    span: float = 1.0  # 2D surface and 1D slices: coordinates in [-span, span]
    line_points: int = 51  # 1D slices along random directions: points (odd)
    directions: int = 3  # 1D slices: independent direction draws (mean and spread stored)
    alpha_points: int = 41  # interpolation: points from alpha_min to alpha_max (0 and 1 included)
    alpha_min: float = -0.5
    alpha_max: float = 1.5
    top_k: int = 5  # Hessian: top eigenvalues by Lanczos
    trace_samples: int = 100  # Hessian trace: Hutchinson samples
    ignore: str = "biasbn"  # filter-normalized directions: zero biases and norm params | none
    recipes: tuple[str, ...] = ("sgd", "adam-full")  # restarts from every overfit point
    trajectory_k: int = 1  # top eigenvalues at every checkpoint (curvature over training)
    epsilon: float = 1e-3  # Keskar et al.'s box size: |delta_i| <= epsilon * (|theta_i| + 1)
    radii: tuple[float, ...] = (0.1, 0.25, 0.5)  # perturbation sharpness: filter-normalized radii
    # BatchNorm statistics at each evaluated point: auto (recalibrate when the model has
    # BatchNorm) | recalibrate (re-estimated at the point) | stored (the run's) | batch (each
    # batch's own); models without BatchNorm record "none"
    bn: str = "auto"
    bn_samples: int = 2048  # recalibrate: training inputs (evenly spaced) to estimate them on
    prediction_resolution: int = 128  # ring: the predicted image is drawn at this many pixels

    def parameters(self, measure: str) -> dict:
        """The settings a measure's result depends on (stored with it)."""
        keys = MEASURE_PARAMETERS.get(measure, ())
        if measure not in ("distance", "pair_distance"):  # every measure that evaluates the net
            keys = (*keys, "bn") + (("bn_samples",) if self.bn == "recalibrate" else ())
        d = dataclasses.asdict(self)
        return {k: d[k] for k in keys} | {"seed": self.seed}


MEASURE_PARAMETERS: dict[str, tuple[str, ...]] = {
    "distance": (),
    "pair_distance": (),
    "gradient": (),
    "interpolation": ("alpha_points", "alpha_min", "alpha_max"),
    "surface1d": ("line_points", "span", "directions", "ignore"),
    "surface2d": ("grid", "span", "ignore"),
    "surface_pca": ("grid",),
    "hessian": ("top_k",),
    "trace": ("trace_samples",),
    "restart": ("alpha_points", "alpha_min", "alpha_max"),
    "curvature_trajectory": ("trajectory_k", "runs"),
    "epsilon_sharpness": ("epsilon",),
    "perturbation": ("radii", "directions", "ignore"),
    "prediction": ("prediction_resolution",),
}


@dataclass(frozen=True)
class AnalyzeOptions:
    device: str = "auto"
    data_dir: Path | None = None
    offline: bool = False
    memory_budget: int | None = None  # bytes of activations per chunk; None: see default_budget


@dataclass
class AnalyzeSummary:
    computed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass
class Context:
    """What a compute function may use besides the experiment: seed and partial results."""

    exp: Experiment
    cfg: AnalysisConfig
    generator: torch.Generator
    save_part: Callable[..., None]
    load_parts: Callable[[], dict[str, dict[str, np.ndarray]]]
    budget: int


@dataclass(frozen=True)
class Measure:
    name: str
    description: str
    keys: Callable[[Experiment, AnalysisConfig], list[str]]
    compute: Callable[[Context, str], Result]


REGISTRY: dict[str, Measure] = {}


def register(measure: Measure) -> Measure:
    REGISTRY[measure.name] = measure
    return measure


def measure_names() -> list[str]:
    _load_measures()
    return list(REGISTRY)


def _load_measures() -> None:
    from landscape import analysis_measures  # noqa: F401  (registers on import)


def default_budget(device: torch.device) -> int:
    """Activation memory for one evaluation chunk: half the free GPU memory, or a tenth of the
    machine's RAM capped at 2 GiB on a CPU (beyond that, bigger chunks stop paying)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0] * 0.5)
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return int(min(ram * 0.1, 2 * 2**30))


def result_seed(seed: int, measure: str, key: str) -> int:
    parts = [seed, zlib.crc32(measure.encode()), zlib.crc32(key.encode())]
    return int(np.random.SeedSequence(parts).generate_state(1)[0])


def _check(cfg: AnalysisConfig) -> None:
    unknown = [m for m in cfg.measures if m not in REGISTRY]
    if unknown:
        raise ConfigError(f"--only: unknown measure(s) {unknown}; known: {', '.join(REGISTRY)}")
    for name in ("grid", "line_points", "alpha_points"):
        value = getattr(cfg, name)
        if value < 3 or (name != "alpha_points" and value % 2 == 0):
            raise ConfigError(
                f"analysis setting {name!r}: expected an odd number >= 3 so that the centre "
                f"point lies on the grid, found {value}; use e.g. {max(3, value + 1)}"
            )
    from landscape.measures.restart import RECIPES

    if unknown_recipes := [r for r in cfg.recipes if r not in RECIPES]:
        raise ConfigError(f"--recipes: unknown {unknown_recipes}; known: {', '.join(RECIPES)}")
    if cfg.runs not in ("first", "all"):
        raise ConfigError(f"--runs {cfg.runs!r}: allowed: first, all")
    if cfg.ignore not in ("biasbn", "none"):
        raise ConfigError(f"--ignore {cfg.ignore!r}: allowed: biasbn, none")
    if cfg.bn not in BN_CHOICES:
        raise ConfigError(f"--bn {cfg.bn!r}: allowed: {', '.join(BN_CHOICES)}")
    if cfg.bn_samples < 2:
        raise ConfigError(f"--bn-samples {cfg.bn_samples}: expected at least 2 training inputs")
    if cfg.span <= 0 or cfg.top_k < 1 or cfg.trace_samples < 2 or cfg.directions < 1:
        raise ConfigError("span must be > 0, top_k >= 1, trace_samples >= 2, directions >= 1")


BN_CHOICES = ("auto", "recalibrate", "stored", "batch", "none")


def resolve_bn(cfg: AnalysisConfig, exp: Experiment) -> AnalysisConfig:
    """The BatchNorm mode actually used: 'none' without BatchNorm, 'recalibrate' for auto."""
    if not exp.has_batchnorm:
        bn = "none"
    elif cfg.bn in ("auto", "none"):
        bn = "recalibrate"
    else:
        bn = cfg.bn
    return dataclasses.replace(cfg, bn=bn)


def _up_to_date(out: Path, measure: str, key: str, params: dict) -> bool:
    path = astore.result_file(out, measure, key)
    if not path.exists():
        return False
    try:
        with h5py.File(path, "r") as f:
            return json.loads(f.attrs["parameters"]) == params
    except (OSError, KeyError):
        return False


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

    `executor` (landscape.executor) computes the results elsewhere, e.g. on Dask workers that
    share this filesystem; each writes its own result file and the index is rewritten here.
    """
    _load_measures()
    cfg, options = cfg or AnalysisConfig(), options or AnalyzeOptions()
    _check(cfg)
    device = resolve_device(options.device)
    budget = options.memory_budget or default_budget(device)
    exp = Experiment(
        Path(train_path), data_dir=options.data_dir, offline=options.offline, device=device
    )
    cfg = resolve_bn(cfg, exp)
    out = Path(out).resolve()
    attrs = {
        "train_store": str(Path(train_path).resolve()),
        "train_store_sha256": file_checksum(Path(train_path)),
        "config": json.dumps(dataclasses.asdict(cfg)),
        "landscape_version": __version__,
    }
    astore.write_index(out, attrs=attrs)
    summary = AnalyzeSummary()
    todo = _plan(exp, cfg, out, summary)
    on_event(
        Event(
            "plan",
            f"{len(todo)} results to compute, {len(summary.skipped)} up to date",
            total=len(todo),
        )
    )
    sha = attrs["train_store_sha256"]
    tasks = [ResultTask(Path(train_path), sha, out, cfg, options, m, k, budget) for m, k in todo]
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
            Event("run", f"{task.measure} {task.key}: {headline}", done=i + 1, total=len(todo))
        )
    attrs["summary"] = json.dumps(summarize(out))
    astore.write_index(out, attrs=attrs)
    return summary


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


def _compute_and_write(exp: Experiment, task: ResultTask) -> str:
    """Compute one result and write its file (atomically); return its headline."""
    parts = parts_of(task)
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
    }
    # through JSON once, as stored: a tuple setting must compare equal to the list read back
    return astore.Parts(task.out, task.measure, task.key, json.loads(json.dumps(stamp)))


@functools.lru_cache(maxsize=2)
def _worker_experiment(path: Path, sha256: str, options: AnalyzeOptions) -> Experiment:
    device = resolve_device(options.device)
    return Experiment(path, data_dir=options.data_dir, offline=options.offline, device=device)


def compute_result_task(task: ResultTask) -> str:
    """A worker's side: load the stores once per process, compute and write one result."""
    _load_measures()
    exp = _worker_experiment(task.train_path.resolve(), task.train_sha256, task.options)
    return _compute_and_write(exp, task)


def _plan(exp: Experiment, cfg: AnalysisConfig, out: Path, summary: AnalyzeSummary) -> list:
    todo = []
    for name in cfg.measures or tuple(REGISTRY):
        params = cfg.parameters(name)
        for key in REGISTRY[name].keys(exp, cfg):
            if _up_to_date(out, name, key, params):
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
    )
    started = time.perf_counter()
    result = REGISTRY[measure].compute(ctx, key)
    _flag(exp, key, result)
    result.attrs.update(
        {
            "parameters": json.dumps(cfg.parameters(measure)),
            "seed": seed,
            "seconds": time.perf_counter() - started,
            "train_store": str(exp.path),
            "landscape_version": __version__,
            "torch_version": torch.__version__,
            "device": str(exp.device),
        }
    )
    return result


# -- key helpers shared by the measures -------------------------------------------------


def all_runs(exp: Experiment, cfg: AnalysisConfig) -> list[str]:
    """Every stored run, diverged ones included: their results are flagged, never dropped."""
    return list(exp.run_ids)


def runs_of_key(exp: Experiment, key: str) -> list[str]:
    """The runs a result key involves: a run id in it, or both runs of seed k ('pair-k', '.k')."""
    tokens = key.split(".")
    named = [r for r in exp.run_ids if r in tokens]
    if named:
        return named
    k = key.replace("-", ".").rsplit(".", 1)[-1]
    return [r for r in exp.run_ids if r.endswith(f"-{k}")]


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


def selected_runs(exp: Experiment, cfg: AnalysisConfig) -> list[str]:
    """Runs for the expensive measures: k = 0 of each mode, or all."""
    runs = all_runs(exp, cfg)
    if cfg.runs == "all":
        return runs
    first: dict[str, str] = {}
    for r in runs:
        first.setdefault(exp.run(r).mode, r)
    return list(first.values())


def seed_pairs(exp: Experiment, cfg: AnalysisConfig) -> list[str]:
    """Keys 'pair-<k>' for every k with a complete normal and overfit run."""
    runs = set(all_runs(exp, cfg))
    ks = sorted({int(r.rsplit("-", 1)[1]) for r in runs})
    return [f"pair-{k:03d}" for k in ks if f"normal-{k:03d}" in runs and f"overfit-{k:03d}" in runs]


def pair_runs(exp: Experiment, key: str) -> tuple[StoredRun, StoredRun]:
    k = key.rsplit("-", 1)[1]
    return exp.run(f"normal-{k}"), exp.run(f"overfit-{k}")


def as_array(
    t: torch.Tensor | np.ndarray | float, long_name: str, units: str, dims: tuple[str, ...] = ()
) -> Array:
    values = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    return Array(values, long_name, units, dims)
