"""Gradient norms of the full-batch loss: is a point (near) critical?"""

from __future__ import annotations

import torch

from landscape.core.objective import Objective
from landscape.measures.common import SPLITS, all_runs, objective, step_array, trajectory
from landscape.measures.spec import Context, MeasureSpec, Stored
from landscape.store.summary import Scalar


def gradient_norms(objective: Objective, points: torch.Tensor) -> torch.Tensor:
    """(n,) L2 norm of dL/dtheta at each point (n, P); L is the objective's mean loss.

    NaN for a point whose gradient is not finite (a diverged point), never hidden.
    """
    out = torch.empty(len(points), dtype=torch.float64)
    for i, theta in enumerate(points):
        g = objective.gradient(theta)
        out[i] = g.double().norm() if torch.isfinite(g).all() else float("nan")
    return out


# -- the measure -------------------------------------------------------------------------------


def _compute(ctx: Context, run_id: str) -> tuple[dict, dict]:
    steps, points, buffers = trajectory(ctx, run_id)
    norms = {}
    for split in SPLITS:
        per_point = []
        for i, theta in enumerate(points):
            obj = objective(ctx, split, buffers[i] if buffers is not None else None)
            per_point.append(gradient_norms(obj, theta.unsqueeze(0)))
        norms[split] = torch.cat(per_point)
    headline = f"train grad norm {float(norms['train'][-1]):.2e}"
    values = {"step": steps, "train_grad_norm": norms["train"], "test_grad_norm": norms["test"]}
    return values, {"run": run_id, "headline": headline}


SPEC = MeasureSpec(
    name="gradient",
    description="full-batch gradient norms on clean train and test, per checkpoint",
    needs="run (its initial point and checkpoints)",
    keys=all_runs,
    compute=_compute,
    arrays=(
        step_array(),
        Stored(
            "train_grad_norm",
            "||grad of the full-batch clean training loss||_2",
            "L2 norm",
            ("step",),
        ),
        Stored("test_grad_norm", "||grad of the test loss||_2", "L2 norm", ("step",)),
    ),
    scalars=(
        Scalar(
            "train_grad_norm",
            "gradient norm, clean train loss",
            "L2 norm",
            "train_grad_norm",
            at="last",
            headline="always",
        ),
        Scalar(
            "test_grad_norm", "gradient norm, test loss", "L2 norm", "test_grad_norm", at="last"
        ),
    ),
    figures=("gradient_norm",),
)
