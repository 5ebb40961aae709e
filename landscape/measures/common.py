"""What the measures' adapters share: result keys, stored points, objectives, a 1D line.

A result key names what one result is about: a run id (`normal-000`), a seed pair
(`pair-000`), a path (`init-final.normal-000`, `normal-overfit.000`) or a recipe and a run
(`sgd.overfit-000`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from landscape.core.flat import BN_MODES
from landscape.core.objective import Objective
from landscape.measures.slices import barrier_height, error_barrier, interpolate, largest_rise
from landscape.measures.spec import LOSS_UNITS, Context, Stored

if TYPE_CHECKING:
    from landscape.measures.runs import Experiment, StoredRun
    from landscape.measures.settings import AnalysisConfig

SPLITS = ("train", "test")


# -- keys --------------------------------------------------------------------------------------


def all_runs(exp: Experiment, cfg: AnalysisConfig) -> list[str]:
    """Every stored run, diverged ones included: their results are flagged, never dropped."""
    return list(exp.run_ids)


def selected_runs(exp: Experiment, cfg: AnalysisConfig) -> list[str]:
    """Runs for the expensive measures: k = 0 of each mode, or all (setting `runs`)."""
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


def runs_of_key(exp: Experiment, key: str) -> list[str]:
    """The runs a result key involves: a run id in it, or both runs of seed k ('pair-k', '.k')."""
    tokens = key.split(".")
    named = [r for r in exp.run_ids if r in tokens]
    if named:
        return named
    k = key.replace("-", ".").rsplit(".", 1)[-1]
    return [r for r in exp.run_ids if r.endswith(f"-{k}")]


# -- points and objectives ---------------------------------------------------------------------


def trajectory(ctx: Context, run_id: str) -> tuple[np.ndarray, torch.Tensor, torch.Tensor | None]:
    """Steps (n+1,), points (n+1, P) and BatchNorm buffers (or None): init, then checkpoints.

    A run imported without an initial point has only its checkpoints (n,): the final point
    and those imported with --checkpoint.
    """
    run = ctx.exp.run(run_id)
    if not run.has_init:
        buffers = run.checkpoint_buffers if run.checkpoint_buffers.shape[-1] else None
        return np.asarray(run.checkpoint_steps), run.checkpoints, buffers
    steps = np.concatenate([[0], run.checkpoint_steps])
    points = torch.cat([run.init.unsqueeze(0), run.checkpoints])
    buffers = None
    if run.init_buffers.numel():
        buffers = torch.cat([run.init_buffers.unsqueeze(0), run.checkpoint_buffers])
    return steps, points, buffers


# -- what an imported run may lack (see MeasureSpec.skip_reason) -------------------------------


def needs_init(exp: Experiment, key: str) -> str:
    """Why `key` needs an initial point that some of its runs lack ('' if all have one)."""
    missing = [r for r in runs_of_key(exp, key) if not exp.run(r).has_init]
    if not missing:
        return ""
    return (
        f"needs the initial point of {', '.join(missing)}; found none (imported without "
        "--init); import again with --init INIT.safetensors"
    )


def needs_path(n: int) -> Callable[[Experiment, str], str]:
    """A skip_reason: every run of the key needs `n` points along its path (init, checkpoints,
    final)."""

    def reason(exp: Experiment, key: str) -> str:
        short = {r: path_points(exp.run(r)) for r in runs_of_key(exp, key)}
        short = {r: k for r, k in short.items() if k < n}
        if not short:
            return ""
        found = ", ".join(f"{k} for {r}" for r, k in short.items())
        return (
            f"needs {n} points along the run's path (initial, checkpoints, final); found "
            f"{found}; import again with --init and --checkpoint STEP=FILE"
        )

    return reason


def path_points(run: StoredRun) -> int:
    """Points of a run's path: the initial one (if stored) and the checkpoints (final included)."""
    return int(run.has_init) + len(run.checkpoints)


def objective(ctx: Context, split: str, buffers: torch.Tensor | None) -> Objective:
    """The loss on `split` with the BatchNorm statistics `ctx.cfg.bn` says (stored: `buffers`)."""
    b = buffers if buffers is not None and buffers.numel() else None
    bn = ctx.cfg.bn if ctx.cfg.bn in BN_MODES else "stored"
    return ctx.exp.objective(
        split, buffers=b, budget_bytes=ctx.budget, bn=bn, bn_samples=ctx.cfg.bn_samples
    )


def objectives(ctx: Context, buffers: torch.Tensor | None) -> dict[str, Objective]:
    return {s: objective(ctx, s, buffers) for s in SPLITS}


def step_array(what: str = "optimizer steps taken") -> Stored:
    return Stored("step", what, "steps", ("step",))


# -- a straight line between two points ----------------------------------------------------


def line_arrays(prefix: str = "") -> tuple[Stored, ...]:
    """What `line` stores: loss and accuracy per split along alpha."""
    return tuple(
        Stored(
            f"{prefix}{split}_{q}", f"{split} {what} on (1 - alpha) a + alpha b", unit, ("alpha",)
        )
        for split in SPLITS
        for q, what, unit in (("loss", "loss", LOSS_UNITS), ("acc", "accuracy", "fraction"))
    )


def line(
    objs: dict[str, Objective],
    a: torch.Tensor,
    b: torch.Tensor,
    alphas: torch.Tensor,
    prefix: str,
    values: dict[str, Any],
    attrs: dict[str, Any],
) -> None:
    """Loss and accuracy on (1 - alpha) a + alpha b per split, and `line_attrs` of each."""
    for split, obj in objs.items():
        s = interpolate(obj, a, b, alphas)
        values[f"{prefix}{split}_loss"] = s.loss
        values[f"{prefix}{split}_acc"] = s.acc
        attrs |= line_attrs(alphas, s.loss, s.acc, split)


def line_attrs(
    alphas: torch.Tensor, loss: torch.Tensor, acc: torch.Tensor, split: str
) -> dict[str, float]:
    """The numbers of one split's path over alpha in [0, 1], each under its paper's name:

    - `barrier_<split>_loss`: loss barrier (Entezari et al. 2022), the loss above the straight
      chord between the endpoint losses (`slices.barrier_height`), loss units;
    - `barrier_<split>_error`: error barrier (Frankle et al. 2020), the error (1 - accuracy)
      above the mean of the endpoint errors (`slices.error_barrier`), fraction; absent for
      regression (acc all NaN), so the summary reads it as not applicable;
    - `rise_<split>_loss`: largest loss rise (Lucas et al. 2021), max over a <= b of
      loss(b) - loss(a) (`slices.largest_rise`), loss units; 0 = monotone non-increasing.
    """
    out = {
        f"barrier_{split}_loss": barrier_height(alphas, loss),
        f"rise_{split}_loss": largest_rise(alphas, loss),
    }
    if not bool(torch.isnan(acc).all()):
        out[f"barrier_{split}_error"] = error_barrier(alphas, acc)
    return out
