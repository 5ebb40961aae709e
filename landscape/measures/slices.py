"""1D and 2D slices of the loss surface, and linear interpolation between two points.

Along an interpolation path three numbers, each under its paper's name: `barrier_height`, the
loss barrier (Entezari et al. 2022: loss above the straight chord, for a path between two
minima); `error_barrier` (Frankle et al. 2020: error above the endpoints' mean error); and
`largest_rise` (the largest increase of the loss along the path, 0 when monotone; Goodfellow et
al. 2015, Lucas et al. 2021), which is the one to read on a path from init to a minimum.

Every point is evaluated through `Objective.evaluate` on a stack of flat parameter vectors
(the objective chunks it to fit memory); no model is ever modified. Grids are float64 so the
stored coordinates are exact; points are built in theta's dtype. Unlike loss-landscapes' grid,
`grid_coordinates` always has theta itself (coordinate 0) at the centre index, and its `span`
multiplies: the grid runs from -span to +span steps of the direction.

A 2D surface can be computed row by row (`surface_2d_rows`) so a caller can write each row to
disk and, after a kill, resume with only the missing rows. Results are per objective (`loss`,
`acc`); the caller names them (`train_loss`, `test_acc`, ... as in Li et al.'s files).

>>> grid_coordinates(5, 1.0)
tensor([-1.0000, -0.5000,  0.0000,  0.5000,  1.0000], dtype=torch.float64)
>>> alphas = default_alphas(5, lo=-0.5, hi=1.5)
>>> alphas
tensor([-0.5000,  0.0000,  0.5000,  1.0000,  1.5000], dtype=torch.float64)
>>> barrier_height(alphas, torch.tensor([9.0, 1.0, 3.0, 1.0, 9.0]))  # a bump of 2 at alpha 0.5
2.0
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from landscape.core.objective import Objective
from landscape.errors import ConfigError


@dataclass(frozen=True)
class Slice1D:
    xcoordinates: torch.Tensor  # (n,) float64: steps along the direction, or alpha
    loss: torch.Tensor  # (n,) mean loss at each point (nats for cross-entropy)
    acc: torch.Tensor  # (n,) accuracy in [0, 1]; NaN for regression


@dataclass(frozen=True)
class Surface2D:
    xcoordinates: torch.Tensor  # (nx,) float64: steps along d1 (the first axis of loss)
    ycoordinates: torch.Tensor  # (ny,) float64: steps along d2
    loss: torch.Tensor  # (r, ny) rows `rows` of the grid; r = nx for the whole plane
    acc: torch.Tensor  # (r, ny) accuracy in [0, 1]; NaN for regression
    rows: torch.Tensor  # (r,) int64 indices into xcoordinates of the computed rows


def grid_coordinates(n: int, span: float) -> torch.Tensor:
    """n (odd, >= 3) coordinates (n,) float64 from -span to +span, 0 exactly at index n // 2.

    The grid is exactly symmetric (c[i] == -c[n - 1 - i]) and its ends are exactly +-span.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 3 or n % 2 == 0:
        raise ConfigError(
            f"grid_coordinates: expected an odd number of points n >= 3 so that theta (0) is "
            f"the centre point, found n={n!r}; use n={_next_odd(n)}"
        )
    if not math.isfinite(span) or span <= 0:
        raise ConfigError(
            f"grid_coordinates: expected a finite span > 0 (steps of the direction), found "
            f"{span!r}; use e.g. span=1.0 (Li et al.'s -1:1)"
        )
    centre = (n - 1) // 2
    return (torch.arange(n, dtype=torch.float64) - centre) / centre * span


def default_alphas(n: int = 41, lo: float = -0.5, hi: float = 1.5) -> torch.Tensor:
    """n evenly spaced alphas (n,) float64 from lo to hi with 0 and 1 exactly on the grid.

    Raises ConfigError when the spacing (hi - lo) / (n - 1) does not land on both 0 and 1,
    naming the nearest n that does.
    """
    i0, i1 = _anchor_indices(n, lo, hi)
    return (torch.arange(n, dtype=torch.float64) - i0) / (i1 - i0)


def interpolate(
    objective: Objective, a: torch.Tensor, b: torch.Tensor, alphas: torch.Tensor
) -> Slice1D:
    """Loss and accuracy at theta(alpha) = (1 - alpha) a + alpha b for every alpha (n,).

    a, b (P,) are never modified; alpha 0 gives a and alpha 1 gives b bit for bit. All points
    go to `objective.evaluate` as one stack (n, P).
    """
    a = _check_vector(a, objective, "interpolate", "a")
    b = _check_vector(b, objective, "interpolate", "b").to(a)
    grid = _check_coords(alphas, "interpolate", "alphas")
    alpha = grid.to(a)[:, None]
    result = objective.evaluate((1 - alpha) * a + alpha * b)
    return Slice1D(grid, result.loss, result.acc)


def barrier_height(alphas: torch.Tensor, losses: torch.Tensor) -> float:
    """Entezari et al. (2022)'s loss barrier: max over alpha in [0, 1] of
    loss(alpha) - [(1 - alpha) loss(0) + alpha loss(1)], the loss above the straight chord.

    alphas (n,) must contain 0 and 1 exactly (see `default_alphas`); losses (n,) in the loss's
    units. The result is >= 0 (the endpoints give 0): about 0 for a convex path, the height of
    the bump above the chord otherwise. NaN if any loss in [0, 1] is NaN (divergence shows).
    It is a barrier between two minima; on a path from an initial point down to a minimum read
    `largest_rise` instead (a strictly falling path can still lie above its chord).
    """
    grid, values, i0, i1 = _path(alphas, losses, "barrier_height", "losses")
    inside = (grid >= 0) & (grid <= 1)
    chord = (1 - grid) * values[i0] + grid * values[i1]
    return float((values - chord)[inside].max())


def error_barrier(alphas: torch.Tensor, accs: torch.Tensor) -> float:
    """Frankle et al. (2020)'s error barrier (their instability): max over alpha in [0, 1] of
    err(alpha) - (err(0) + err(1)) / 2, with err = 1 - accuracy.

    alphas (n,) with 0 and 1 exactly on the grid; accs (n,) accuracy in [0, 1]. The result, a
    fraction, is >= |err(0) - err(1)| / 2 (the endpoints), about that for a stable pair. NaN if
    any accuracy in [0, 1] is NaN (regression has no accuracy, hence no error barrier).

    >>> error_barrier(torch.tensor([0.0, 0.5, 1.0]), torch.tensor([0.75, 0.25, 0.5]))
    0.375
    """
    grid, values, i0, i1 = _path(alphas, accs, "error_barrier", "accs")
    errors = 1 - values
    inside = (grid >= 0) & (grid <= 1)
    return float((errors[inside] - (errors[i0] + errors[i1]) / 2).max())


def largest_rise(alphas: torch.Tensor, losses: torch.Tensor) -> float:
    """The largest increase of the loss along the path, in order of alpha over [0, 1]:
    max over 0 <= a <= b <= 1 of loss(b) - loss(a) (Goodfellow et al. 2015's monotone
    interpolation, quantified as in Lucas et al. 2021).

    alphas (n,) with 0 and 1 exactly on the grid; losses (n,) in the loss's units. 0 means the
    loss never goes up from alpha 0 to alpha 1 (monotone non-increasing, as on most
    init -> final paths); a dip then a rise of h gives h. NaN if any loss in [0, 1] is NaN.

    >>> largest_rise(torch.tensor([0.0, 0.5, 1.0]), torch.tensor([3.0, 1.0, 1.5]))
    0.5
    """
    grid, values, _, _ = _path(alphas, losses, "largest_rise", "losses")
    inside = (grid >= 0) & (grid <= 1)
    order = torch.argsort(grid[inside], stable=True)
    along = values[inside][order]  # (m,) losses by increasing alpha in [0, 1]
    if bool(torch.isnan(along).any()):
        return math.nan
    lowest_so_far = torch.cummin(along, dim=0).values
    return float((along - lowest_so_far).max())


def _path(
    alphas: torch.Tensor, values: torch.Tensor, where: str, name: str
) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """alphas and values as float64 (n,), with the indices of alpha 0 and 1, or ConfigError."""
    grid = _check_coords(alphas, where, "alphas")
    v = torch.as_tensor(values).detach().to(device="cpu", dtype=torch.float64)
    if v.shape != grid.shape:
        raise ConfigError(
            f"{where}: expected {name} of the alphas' shape {tuple(grid.shape)}, found "
            f"{tuple(v.shape)}; pass the {name} evaluated at these alphas"
        )
    return grid, v, _exact_index(grid, 0.0, where), _exact_index(grid, 1.0, where)


def surface_1d(
    objective: Objective, theta: torch.Tensor, direction: torch.Tensor, coords: torch.Tensor
) -> Slice1D:
    """Loss and accuracy at theta + c * direction for every c in coords (n,), as one stack.

    theta, direction (P,); the direction is cast to theta's dtype and device.
    """
    theta = _check_vector(theta, objective, "surface_1d", "theta")
    d = _check_vector(direction, objective, "surface_1d", "direction").to(theta)
    grid = _check_coords(coords, "surface_1d", "coords")
    result = objective.evaluate(theta + grid.to(theta)[:, None] * d)
    return Slice1D(grid, result.loss, result.acc)


def surface_2d(
    objective: Objective,
    theta: torch.Tensor,
    d1: torch.Tensor,
    d2: torch.Tensor,
    xcoords: torch.Tensor,
    ycoords: torch.Tensor,
    *,
    rows: slice | None = None,
    rows_per_call: int = 1,
) -> Surface2D:
    """Loss and accuracy (nx, ny) on the plane theta + x d1 + y d2 (x along the first axis).

    `rows` (a slice of the x indices) computes only those rows: loss is then (r, ny) and
    `Surface2D.rows` says which; halves computed apart concatenate to the whole. The centre
    (x = 0, y = 0) is theta exactly. `rows_per_call` rows (ny points each) go to
    `objective.evaluate` at a time.
    """
    xs = _check_coords(xcoords, "surface_2d", "xcoords")
    ys = _check_coords(ycoords, "surface_2d", "ycoords")
    if rows is not None and not isinstance(rows, slice):
        raise ConfigError(
            f"surface_2d: expected rows a slice of x indices or None, found {rows!r}; use e.g. "
            "rows=slice(0, 10), or surface_2d_rows for an arbitrary list of rows"
        )
    indices = list(range(len(xs)))[rows or slice(None)]
    parts = list(
        surface_2d_rows(objective, theta, d1, d2, xs, ys, indices, rows_per_call=rows_per_call)
    )
    empty = theta.new_empty((0, len(ys)))
    return Surface2D(
        xs,
        ys,
        torch.stack([loss for _, loss, _ in parts]) if parts else empty,
        torch.stack([acc for _, _, acc in parts]) if parts else empty,
        torch.tensor(indices, dtype=torch.int64),
    )


def surface_2d_rows(
    objective: Objective,
    theta: torch.Tensor,
    d1: torch.Tensor,
    d2: torch.Tensor,
    xcoords: torch.Tensor,
    ycoords: torch.Tensor,
    row_indices: Sequence[int],
    *,
    rows_per_call: int = 1,
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """Yield (row_index, loss_row (ny,), acc_row (ny,)) for each x index in `row_indices`.

    Row i is the line theta + xcoords[i] d1 + y d2 over all y in ycoords. Arguments are checked
    now, rows are evaluated lazily, `rows_per_call` rows per `objective.evaluate` call, so a
    caller can store each row as it arrives and resume with only the missing indices.
    """
    theta = _check_vector(theta, objective, "surface_2d_rows", "theta")
    d1 = _check_vector(d1, objective, "surface_2d_rows", "d1").to(theta)
    d2 = _check_vector(d2, objective, "surface_2d_rows", "d2").to(theta)
    xs = _check_coords(xcoords, "surface_2d_rows", "xcoords").to(theta)
    ys = _check_coords(ycoords, "surface_2d_rows", "ycoords").to(theta)
    indices = _check_rows(row_indices, len(xs))
    if isinstance(rows_per_call, bool) or not isinstance(rows_per_call, int) or rows_per_call < 1:
        raise ConfigError(
            f"surface_2d_rows: expected rows_per_call an integer >= 1, found {rows_per_call!r}; "
            "use 1 (one row of ny points per evaluate call) or more for small models"
        )
    return _rows(objective, theta, d1, d2, xs, ys, indices, rows_per_call)


def _rows(
    objective: Objective,
    theta: torch.Tensor,
    d1: torch.Tensor,
    d2: torch.Tensor,
    xs: torch.Tensor,
    ys: torch.Tensor,
    indices: list[int],
    per_call: int,
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    for start in range(0, len(indices), per_call):
        block = indices[start : start + per_call]
        base = theta + xs[block][:, None] * d1  # (r, P); x = 0 leaves theta exact
        points = base[:, None, :] + ys[None, :, None] * d2  # (r, ny, P)
        result = objective.evaluate(points.reshape(-1, theta.shape[0]))
        loss = result.loss.reshape(len(block), len(ys))
        acc = result.acc.reshape(len(block), len(ys))
        for j, i in enumerate(block):
            yield i, loss[j], acc[j]


def _anchor_indices(n: int, lo: float, hi: float) -> tuple[int, int]:
    """Grid indices of alpha 0 and 1 for n points on [lo, hi], or ConfigError."""
    finite = math.isfinite(lo) and math.isfinite(hi)
    if isinstance(n, bool) or not isinstance(n, int) or n < 2 or not (finite and lo <= 0 < 1 <= hi):
        raise ConfigError(
            f"default_alphas: expected n >= 2 points on a finite [lo, hi] with lo <= 0, hi >= 1, "
            f"found n={n!r}, lo={lo!r}, hi={hi!r}; e.g. n=41, lo=-0.5, hi=1.5"
        )
    found = _anchors(n, lo, hi)
    if found is None:
        good = next((m for m in range(n + 1, n + 10_000) if _anchors(m, lo, hi)), None)
        raise ConfigError(
            f"default_alphas: expected a spacing (hi - lo) / (n - 1) that lands on alpha 0 and "
            f"1, found step {(hi - lo) / (n - 1)!r} for n={n}, lo={lo}, hi={hi}; "
            + (f"use n={good}" if good else "choose lo and hi as multiples of 1/k")
        )
    return found


def _anchors(n: int, lo: float, hi: float) -> tuple[int, int] | None:
    positions = [(value - lo) / (hi - lo) * (n - 1) for value in (0.0, 1.0)]
    rounded = [round(p) for p in positions]
    if all(abs(p - r) < 1e-9 * n for p, r in zip(positions, rounded, strict=True)):
        return rounded[0], rounded[1]
    return None


def _exact_index(grid: torch.Tensor, value: float, where: str) -> int:
    hits = (grid == value).nonzero()
    if len(hits) == 0:
        raise ConfigError(
            f"{where}: expected alpha {value} exactly on the grid (an endpoint of the "
            f"path), found alphas from {grid.min().item()} to {grid.max().item()} without it; "
            "use default_alphas(), which puts 0 and 1 on the grid exactly"
        )
    return int(hits[0, 0])


def _check_vector(t: torch.Tensor, objective: Objective, where: str, name: str) -> torch.Tensor:
    size = objective.model.size
    if not isinstance(t, torch.Tensor) or t.dim() != 1 or len(t) != size:
        found = f"shape {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
        raise ConfigError(
            f"{where}: expected `{name}` a flat parameter vector of shape ({size},), found "
            f"{found}; flatten with the model's Layout (Layout.of_parameters(model).flatten)"
        )
    if not t.is_floating_point():
        raise ConfigError(
            f"{where}: expected `{name}` a floating-point vector, found {t.dtype}; "
            "convert it with .float()"
        )
    return t


def _check_coords(coords: torch.Tensor | Sequence[float], where: str, name: str) -> torch.Tensor:
    """coords as a finite, non-empty float64 vector (n,), or ConfigError."""
    grid = torch.as_tensor(coords).detach().to(device="cpu", dtype=torch.float64)
    if grid.dim() != 1 or len(grid) == 0 or not bool(torch.isfinite(grid).all()):
        raise ConfigError(
            f"{where}: expected `{name}` a non-empty 1-D vector of finite numbers, found shape "
            f"{tuple(grid.shape)} with values {grid.flatten()[:5].tolist()}...; build it with "
            "grid_coordinates(n, span) or default_alphas()"
        )
    return grid


def _check_rows(row_indices: Sequence[int], nx: int) -> list[int]:
    indices = [int(i) for i in row_indices]
    bad = [i for i in indices if not 0 <= i < nx]
    if bad:
        raise ConfigError(
            f"surface_2d_rows: expected row indices in [0, {nx}) (one per x coordinate), found "
            f"{bad[:5]}; pass indices of xcoords, e.g. range({nx})"
        )
    return indices


def _next_odd(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 3:
        return 3
    return n + 1 if n % 2 == 0 else n
