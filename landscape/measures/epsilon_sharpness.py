"""Keskar et al.'s epsilon-sharpness of the clean training loss at a final point: the largest
relative rise of the loss in the box |delta_i| <= epsilon (|theta_i| + 1), found by L-BFGS-B.
The kernel is `sharpness.epsilon_sharpness`."""

from __future__ import annotations

import torch

from landscape.core.objective import Objective
from landscape.measures.common import all_runs, objective
from landscape.measures.sharpness import epsilon_sharpness
from landscape.measures.spec import L2, LOSS_UNITS, Context, MeasureSpec, Setting, Stored
from landscape.store.summary import Scalar

EPSILON = Setting(
    "epsilon",
    1e-3,
    "epsilon-sharpness: Keskar et al.'s box size, |delta_i| <= epsilon * (|theta_i| + 1)",
    "float",
    "a number > 0",
    lambda v: v > 0,
    maximum=1e3,
)


def box_sharpness(
    obj: Objective, theta: torch.Tensor, epsilon: float, *, generator: torch.Generator
) -> tuple[dict, dict]:
    """What an epsilon_sharpness result stores (`sharpness.epsilon_sharpness` at theta (P,))
    and attributes. Shared by `landscape analyze` and `Probe.epsilon_sharpness`."""
    r = epsilon_sharpness(obj, theta, epsilon=epsilon, generator=generator)
    values = {
        "sharpness": r.sharpness,
        "base_loss": r.base_loss,
        "max_loss": r.max_loss,
        "delta_norm": r.delta_norm,
    }
    attrs = {
        "method": r.method,
        "epsilon": r.epsilon,
        "n_evaluations": r.n_evaluations,
        "finite": r.finite,
        "headline": f"{r.sharpness:.3g} %",
    }
    return values, attrs


def _compute(ctx: Context, run_id: str) -> tuple[dict, dict]:
    run = ctx.exp.run(run_id)
    obj = objective(ctx, "train", run.final_buffers)
    values, attrs = box_sharpness(obj, run.final, ctx.cfg.epsilon, generator=ctx.generator)
    return values, {"run": run_id} | attrs


SPEC = MeasureSpec(
    name="epsilon_sharpness",
    description="Keskar et al.'s epsilon-sharpness of the clean training loss at the final "
    "point (L-BFGS-B in the box)",
    needs="run (its final point)",
    keys=all_runs,
    compute=_compute,
    settings=(EPSILON,),
    arrays=(
        Stored(
            "sharpness",
            "Keskar et al.'s epsilon-sharpness: 100 (max L - L) / (1 + L) over "
            "the box, clean training loss",
            "percent",
        ),
        Stored("base_loss", "clean training loss at the point", LOSS_UNITS),
        Stored("max_loss", "largest loss found in the box", LOSS_UNITS),
        Stored("delta_norm", "||delta||_2 of the maximizer", L2),
    ),
    scalars=(
        Scalar(
            "epsilon_sharpness",
            "ε-sharpness (Keskar et al.)",
            "percent",
            "sharpness",
            headline="always",
        ),
    ),
    figures=("sharpness",),
)
