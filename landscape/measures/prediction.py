"""What a regression network draws: its output over the whole input range, and how that
compares with the truth.

- ring (halvar.flake's blog): the predicted image beside the true ring; IoU of the predicted
  black region with the ring, image MSE, and the number of connected black components
  (memorizing the points would give one blob per black training pixel; a ring gives one).
- line: the fitted curve over [0, 20] beside ordinary least squares; max |NN - OLS|.

>>> import numpy as np
>>> truth = np.array([[0.0, 1.0], [1.0, 0.0]])
>>> ring_scores(truth[None], truth)["iou"].tolist(), ring_scores(truth[None], truth)["components"]
([1.0], array([2]))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy import ndimage

from landscape.core.objective import Objective
from landscape.data.synthetic import LINE_X_MAX, ring_coordinates, ring_image
from landscape.measures.common import all_runs, step_array, trajectory
from landscape.measures.spec import Context, MeasureSpec, Setting, Stored
from landscape.store.summary import Scalar

if TYPE_CHECKING:
    from landscape.measures.runs import Experiment
    from landscape.measures.settings import AnalysisConfig

BLACK = 0.5  # a pixel is predicted black when the output is below this gray level


def ring_scores(images: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
    """images (n, H, W) predicted gray levels, target (H, W) in {0 black, 1 white}.

    Returns per image: `iou` of predicted black (< 0.5) with true black (1.0 when both are
    empty), `image_mse` against the target, `components` of the predicted black region
    (4-connectivity), `black_fraction` of predicted black pixels.
    """
    truth = target < BLACK
    black = images < BLACK
    inter = (black & truth).sum(axis=(1, 2))
    union = (black | truth).sum(axis=(1, 2))
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    components = np.array([ndimage.label(b)[1] for b in black], dtype=np.int64)
    return {
        "iou": iou.astype(np.float64),
        "image_mse": ((images - target[None]) ** 2).mean(axis=(1, 2)).astype(np.float64),
        "components": components,
        "black_fraction": black.mean(axis=(1, 2)).astype(np.float64),
    }


def ols_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Ordinary least squares y ~ a + b x for x, y (n,): (intercept a, slope b)."""
    design = np.stack([np.ones_like(x, dtype=np.float64), x.astype(np.float64)], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)
    return float(a), float(b)


def line_scores(
    curves: np.ndarray, grid: np.ndarray, x: np.ndarray, y: np.ndarray
) -> dict[str, np.ndarray]:
    """curves (n, G) network outputs on grid (G,); training data x, y (m,).

    Returns `ols` (G,) the least-squares line on the grid, `max_abs_vs_ols` (n,) the largest
    |NN - OLS| over the grid, `mean_abs_vs_ols` (n,), and `ols_train_mse` (scalar).
    """
    a, b = ols_line(x, y)
    ols = a + b * grid.astype(np.float64)
    gap = np.abs(curves.astype(np.float64) - ols[None])
    return {
        "ols": ols,
        "max_abs_vs_ols": gap.max(axis=1),
        "mean_abs_vs_ols": gap.mean(axis=1),
        "ols_train_mse": np.float64(np.mean((a + b * x - y) ** 2)),
        "ols_coefficients": np.array([a, b]),
    }


# -- the measure -------------------------------------------------------------------------------

RESOLUTION = Setting(
    "prediction_resolution",
    128,
    "ring: the predicted image is drawn at this many pixels a side",
    "int",
    "an integer >= 2",
    lambda v: v >= 2,
    maximum=4096,
)
_DIMS = ("step",)
RING_SCORES = {
    "iou": "IoU of predicted black (< 0.5) with the ring",
    "image_mse": "mean squared error over the whole image",
    "components": "connected components of the predicted black region",
    "black_fraction": "fraction of pixels predicted black",
}


def prediction_keys(exp: Experiment, cfg: AnalysisConfig) -> list[str]:
    """Every run, for the datasets whose input range can be drawn (ring, line)."""
    return all_runs(exp, cfg) if exp.cfg.data.name in ("ring", "line") else []


def _outputs(
    ctx: Context, points: torch.Tensor, buffers: torch.Tensor | None, x: np.ndarray
) -> np.ndarray:
    """Network outputs (n_points, n_inputs) at each point (its first output), through the
    evaluator (`Objective.outputs`)."""
    inputs = torch.as_tensor(x).to(ctx.exp.device)
    unused = torch.zeros(len(inputs), 1, device=inputs.device)  # outputs need no targets
    obj = Objective(ctx.exp.model(None), inputs, unused, loss="mse", classification=False)
    return obj.outputs(points, buffers)[..., 0].cpu().double().numpy()


def _ring(ctx: Context, points: torch.Tensor, buffers: torch.Tensor | None) -> tuple[dict, dict]:
    ds, g = ctx.exp.dataset, ctx.cfg.prediction_resolution
    images = _outputs(ctx, points, buffers, ring_coordinates(g)).reshape(-1, g, g)
    target = ring_image(g)
    scores = ring_scores(images, target)
    axis = np.arange(g) / g
    values = {"x": axis, "y": axis, "output": images, "target": target, **scores}
    attrs = {
        "black_train_points": int((ds.y_train[:, 0] < 0.5).sum()),
        "headline": f"IoU {scores['iou'][-1]:.3f}, {scores['components'][-1]} blobs",
    }
    return values, attrs


def _line(ctx: Context, points: torch.Tensor, buffers: torch.Tensor | None) -> tuple[dict, dict]:
    ds = ctx.exp.dataset
    grid = np.linspace(0.0, LINE_X_MAX, 201, dtype=np.float32)
    curves = _outputs(ctx, points, buffers, grid[:, None])
    s = line_scores(curves, grid, ds.x_train[:, 0], ds.y_train[:, 0])
    fitted = _outputs(ctx, points, buffers, ds.x_train)
    train_mse = ((fitted - ds.y_train[:, 0].astype(np.float64)[None]) ** 2).mean(axis=1)
    values = {
        "x": grid,
        "output": curves,
        "ols": s["ols"],
        "train_x": ds.x_train[:, 0],
        "train_y": ds.y_train[:, 0],
        "max_abs_vs_ols": s["max_abs_vs_ols"],
        "mean_abs_vs_ols": s["mean_abs_vs_ols"],
        "train_mse": train_mse,
    }
    intercept, slope = map(float, s["ols_coefficients"])
    attrs = {
        "ols_train_mse": float(s["ols_train_mse"]),
        "ols_intercept": intercept,
        "ols_slope": slope,
        "headline": f"max |NN - OLS| {s['max_abs_vs_ols'][-1]:.3f}",
    }
    return values, attrs


def _compute(ctx: Context, run_id: str) -> tuple[dict, dict]:
    steps, points, buffers = trajectory(ctx, run_id)
    ds = ctx.exp.dataset
    draw = _ring if ds.name == "ring" else _line
    values, attrs = draw(ctx, points, buffers)
    return {"step": steps, **values}, {
        "run": run_id,
        "dataset": ds.name,
        "train_size": len(ds.x_train),
        **attrs,
    }


SPEC = MeasureSpec(
    name="prediction",
    description="the network's output over the whole input range (ring image, line curve) at "
    "every checkpoint, with IoU/components (ring) or the gap to least squares (line)",
    needs="run (its checkpoints; ring and line datasets only)",
    keys=prediction_keys,
    compute=_compute,
    settings=(RESOLUTION,),
    arrays=(
        step_array(),
        # ring
        Stored("x", "input x = column / resolution (ring); input x (line)", "1", ("x",)),
        Stored("y", "input y = row / resolution (downwards)", "1", ("y",)),
        Stored(
            "output",
            "predicted gray level (ring, 0 black, 1 white) or output y(x) (line) "
            "at each checkpoint",
            "1",
        ),
        Stored("target", "the true ring image", "1"),
        *(Stored(name, long, "1", _DIMS) for name, long in RING_SCORES.items()),
        # line
        Stored("ols", "ordinary least squares line on the training data", "1"),
        Stored("train_x", "training inputs", "1"),
        Stored("train_y", "training targets", "1"),
        Stored("max_abs_vs_ols", "max over x of |NN - OLS|", "1", _DIMS),
        Stored("mean_abs_vs_ols", "mean over x of |NN - OLS|", "1", _DIMS),
        Stored("train_mse", "network MSE on the training points", "1", _DIMS),
    ),
    scalars=(
        Scalar(
            "ring_iou",
            "ring: IoU of the predicted black region",
            "1",
            "iou",
            at="last",
            headline="present",
        ),
        Scalar(
            "ring_components",
            "ring: connected black components",
            "count",
            "components",
            at="last",
            headline="present",
        ),
        # memorizing would draw one blob per black training pixel: blobs over that count
        Scalar(
            "ring_components_per_black_point",
            "ring: black components per black training pixel (memorizing: about 1)",
            "1",
            "components",
            at="last",
            per_attr="black_train_points",
            headline="present",
        ),
        Scalar(
            "ring_image_mse",
            "ring: MSE over the whole image",
            "1",
            "image_mse",
            at="last",
            headline="present",
        ),
        Scalar(
            "line_max_abs_vs_ols",
            "line: max over x of |net − least squares|",
            "1",
            "max_abs_vs_ols",
            at="last",
            headline="present",
        ),
        Scalar(
            "line_train_mse_over_ols",
            "line: training MSE / least-squares MSE",
            "1",
            "train_mse",
            at="last",
            per_attr="ols_train_mse",
            headline="present",
        ),
    ),
    figures=("prediction_ring", "prediction_line"),
)
