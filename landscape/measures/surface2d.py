"""The 2D loss surface on a filter-normalized random plane through a final point (Li et al.).

Rows are computed one at a time and kept as parts, so a killed analysis resumes with the rows
it has. Arrays keep the names of Li et al.'s tool (`xcoordinates`, `train_loss`, ...).
"""

from __future__ import annotations

import numpy as np
import torch

from landscape.measures.common import SPLITS, objectives, selected_runs
from landscape.measures.directions import random_plane
from landscape.measures.slices import grid_coordinates, surface_2d_rows
from landscape.measures.spec import (
    GRID,
    IGNORE,
    LOSS_UNITS,
    RUNS,
    SPAN,
    Context,
    MeasureSpec,
    Stored,
)

GRIDS = tuple(f"{s}_{q}" for s in SPLITS for q in ("loss", "acc"))


def plane(
    ctx: Context, run_id: str, d1: torch.Tensor, d2: torch.Tensor, span: float
) -> tuple[dict, dict]:
    """Loss and accuracy on theta + x d1 + y d2, row by row (each row kept when done)."""
    run = ctx.exp.run(run_id)
    n = ctx.cfg.grid
    coords = grid_coordinates(n, span)
    objs = objectives(ctx, run.final_buffers)
    done = ctx.load_parts()  # rows kept by an interrupted run
    for i in [i for i in range(n) if f"row{i:05d}" not in done]:
        row = {}
        for split, obj in objs.items():
            ((_, loss, acc),) = surface_2d_rows(obj, run.final, d1, d2, coords, coords, [i])
            row[f"{split}_loss"], row[f"{split}_acc"] = loss.cpu().numpy(), acc.cpu().numpy()
        ctx.save_part(f"row{i:05d}", **row)
        done[f"row{i:05d}"] = row
    values: dict = {
        "xcoordinates": coords,
        "ycoordinates": coords,
        "direction_x": d1,
        "direction_y": d2,
    }
    for name in GRIDS:
        values[name] = np.stack([done[f"row{i:05d}"][name] for i in range(n)])
    centre = float(values["train_loss"][n // 2, n // 2])
    return values, {"run": run_id, "headline": f"centre train loss {centre:.4g}"}


def plane_arrays(what: str) -> tuple[Stored, ...]:
    """What `plane` stores; `what` says what the two directions are."""
    xy = ("xcoordinates", "ycoordinates")
    return (
        Stored("xcoordinates", "coefficient of direction_x", "units of direction_x", xy[:1]),
        Stored("ycoordinates", "coefficient of direction_y", "units of direction_y", xy[1:]),
        Stored("direction_x", f"first {what} (flat, see layout)", "1"),
        Stored("direction_y", f"second {what}", "1"),
        *(
            Stored(
                name,
                f"{name.replace('_', ' ')} at theta + x d_x + y d_y",
                LOSS_UNITS if name.endswith("loss") else "fraction",
                xy,
            )
            for name in GRIDS
        ),
    )


def _compute(ctx: Context, run_id: str) -> tuple[dict, dict]:
    run = ctx.exp.run(run_id)
    d1, d2 = random_plane(run.final, ctx.exp.layout, generator=ctx.generator, ignore=ctx.cfg.ignore)
    return plane(ctx, run_id, d1, d2, ctx.cfg.span)


SPEC = MeasureSpec(
    name="surface2d",
    description="2D loss surface on a filter-normalized random plane (Li et al.)",
    needs="run (its final point; k = 0 of each mode unless runs = all)",
    keys=selected_runs,
    compute=_compute,
    settings=(GRID, SPAN, IGNORE),
    key_settings=(RUNS,),
    arrays=plane_arrays("filter-normalized random direction"),
    figures=("surface2d", "surface2d_3d"),
)
