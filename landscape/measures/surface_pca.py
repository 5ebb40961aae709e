"""The 2D loss surface on the plane of the training path's top two principal components, with
the path projected on it (Li et al. 2018, section 7)."""

from __future__ import annotations

from landscape.measures.common import needs_path, selected_runs, trajectory
from landscape.measures.directions import pca_directions
from landscape.measures.spec import GRID, L2, RUNS, Context, MeasureSpec, Stored
from landscape.measures.surface2d import plane, plane_arrays


def _compute(ctx: Context, run_id: str) -> tuple[dict, dict]:
    run = ctx.exp.run(run_id)
    _, path, _ = trajectory(ctx, run_id)
    pca = pca_directions(path, run.final, 2)
    extent = float(pca.coordinates.abs().max()) * 1.2  # the whole path fits on the plane
    values, attrs = plane(ctx, run_id, pca.directions[0], pca.directions[1], extent)
    values |= {
        "explained_variance_ratio": pca.explained_variance_ratio,
        "trajectory_x": pca.coordinates[:, 0],
        "trajectory_y": pca.coordinates[:, 1],
    }
    return values, attrs


SPEC = MeasureSpec(
    name="surface_pca",
    description="2D loss surface on the plane of the trajectory's top two principal components, "
    "with the projected trajectory (Li et al. section 7)",
    needs="run (its checkpoints and final point; k = 0 of each mode unless runs = all)",
    keys=selected_runs,
    skip_reason=needs_path(3),  # two principal directions after centring
    compute=_compute,
    settings=(GRID,),
    key_settings=(RUNS,),
    arrays=(
        *plane_arrays("unit principal direction of the trajectory"),
        Stored(
            "explained_variance_ratio", "fraction of the trajectory's variance per direction", "1"
        ),
        Stored("trajectory_x", "init, checkpoints on direction_x", L2),
        Stored("trajectory_y", "init, checkpoints on direction_y", L2),
    ),
    figures=("surface_pca", "surface_pca_3d"),
)
