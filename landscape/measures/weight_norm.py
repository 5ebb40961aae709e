"""The plain weight norm ||theta||_2 at the initial point and every checkpoint.

Merkulov & Oseledets speak of the "total Euclidean norm of vectorized weights": literally the L2
norm of the whole flat parameter vector, biases included (the per-tensor sum their figures plot
is `distance`'s `weight_norm_sum`).

>>> import torch
>>> weight_norm(torch.tensor([[3.0, 4.0], [0.0, 0.0]])).tolist()
[5.0, 0.0]
"""

from __future__ import annotations

import torch

from landscape.measures.common import all_runs, step_array, trajectory
from landscape.measures.spec import L2, Context, MeasureSpec, Stored
from landscape.store.summary import Scalar


def weight_norm(points: torch.Tensor) -> torch.Tensor:
    """(n,) float64 L2 norm of each flat parameter vector of points (n, P)."""
    return points.double().norm(dim=1)


def _compute(ctx: Context, run_id: str) -> tuple[dict, dict]:
    steps, points, _ = trajectory(ctx, run_id)
    norms = weight_norm(points)
    return {"step": steps, "weight_norm": norms}, {
        "run": run_id,
        "headline": f"||theta|| {float(norms[-1]):.3f}",
    }


SPEC = MeasureSpec(
    name="weight_norm",
    description="the plain weight norm ||theta||_2 at init and every checkpoint",
    needs="run (its initial point and checkpoints)",
    keys=all_runs,
    compute=_compute,
    evaluates=False,
    arrays=(
        step_array(),
        Stored(
            "weight_norm",
            "||theta||_2 of the flat parameter vector (all parameters)",
            L2,
            ("step",),
        ),
    ),
    scalars=(
        Scalar(
            "weight_norm_l2",
            "weight norm ‖θ‖₂",
            "L2 norm",
            "weight_norm",
            at="last",
            headline="present",
        ),
    ),
)
