"""The top Hessian eigenvalue(s) at every checkpoint of a run: curvature over training.

The kernel is `curvature.top_eigenvalues` at a looser tolerance (a curve needs ~4 digits, not
the 1e-6 of the final point's spectrum); a point where Lanczos fails stays NaN.
"""

from __future__ import annotations

import torch

from landscape.measures.common import (
    needs_path,
    objective,
    selected_runs,
    step_array,
    trajectory,
)
from landscape.measures.curvature import CurvatureError, top_eigenvalues
from landscape.measures.spec import CURV, RUNS, Context, MeasureSpec, Setting, Stored

TRAJECTORY_K = Setting(
    "trajectory_k",
    1,
    "curvature over training: top eigenvalues at every checkpoint",
    "int",
    "an integer >= 1",
    lambda v: v >= 1,
    maximum=100,
)


def _compute(ctx: Context, run_id: str) -> tuple[dict, dict]:
    steps, points, buffers = trajectory(ctx, run_id)
    k = ctx.cfg.trajectory_k
    values = torch.full((len(points), k), float("nan"), dtype=torch.float64)
    for i, theta in enumerate(points):
        obj = objective(ctx, "train", buffers[i] if buffers is not None else None)
        try:
            r = top_eigenvalues(
                obj.hvp_operator(theta),
                obj.model.size,
                k,
                tol=1e-4,
                generator=ctx.generator,
                keep_vectors=False,
            )
            values[i] = r.eigenvalues
        except CurvatureError:  # stays NaN, never hidden; rare (non-finite point)
            continue
    headline = f"final top {float(values[-1, 0]):.4g}"
    return {"step": steps, "eigenvalues": values}, {"run": run_id, "headline": headline}


SPEC = MeasureSpec(
    name="curvature_trajectory",
    description="top Hessian eigenvalue at every checkpoint (curvature over training)",
    needs="run (its initial point and checkpoints; k = 0 of each mode unless runs = all)",
    keys=selected_runs,
    skip_reason=needs_path(2),
    compute=_compute,
    settings=(TRAJECTORY_K, RUNS),
    arrays=(
        step_array(),
        Stored(
            "eigenvalues",
            "top Hessian eigenvalues of the clean training loss at each checkpoint",
            CURV,
            ("step",),
        ),
    ),
    figures=("curvature_trajectory",),
)
