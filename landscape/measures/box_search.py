"""The box search behind epsilon-sharpness: maximize L(theta + w * u) over u in [-1, 1]^P.

Two searches in box coordinates (float64 on the numpy side): scipy's L-BFGS-B with the box as
bounds (as Keskar et al. 2017), and projected sign-gradient ascent (Madry et al.'s PGD step for
a max-norm ball). Both remember the point of largest loss seen; `Diverged` stops them at the
first non-finite loss or gradient, which is then the recorded maximum (never hidden).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import Bounds, minimize

from landscape.core.objective import Objective

METHODS = ("lbfgsb", "pga")  # L-BFGS-B on the box (Keskar et al.); projected sign ascent
PGA_TRAVEL = 2.5  # pga: steps of PGA_TRAVEL / max_iter box half-widths, so max_iter steps can
# cross the whole box (2 half-widths) with room to spare, as in Madry et al.'s PGD (2.5 eps)
LBFGSB_EVALS_PER_ITER = 3  # L-BFGS-B: cap on loss+gradient calls per iteration (line search)


class Diverged(Exception):
    """A point of the box had a non-finite loss or gradient; stop the search."""


class BoxSearch:
    """u in [-1, 1]^P -> (f, df/du) with f = -(L(theta + w * u) - L(theta)) / scale.

    Remembers the point of largest loss seen. The gradient is chained through the half-widths
    w (P,) (float64 on the CPU). `scale` is fixed at the first call to the mean |dL/du| there,
    so the starting gradient has mean magnitude 1 in box units: L-BFGS-B's first quasi-Newton
    matrix is the identity and, the ascent being locally convex, its curvature pairs
    (s^T y <= 0) are skipped, so its steps stay -gradient in f's units. Unscaled, a 1e-3 box
    gives gradients ~1e-4 and steps that cross a thousandth of the box per iteration.
    """

    def __init__(self, objective: Objective, theta: torch.Tensor, widths: np.ndarray, base: float):
        self.objective, self.theta, self.widths, self.base = objective, theta, widths, base
        self.scale: float | None = None
        self.best_loss, self.best_u = base, np.zeros_like(widths)
        self.calls = 0

    def __call__(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        point = self.theta + torch.from_numpy(self.widths * u).to(self.theta)
        loss = float(self.objective.value(point))
        du = self.widths * self.objective.gradient(point).to("cpu", torch.float64).numpy()
        self.calls += 1
        if not (math.isfinite(loss) and np.isfinite(du).all()):
            self.best_loss, self.best_u = loss, u.copy()
            raise Diverged
        if loss > self.best_loss:
            self.best_loss, self.best_u = loss, u.copy()
        if self.scale is None:
            self.scale = float(np.abs(du).mean()) or 1.0  # a zero gradient: any scale will do
        return -(loss - self.base) / self.scale, -du / self.scale


def lbfgsb(search: BoxSearch, start: np.ndarray, max_iter: int) -> None:
    # ftol = gtol = 0: the loss increases in a small box are tiny, so scipy's default
    # tolerances could stop the search before it moved; it ends after max_iter iterations, at
    # a vertex whose projected gradient is exactly zero, or when the line search stalls.
    ones = np.ones_like(start)
    options = {
        "maxiter": max_iter,
        "maxfun": LBFGSB_EVALS_PER_ITER * max_iter,
        "ftol": 0.0,
        "gtol": 0.0,
    }
    minimize(
        search, start, jac=True, method="L-BFGS-B", bounds=Bounds(-ones, ones), options=options
    )


def pga(search: BoxSearch, start: np.ndarray, max_iter: int) -> None:
    step = PGA_TRAVEL / max_iter
    u = start
    for _ in range(max_iter):
        _, df_du = search(u)
        u = np.clip(u - step * np.sign(df_du), -1.0, 1.0)  # f = -L: descend f, ascend L
    search(u)


def half_widths(theta: torch.Tensor, epsilon: float) -> np.ndarray:
    """(P,) float64 box half-widths epsilon * (|theta_i| + 1), parameter units."""
    return (epsilon * (theta.detach().to("cpu", torch.float64).abs() + 1.0)).numpy()


def uniform_in_box(size: int, generator: torch.Generator) -> np.ndarray:
    """(size,) float64 uniform in [-1, 1], drawn on the generator's device then moved."""
    u = torch.rand(size, generator=generator, dtype=torch.float64, device=generator.device)
    return (2.0 * u - 1.0).cpu().numpy()
