"""Sharpness of a point: the worst loss in a small box, and the mean loss under random kicks.

- `epsilon_sharpness`: Keskar et al. 2017 ("On Large-Batch Training for Deep Learning",
  metric 2.1) in the full space (A = identity): the largest loss over the box
  |delta_i| <= epsilon * (|theta_i| + 1), reported as 100 * (max L - L) / (1 + L), in percent.
  The box is searched by L-BFGS-B (as Keskar et al.) or by projected sign-gradient ascent.
- `perturbation_sharpness`: the expected loss increase L(theta + r d) - L(theta) over random
  filter-normalized directions d (Li et al. 2018's directions), at one or several radii r.

Higher is sharper for both. Nothing here sees a model: points are flat vectors evaluated through
`Objective`, so the caller's parameters cannot change. Random draws come from the caller's
generator only.

>>> import torch
>>> from torch import nn
>>> from landscape.core.flat import FlatModel
>>> from landscape.core.objective import Objective
>>> model = FlatModel(nn.Linear(1, 1, bias=False).double())
>>> x, y = torch.ones(4, 1, dtype=torch.float64), torch.zeros(4, 1, dtype=torch.float64)
>>> objective = Objective(model, x, y, loss="mse", classification=False)  # L(w) = w^2
>>> theta = torch.tensor([1.0], dtype=torch.float64)
>>> g = torch.Generator().manual_seed(0)
>>> r = epsilon_sharpness(objective, theta, epsilon=0.1, generator=g)  # box w in [0.8, 1.2]
>>> round(r.max_loss, 6), round(r.sharpness, 6)  # 100 * (1.44 - 1) / (1 + 1)
(1.44, 22.0)
>>> p = perturbation_sharpness(objective, theta, model.layout, radius=0.5, n_directions=4,
...                            generator=torch.Generator().manual_seed(0))  # d = +-theta
>>> p.increases[:, 0].tolist(), p.mean.tolist()  # (1 +- 0.5)^2 - 1; balanced signs: r^2
([1.25, -0.75, -0.75, 1.25], [0.25])
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from landscape.core.layout import Layout
from landscape.core.objective import Objective
from landscape.errors import ConfigError
from landscape.measures.box_search import (
    METHODS,
    BoxSearch,
    Diverged,
    half_widths,
    lbfgsb,
    pga,
    uniform_in_box,
)
from landscape.measures.directions import random_direction


@dataclass(frozen=True)
class EpsilonSharpness:
    """Keskar et al.'s epsilon-sharpness of one point; higher is sharper.

    sharpness: 100 * (max_loss - base_loss) / (1 + base_loss), percent; NaN if base_loss is
        not finite, inf or NaN if a point of the box diverged (never hidden).
    base_loss: L(theta), the objective's mean loss (nats for cross-entropy).
    max_loss: the largest loss found in the box (>= base_loss: delta = 0 is in the box).
    delta_norm: L2 norm of the maximizer delta (parameter units); 0 if nothing beat theta.
    n_evaluations: loss-and-gradient evaluations spent on the search (each one forward pass
        for the loss and one forward+backward for the gradient), plus 1 for base_loss.
    method: "lbfgsb" or "pga". epsilon: relative box half-width.
    finite: False if base_loss or max_loss is not finite.
    """

    sharpness: float
    base_loss: float
    max_loss: float
    delta_norm: float
    n_evaluations: int
    method: str
    epsilon: float
    finite: bool


@dataclass(frozen=True)
class PerturbationSharpness:
    """Loss increase (and accuracy drop) under random filter-normalized perturbations.

    radii: (R,) float64, in units of the filter-normalized direction (r = 1 moves every filter
        by its own L2 norm).
    increases: (n_directions, R) float64, L(theta + r d_j) - L(theta); higher is sharper.
    mean, std: (R,) over directions (std with n - 1; NaN for a single direction).
    acc_drop: (n_directions, R) float64, acc(theta) - acc(theta + r d_j) in [-1, 1]; NaN for
        regression. acc_drop_mean, acc_drop_std: (R,) as for the loss.
    base_loss: L(theta) (nats for cross-entropy). base_acc: accuracy at theta (NaN: regression).
    finite: False if any evaluated loss is not finite (the NaN/inf stay in the arrays).
    """

    radii: torch.Tensor
    increases: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    acc_drop: torch.Tensor
    acc_drop_mean: torch.Tensor
    acc_drop_std: torch.Tensor
    base_loss: float
    base_acc: float
    finite: bool


def epsilon_sharpness(
    objective: Objective,
    theta: torch.Tensor,
    *,
    epsilon: float = 1e-3,
    method: str = "lbfgsb",
    max_iter: int = 20,
    generator: torch.Generator,
) -> EpsilonSharpness:
    """Keskar et al.'s epsilon-sharpness of theta (P,): the worst loss in a relative box.

    Maximizes L(theta + delta) over |delta_i| <= epsilon * (|theta_i| + 1), searching in box
    coordinates u = delta / half-width in [-1, 1]^P (float64 on the numpy side), from a random
    start drawn uniformly in the box from `generator`. Keskar et al. start at delta = 0; at an
    exact minimum the gradient there is zero and L-BFGS-B would stop at once with sharpness 0,
    so a random start is used instead. The best point seen is kept (delta = 0 included), so the
    result is a lower bound on the true box maximum.

    `method="lbfgsb"`: scipy's L-BFGS-B on -L with the box as bounds, `max_iter` iterations
    (at most box_search.LBFGSB_EVALS_PER_ITER * max_iter evaluations). `method="pga"`:
    `max_iter` steps u <- clip(u + box_search.PGA_TRAVEL / max_iter * sign(dL/du)), the steepest
    ascent for the box's max-norm, then one evaluation of the last point. theta is never modified.
    """
    _check_epsilon_args(objective, theta, epsilon, method, max_iter, generator)
    base = float(objective.value(theta))
    if not math.isfinite(base):
        return EpsilonSharpness(math.nan, base, math.nan, math.nan, 1, method, epsilon, False)
    search = BoxSearch(objective, theta, half_widths(theta, epsilon), base)
    start = uniform_in_box(theta.numel(), generator)
    with contextlib.suppress(Diverged):  # a diverged point is already recorded as the max
        lbfgsb(search, start, max_iter) if method == "lbfgsb" else pga(search, start, max_iter)
    return _epsilon_result(search, method, epsilon)


def perturbation_sharpness(
    objective: Objective,
    theta: torch.Tensor,
    layout: Layout,
    *,
    radius: float | Sequence[float],
    n_directions: int = 10,
    generator: torch.Generator,
    ignore: str = "biasbn",
) -> PerturbationSharpness:
    """Mean loss increase of theta (P,) under random filter-normalized perturbations r * d.

    Draws `n_directions` directions d_j (P,) one after the other from `generator` with
    `random_direction` (filter-normalized; `ignore` as there), and evaluates theta and all
    n_directions x R points theta + r_k d_j as one stack through `objective.evaluate`.
    On a quadratic with a minimum at theta the increase is exactly r^2 / 2 * d^T H d.
    theta is never modified.
    """
    radii = _radii(radius)
    _check_n_directions(n_directions)
    _check_generator(generator, "perturbation_sharpness")
    _check_theta(theta, objective.model.size, "perturbation_sharpness")
    directions = torch.stack(
        [
            random_direction(theta, layout, generator=generator, ignore=ignore)
            for _ in range(n_directions)
        ]
    )  # (n, P)
    offsets = radii.to(theta)[None, :, None] * directions[:, None, :]  # (n, R, P)
    points = torch.cat([theta[None], (theta + offsets).reshape(-1, theta.numel())])
    evaluation = objective.evaluate(points)
    return _perturbation_result(evaluation.loss, evaluation.acc, radii, n_directions)


def _epsilon_result(search: BoxSearch, method: str, epsilon: float) -> EpsilonSharpness:
    sharpness = 100.0 * (search.best_loss - search.base) / (1.0 + search.base)
    delta_norm = float(np.linalg.norm(search.widths * search.best_u))
    finite = math.isfinite(search.best_loss)
    return EpsilonSharpness(
        sharpness,
        search.base,
        search.best_loss,
        delta_norm,
        search.calls + 1,
        method,
        epsilon,
        finite,
    )


def _check_epsilon_args(
    objective: Objective,
    theta: torch.Tensor,
    epsilon: float,
    method: str,
    max_iter: int,
    generator: torch.Generator,
) -> None:
    where = "epsilon_sharpness"
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon > 0:
        raise ConfigError(
            f"{where}: expected epsilon a finite number > 0 (the relative box half-width), "
            f"found {epsilon!r}; Keskar et al. use 1e-3 and 5e-4"
        )
    if not math.isfinite(epsilon):
        raise ConfigError(f"{where}: expected a finite epsilon, found {epsilon!r}; use 1e-3")
    if method not in METHODS:
        raise ConfigError(f"{where}: expected method in {METHODS}, found {method!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ConfigError(
            f"{where}: expected max_iter an integer >= 1, found {max_iter!r}; the default is 20"
        )
    _check_generator(generator, where)
    _check_theta(theta, objective.model.size, where)


# --- perturbation sharpness ------------------------------------------------------------------


def _perturbation_result(
    loss: torch.Tensor, acc: torch.Tensor, radii: torch.Tensor, n: int
) -> PerturbationSharpness:
    """Split the evaluated stack (1 + n * R,) [theta first] into per-direction statistics."""
    loss, acc = loss.to("cpu", torch.float64), acc.to("cpu", torch.float64)
    increases = (loss[1:] - loss[0]).reshape(n, len(radii))
    acc_drop = (acc[0] - acc[1:]).reshape(n, len(radii))
    return PerturbationSharpness(
        radii=radii,
        increases=increases,
        mean=increases.mean(dim=0),
        std=_spread(increases),
        acc_drop=acc_drop,
        acc_drop_mean=acc_drop.mean(dim=0),
        acc_drop_std=_spread(acc_drop),
        base_loss=float(loss[0]),
        base_acc=float(acc[0]),
        finite=bool(torch.isfinite(loss).all()),
    )


def _spread(values: torch.Tensor) -> torch.Tensor:
    """(R,) sample standard deviation over the rows of (n, R); NaN when n == 1."""
    if len(values) < 2:
        # torch.std would warn about zero degrees of freedom; the answer is the same NaN
        return torch.full(values.shape[1:], math.nan, dtype=values.dtype)
    return values.std(dim=0)


def _radii(radius: float | Sequence[float]) -> torch.Tensor:
    """The radii as (R,) float64, each finite and > 0."""
    try:
        radii = torch.as_tensor(np.atleast_1d(np.asarray(radius, dtype=np.float64)))
    except (TypeError, ValueError):
        radii = None
    if radii is None or radii.dim() != 1 or len(radii) == 0 or not _all_positive(radii):
        raise ConfigError(
            "perturbation_sharpness: expected radius a number > 0 or a non-empty sequence of "
            f"them (units of the filter-normalized direction), found {radius!r}; "
            "e.g. radius=[0.1, 0.25, 0.5]"
        )
    return radii


def _all_positive(radii: torch.Tensor) -> bool:
    return bool((torch.isfinite(radii) & (radii > 0)).all())


def _check_n_directions(n_directions: int) -> None:
    if isinstance(n_directions, bool) or not isinstance(n_directions, int) or n_directions < 1:
        raise ConfigError(
            "perturbation_sharpness: expected n_directions an integer >= 1, found "
            f"{n_directions!r}; the default is 10"
        )


# --- shared checks ---------------------------------------------------------------------------


def _check_generator(generator: torch.Generator, where: str) -> None:
    if not isinstance(generator, torch.Generator):
        raise ConfigError(
            f"{where}: expected `generator` a torch.Generator, found "
            f"{type(generator).__name__}; pass generator=torch.Generator().manual_seed(seed)"
        )


def _check_theta(theta: torch.Tensor, size: int, where: str) -> None:
    if not isinstance(theta, torch.Tensor) or theta.dim() != 1 or theta.shape[0] != size:
        found = tuple(theta.shape) if isinstance(theta, torch.Tensor) else type(theta).__name__
        raise ConfigError(
            f"{where}: expected theta a flat vector ({size},) of the objective's model, found "
            f"{found}; pass the flat parameter vector (e.g. a run's `final`)"
        )
    if not theta.is_floating_point():
        raise ConfigError(f"{where}: expected a floating theta, found {theta.dtype}; use .float()")
