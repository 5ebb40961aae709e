"""Distance between the normal and the overfit final point of each seed (one shared init)."""

from __future__ import annotations

from landscape.measures.common import pair_runs, seed_pairs
from landscape.measures.distance import pair_distance
from landscape.measures.spec import L2, Context, MeasureSpec, Stored
from landscape.store.summary import Scalar


def _compute(ctx: Context, key: str) -> tuple[dict, dict]:
    normal, overfit = pair_runs(ctx.exp, key)
    l2, frob = pair_distance(normal.final, overfit.final, ctx.exp.layout)
    values = {"l2": l2, "frobenius_sum": frob}
    if normal.has_init and overfit.has_init:  # imported points may come without one
        values["init_l2"], _ = pair_distance(normal.init, overfit.init, ctx.exp.layout)
    attrs = {"normal": normal.run_id, "overfit": overfit.run_id, "headline": f"l2 {l2:.3f}"}
    return values, attrs


SPEC = MeasureSpec(
    name="pair_distance",
    description="distance between the normal and overfit final points of each seed",
    needs="pair of runs (normal and overfit of one seed)",
    keys=seed_pairs,
    compute=_compute,
    evaluates=False,
    group="pairs",
    arrays=(
        Stored("l2", "||theta_normal - theta_overfit||_2 at the final points", L2),
        Stored("frobenius_sum", "sum over tensors of the Frobenius distance", L2),
        Stored("init_l2", "distance between the two initial points (0: shared)", L2),
    ),
    scalars=(
        Scalar(
            "normal_overfit_distance",
            "distance between the normal and overfit points",
            "L2 norm",
            "l2",
            key_name="pair",
        ),
    ),
    figures=("distance_per_seed",),
)
