"""The expected rise of the clean training loss under random filter-normalized perturbations
of given radii (a "perturbation sharpness" profile). The kernel is
`sharpness.perturbation_sharpness`."""

from __future__ import annotations

from landscape.measures.common import all_runs, objective
from landscape.measures.sharpness import perturbation_sharpness
from landscape.measures.spec import (
    DIRECTIONS,
    IGNORE,
    LOSS_UNITS,
    Context,
    MeasureSpec,
    Setting,
    Stored,
)
from landscape.store.summary import Scalar

RADII = Setting(
    "radii",
    (0.1, 0.25, 0.5),
    "perturbation sharpness: radii along filter-normalized random directions",
    "floats",
    "a non-empty list of numbers > 0",
    lambda v: bool(v) and all(r > 0 for r in v),
    maximum=1e6,
)


def _compute(ctx: Context, run_id: str) -> tuple[dict, dict]:
    run, cfg = ctx.exp.run(run_id), ctx.cfg
    obj = objective(ctx, "train", run.final_buffers)
    r = perturbation_sharpness(
        obj,
        run.final,
        ctx.exp.layout,
        radius=cfg.radii,
        n_directions=cfg.directions,
        generator=ctx.generator,
        ignore=cfg.ignore,
    )
    values = {
        "radius": r.radii,
        "increase": r.increases,
        "increase_mean": r.mean,
        "increase_std": r.std,
        "acc_drop_mean": r.acc_drop_mean,
    }
    attrs = {
        "run": run_id,
        "base_loss": r.base_loss,
        "finite": r.finite,
        "headline": f"increase at r={r.radii[-1]:.3g}: {float(r.mean[-1]):.3g}",
    }
    return values, attrs


_DIMS = ("radius",)
SPEC = MeasureSpec(
    name="perturbation",
    description="expected loss increase under random filter-normalized perturbations of given "
    "radii",
    needs="run (its final point)",
    keys=all_runs,
    compute=_compute,
    settings=(RADII, DIRECTIONS, IGNORE),
    arrays=(
        Stored(
            "radius",
            "radius along filter-normalized random directions",
            "filter-normalized units",
            _DIMS,
        ),
        Stored("increase", "L(theta + r d) - L(theta), one row per direction", LOSS_UNITS),
        Stored("increase_mean", "mean loss increase over directions", LOSS_UNITS, _DIMS),
        Stored("increase_std", "standard deviation over directions", LOSS_UNITS, _DIMS),
        Stored("acc_drop_mean", "mean clean-train accuracy drop", "fraction", _DIMS),
    ),
    scalars=(
        Scalar(
            "perturbation_increase",
            "loss increase at the largest radius",
            "loss units",
            "increase_mean",
            at="last",
        ),
    ),
    figures=("sharpness",),
)
