"""The registered measures of `landscape analyze`: keys, computation, and what is stored.

Each `compute` is a thin adapter: it picks the stored points, calls the pure measure functions
in `landscape.measures`, and names the arrays (Li et al.'s names for surfaces).
"""

from __future__ import annotations

import numpy as np
import torch

from landscape.analysis_store import Result
from landscape.analyze import (
    Context,
    Measure,
    all_runs,
    as_array,
    pair_runs,
    register,
    seed_pairs,
)
from landscape.measures.distance import distance_from_init, pair_distance
from landscape.measures.gradient import gradient_norms

L2 = "L2 norm in parameter space"


def _loss_units(ctx: Context) -> str:
    return "nats" if ctx.exp.objective("test").loss_name == "cross_entropy" else "squared error"


def _points(ctx: Context, run_id: str) -> tuple[np.ndarray, torch.Tensor, torch.Tensor | None]:
    """Steps (n+1,), points (n+1, P) and BatchNorm buffers (or None): init, then checkpoints."""
    run = ctx.exp.run(run_id)
    steps = np.concatenate([[0], run.checkpoint_steps])
    points = torch.cat([run.init.unsqueeze(0), run.checkpoints])
    buffers = None
    if run.init_buffers.numel():
        buffers = torch.cat([run.init_buffers.unsqueeze(0), run.checkpoint_buffers])
    return steps, points, buffers


def _distance(ctx: Context, run_id: str) -> Result:
    run = ctx.exp.run(run_id)
    steps, points, _ = _points(ctx, run_id)
    d = distance_from_init(run.init, points, ctx.exp.layout)
    return Result(
        arrays={
            "step": as_array(steps, "optimizer steps taken", "steps", ("step",)),
            "l2": as_array(d.l2, "||theta - theta0||_2 over all parameters", L2, ("step",)),
            "frobenius_sum": as_array(
                d.frobenius_sum, "sum over tensors of ||theta_t - theta0_t||_F", L2, ("step",)
            ),
            "weight_norm_sum": as_array(
                d.weight_norm_sum,
                "sum over tensors of ||theta_t||_F (Merkulov & Oseledets' figures; not a distance)",
                L2,
                ("step",),
            ),
        },
        attrs={"run": run_id, "mode": run.mode, "headline": f"l2 {float(d.l2[-1]):.3f}"},
    )


def _pair_distance(ctx: Context, key: str) -> Result:
    normal, overfit = pair_runs(ctx.exp, key)
    l2, frob = pair_distance(normal.final, overfit.final, ctx.exp.layout)
    init_l2, _ = pair_distance(normal.init, overfit.init, ctx.exp.layout)
    return Result(
        arrays={
            "l2": as_array(l2, "||theta_normal - theta_overfit||_2 at the final points", L2),
            "frobenius_sum": as_array(frob, "sum over tensors of the Frobenius distance", L2),
            "init_l2": as_array(init_l2, "distance between the two initial points (0: shared)", L2),
        },
        attrs={"normal": normal.run_id, "overfit": overfit.run_id, "headline": f"l2 {l2:.3f}"},
    )


def _gradient(ctx: Context, run_id: str) -> Result:
    steps, points, buffers = _points(ctx, run_id)
    norms = {}
    for split in ("train", "test"):
        values = []
        for i, theta in enumerate(points):
            b = buffers[i] if buffers is not None else None
            obj = ctx.exp.objective(split, buffers=b, budget_bytes=ctx.budget)
            values.append(gradient_norms(obj, theta.unsqueeze(0)))
        norms[split] = torch.cat(values)
    return Result(
        arrays={
            "step": as_array(steps, "optimizer steps taken", "steps", ("step",)),
            "train_grad_norm": as_array(
                norms["train"],
                "||grad of the full-batch clean training loss||_2",
                "L2 norm",
                ("step",),
            ),
            "test_grad_norm": as_array(
                norms["test"], "||grad of the test loss||_2", "L2 norm", ("step",)
            ),
        },
        attrs={"run": run_id, "headline": f"train grad norm {float(norms['train'][-1]):.2e}"},
    )


register(
    Measure(
        "distance", "distances of the initial point and checkpoints from init", all_runs, _distance
    )
)
register(
    Measure(
        "pair_distance",
        "distance between the normal and overfit final points of each seed",
        seed_pairs,
        _pair_distance,
    )
)
register(
    Measure(
        "gradient",
        "full-batch gradient norms on clean train and test, per checkpoint",
        all_runs,
        _gradient,
    )
)
