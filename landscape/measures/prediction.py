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

import numpy as np
from scipy import ndimage

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
