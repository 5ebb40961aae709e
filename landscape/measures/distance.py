"""Distances in parameter space: from the initial point, and between runs.

Merkulov & Oseledets' figures use the sum over tensors of the weight norms; the L2 distance
from init is the natural one. Both are reported, named so they cannot be confused.

>>> import torch
>>> from torch import nn
>>> from landscape.core.layout import Layout
>>> layout = Layout.of_parameters(nn.Linear(2, 1))
>>> d = distance_from_init(torch.zeros(3), torch.tensor([[3.0, 4.0, 12.0]]), layout)
>>> d.l2.tolist(), d.frobenius_sum.tolist(), d.weight_norm_sum.tolist()
([13.0], [17.0], [17.0])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from landscape.core.layout import Layout
from landscape.measures.common import all_runs, needs_init, step_array, trajectory
from landscape.measures.spec import L2, Context, MeasureSpec, Stored
from landscape.store.summary import Scalar


@dataclass(frozen=True)
class Distances:
    l2: torch.Tensor  # (n,) ||theta - theta0||_2 over all parameters
    frobenius_sum: torch.Tensor  # (n,) sum over tensors t of ||theta_t - theta0_t||_F
    weight_norm_sum: torch.Tensor  # (n,) sum over tensors t of ||theta_t||_F (not a distance)


def per_tensor_norms(points: torch.Tensor, layout: Layout) -> torch.Tensor:
    """(n, P) -> (n, n_tensors) Frobenius norm of each tensor of each point."""
    return torch.stack(
        [points[:, e.offset : e.offset + e.numel].norm(dim=1) for e in layout.entries], dim=1
    )


def distance_from_init(init: torch.Tensor, points: torch.Tensor, layout: Layout) -> Distances:
    """The three distances of points (n, P) from init (P,), in parameter units."""
    points = points.double()
    change = points - init.double()
    return Distances(
        l2=change.norm(dim=1),
        frobenius_sum=per_tensor_norms(change, layout).sum(dim=1),
        weight_norm_sum=per_tensor_norms(points, layout).sum(dim=1),
    )


def pair_distance(a: torch.Tensor, b: torch.Tensor, layout: Layout) -> tuple[float, float]:
    """(L2 distance, sum of per-tensor Frobenius distances) between two points (P,)."""
    change = (a.double() - b.double()).unsqueeze(0)
    return float(change.norm()), float(per_tensor_norms(change, layout).sum())


# -- the measure -------------------------------------------------------------------------------


def _compute(ctx: Context, run_id: str) -> tuple[dict, dict]:
    run = ctx.exp.run(run_id)
    steps, points, _ = trajectory(ctx, run_id)
    d = distance_from_init(run.init, points, ctx.exp.layout)
    values = {
        "step": steps,
        "l2": d.l2,
        "frobenius_sum": d.frobenius_sum,
        "weight_norm_sum": d.weight_norm_sum,
    }
    return values, {"run": run_id, "mode": run.mode, "headline": f"l2 {float(d.l2[-1]):.3f}"}


SPEC = MeasureSpec(
    name="distance",
    description="distances of the initial point and checkpoints from init",
    needs="run (its initial point and checkpoints)",
    keys=all_runs,
    skip_reason=needs_init,
    compute=_compute,
    evaluates=False,
    arrays=(
        step_array(),
        Stored("l2", "||theta - theta0||_2 over all parameters", L2, ("step",)),
        Stored("frobenius_sum", "sum over tensors of ||theta_t - theta0_t||_F", L2, ("step",)),
        Stored(
            "weight_norm_sum",
            "sum over tensors of ||theta_t||_F (Merkulov & Oseledets' figures; not a distance)",
            L2,
            ("step",),
        ),
    ),
    scalars=(
        Scalar(
            "distance_l2",
            "distance from init ‖θ − θ₀‖₂",
            "L2 norm",
            "l2",
            at="last",
            headline="always",
        ),
        Scalar(
            "distance_frobenius_sum",
            "sum of per-tensor distances from init",
            "L2 norm",
            "frobenius_sum",
            at="last",
        ),
        Scalar(
            "weight_norm_sum",
            "sum of per-tensor weight norms",
            "L2 norm",
            "weight_norm_sum",
            at="last",
        ),
        # grokking: the weight norm rises while memorizing and falls when the net generalizes
        Scalar(
            "weight_norm_peak_over_final",
            "peak / final sum of weight norms",
            "1",
            "weight_norm_sum",
            at="peak_over_last",
        ),
    ),
    figures=("distance_per_seed", "distance_steps"),
)
