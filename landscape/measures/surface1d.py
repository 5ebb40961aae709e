"""1D slices through a final point along several filter-normalized random directions.

The pure functions are `directions.random_direction` (Li et al.'s filter normalization) and
`slices.surface_1d`; the mean and spread over the draws are stored with every draw.
"""

from __future__ import annotations

import torch

from landscape.measures.common import SPLITS, objectives, selected_runs
from landscape.measures.directions import random_direction
from landscape.measures.slices import grid_coordinates, surface_1d
from landscape.measures.spec import (
    DIRECTIONS,
    IGNORE,
    LOSS_UNITS,
    RUNS,
    SPAN,
    Context,
    MeasureSpec,
    Setting,
    Stored,
)

LINE_POINTS = Setting(
    "line_points",
    51,
    "1D slices: points along each direction (odd, so the point is on it)",
    "int",
    "an odd integer >= 3",
    lambda v: v >= 3 and v % 2 == 1,
    maximum=1_000_001,
)
CURVES = tuple(f"{s}_{q}" for s in SPLITS for q in ("loss", "acc"))


def _compute(ctx: Context, run_id: str) -> tuple[dict, dict]:
    run, cfg = ctx.exp.run(run_id), ctx.cfg
    coords = grid_coordinates(cfg.line_points, cfg.span)
    objs = objectives(ctx, run.final_buffers)
    curves: dict[str, list[torch.Tensor]] = {name: [] for name in CURVES}
    for _ in range(cfg.directions):
        d = random_direction(run.final, ctx.exp.layout, generator=ctx.generator, ignore=cfg.ignore)
        for split, obj in objs.items():
            s = surface_1d(obj, run.final, d, coords)
            curves[f"{split}_loss"].append(s.loss)
            curves[f"{split}_acc"].append(s.acc)
    values: dict = {"xcoordinates": coords}
    for name, draws in curves.items():
        stack = torch.stack(draws)  # (directions, n)
        values[name] = stack
        values[f"{name}_mean"] = stack.mean(0)
        values[f"{name}_std"] = stack.std(0) if len(stack) > 1 else stack[0] * 0
    attrs = {
        "run": run_id,
        "directions": cfg.directions,
        "headline": f"{cfg.directions} directions",
    }
    return values, attrs


def _arrays() -> tuple[Stored, ...]:
    out = [
        Stored(
            "xcoordinates",
            "step along a filter-normalized random direction",
            "filter-normalized units",
            ("xcoordinates",),
        )
    ]
    for name in CURVES:
        unit = LOSS_UNITS if name.endswith("loss") else "fraction"
        out += [
            Stored(name, f"{name}, one row per direction draw", unit),
            Stored(f"{name}_mean", f"{name}, mean over draws", unit, ("xcoordinates",)),
            Stored(
                f"{name}_std", f"{name}, standard deviation over draws", unit, ("xcoordinates",)
            ),
        ]
    return tuple(out)


SPEC = MeasureSpec(
    name="surface1d",
    description="1D slices along filter-normalized random directions (several draws)",
    needs="run (its final point; k = 0 of each mode unless runs = all)",
    keys=selected_runs,
    compute=_compute,
    settings=(LINE_POINTS, SPAN, DIRECTIONS, IGNORE),
    key_settings=(RUNS,),
    arrays=_arrays(),
    figures=("slices_1d",),
)
