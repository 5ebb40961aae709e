"""Sharpness measures against closed forms: MSE linear regression at its least-squares minimum.

There L(theta* + delta) = L(theta*) + 1/2 delta^T H delta exactly, with H = 2/n Xa^T Xa, so
the box maximum (a convex quadratic peaks at a vertex) and the loss increase along any
direction are known exactly.
"""

import itertools
import math

import pytest
import torch
from torch import nn

from landscape.core.flat import FlatModel
from landscape.core.objective import Objective
from landscape.errors import ConfigError
from landscape.measures.directions import random_direction
from landscape.measures.sharpness import epsilon_sharpness, perturbation_sharpness

F64 = torch.float64
METHODS = ["lbfgsb", "pga"]


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def regression(x, y, device="cpu"):
    """Objective, least-squares minimum theta* (P,) and exact Hessian (P, P) of MSE on (x, y).

    The objective evaluates on `device`; theta* and the Hessian stay on the CPU."""
    n, d = x.shape
    model = FlatModel(nn.Linear(d, 1).double().to(device))
    objective = Objective(model, x.to(device), y.to(device), loss="mse", classification=False)
    xa = torch.cat([x, torch.ones(n, 1, dtype=F64)], dim=1)  # weight, then bias
    theta = torch.linalg.lstsq(xa, y).solution[:, 0]
    return objective, theta, 2 / n * xa.T @ xa


def diagonal_design(seed=0, n=64, device="cpu"):
    """Orthogonal centred columns of distinct scales plus 1% noise: H is nearly diagonal, so
    every vertex of the box is within 0.5% of the maximum (off-diagonal mass ~0.3% of trace)."""
    g = gen(seed)
    x = torch.randn(n, 5, generator=g, dtype=F64)
    x = x - x.mean(dim=0)  # orthogonal to the bias column
    q, _ = torch.linalg.qr(x)
    x = q * n**0.5 * torch.tensor([3.0, 2.0, 1.5, 1.0, 0.5], dtype=F64) + 0.01 * x
    return regression(x, torch.randn(n, 1, generator=g, dtype=F64), device)


def coupled_design(seed=0, n=64, device="cpu"):
    """Columns dominated by one shared factor: the worst vertex is worth 1.5% of the best."""
    g = gen(seed)
    x = 0.3 * torch.randn(n, 5, generator=g, dtype=F64)
    z = torch.randn(n, 1, generator=g, dtype=F64)
    x = x + z @ torch.tensor([[2.0, -1.0, 1.5, 0.5, -3.0]], dtype=F64)
    return regression(x, torch.randn(n, 1, generator=g, dtype=F64), device)


def box_maximum(objective, theta, hessian, epsilon):
    """Exact epsilon-sharpness (percent): 1/2 delta^T H delta over all 2^P box vertices."""
    widths = epsilon * (theta.abs() + 1)
    signs = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=len(theta))), dtype=F64)
    deltas = signs * widths  # (2^P, P)
    increase = 0.5 * ((deltas @ hessian) * deltas).sum(dim=1).max()
    base = float(objective.value(theta))
    return 100 * float(increase) / (1 + base)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", [0, 1])
def test_epsilon_sharpness_reaches_the_box_maximum_of_a_quadratic(method, seed, device):
    objective, theta, hessian = diagonal_design(seed, device=device)
    exact = box_maximum(objective, theta, hessian, 1e-3)
    r = epsilon_sharpness(objective, theta, epsilon=1e-3, method=method, generator=gen(seed))
    assert r.finite and r.method == method and r.epsilon == 1e-3
    # an interior point scores about a third of this: every coordinate must reach its bound
    assert 0.99 * exact <= r.sharpness <= exact * (1 + 1e-9)
    assert r.max_loss > r.base_loss
    widths = 1e-3 * (theta.abs() + 1)
    assert r.delta_norm == pytest.approx(float(widths.norm()), rel=1e-9)  # a vertex


@pytest.mark.parametrize("method", METHODS)
def test_epsilon_sharpness_is_a_lower_bound_on_a_coupled_quadratic(method):
    # Local ascent may stop at a lesser vertex; it must never report more than the maximum,
    # and on this design it lands far above the worst vertex (1.5% of the best).
    objective, theta, hessian = coupled_design()
    exact = box_maximum(objective, theta, hessian, 1e-3)
    r = epsilon_sharpness(objective, theta, epsilon=1e-3, method=method, generator=gen())
    assert 0.9 * exact <= r.sharpness <= exact * (1 + 1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_epsilon_sharpness_away_from_the_minimum(method):
    # There the gradient term dominates a small box (as at a trained network's point): the
    # search must still cross the box, not creep along a gradient of size ~epsilon.
    g = gen(4)
    x = torch.randn(64, 5, generator=g, dtype=F64)
    objective, theta_star, _ = regression(x, torch.randn(64, 1, generator=g, dtype=F64))
    theta = theta_star + 0.3
    xa = torch.cat([x, torch.ones(64, 1, dtype=F64)], dim=1)
    widths = 1e-3 * (theta.abs() + 1)
    signs = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=6)), dtype=F64)
    vertices = theta + signs * widths  # (64, P): the box maximum of a convex loss is one
    losses = ((vertices @ xa.T - objective.y[:, 0]) ** 2).mean(dim=1)
    base = float(objective.value(theta))
    exact = 100 * (float(losses.max()) - base) / (1 + base)
    r = epsilon_sharpness(objective, theta, epsilon=1e-3, method=method, generator=gen())
    assert r.sharpness == pytest.approx(exact, rel=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_epsilon_sharpness_crosses_a_high_dimensional_box(method):
    # P = 2001: a unit step of L-BFGS-B moves each coordinate ~1/45 of its half-width, so an
    # unscaled search creeps (it reached 18% of this); the first-order vertex
    # theta + w * sign(grad) is a lower bound on the box maximum.
    g = gen(5)
    x = torch.randn(128, 2000, generator=g, dtype=F64)
    objective, _, _ = regression(x, torch.randn(128, 1, generator=g, dtype=F64))
    theta = 0.02 * torch.randn(2001, generator=g, dtype=F64)
    vertex = theta + 1e-3 * (theta.abs() + 1) * torch.sign(objective.gradient(theta))
    base, first_order = float(objective.value(theta)), float(objective.value(vertex))
    r = epsilon_sharpness(objective, theta, epsilon=1e-3, method=method, generator=gen())
    assert r.sharpness >= 0.99 * 100 * (first_order - base) / (1 + base)


def test_epsilon_sharpness_grows_as_epsilon_squared_on_a_quadratic():
    objective, theta, _ = diagonal_design()
    small, large = (
        epsilon_sharpness(objective, theta, epsilon=e, method="pga", generator=gen())
        for e in (1e-3, 2e-3)
    )
    assert large.sharpness / small.sharpness == pytest.approx(4.0, rel=0.01)


@pytest.mark.parametrize("method", METHODS)
def test_epsilon_sharpness_same_seed_same_result_theta_unchanged(method, device):
    objective, theta, _ = coupled_design(device=device)
    before = theta.clone()
    a, b = (
        epsilon_sharpness(objective, theta, method=method, max_iter=5, generator=gen(3))
        for _ in range(2)
    )
    assert a == b
    assert torch.equal(theta, before)
    assert a.sharpness >= 0  # theta is a minimum
    if method == "pga":
        assert a.n_evaluations == 5 + 2  # max_iter steps, the last point, and base_loss


def test_epsilon_sharpness_nonfinite_base_is_reported_not_hidden():
    objective, theta, _ = diagonal_design()
    bad = theta.clone()
    bad[0] = math.nan
    r = epsilon_sharpness(objective, bad, generator=gen())
    assert not r.finite and math.isnan(r.sharpness) and math.isnan(r.base_loss)


def test_perturbation_increase_is_the_quadratic_form_and_scales_as_r_squared(device):
    objective, theta, hessian = coupled_design(device=device)
    layout = objective.model.layout
    radii = [0.1, 0.25, 0.5]
    r = perturbation_sharpness(
        objective, theta, layout, radius=radii, n_directions=4, generator=gen(7)
    )
    g = gen(7)  # the same draws, in the same order
    d = torch.stack([random_direction(theta, layout, generator=g) for _ in range(4)])
    curvature = 0.5 * ((d @ hessian) * d).sum(dim=1)  # (n,) 1/2 d^T H d
    expected = curvature[:, None] * torch.tensor(radii, dtype=F64) ** 2
    torch.testing.assert_close(r.increases, expected, rtol=1e-7, atol=1e-12)
    torch.testing.assert_close(r.mean, expected.mean(dim=0), rtol=1e-7, atol=1e-12)
    torch.testing.assert_close(r.std, expected.std(dim=0), rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(r.radii, torch.tensor(radii, dtype=F64))
    assert (r.increases >= 0).all() and r.finite
    assert torch.isnan(r.acc_drop).all()  # regression has no accuracy


def test_perturbation_same_seed_same_result_theta_unchanged(device):
    objective, theta, _ = diagonal_design(device=device)
    before = theta.clone()
    a, b = (
        perturbation_sharpness(
            objective, theta, objective.model.layout, radius=0.3, n_directions=3, generator=gen(2)
        )
        for _ in range(2)
    )
    assert torch.equal(a.increases, b.increases) and a.base_loss == b.base_loss
    assert torch.equal(theta, before)
    assert a.increases.shape == (3, 1) and a.mean.shape == (1,)


def test_perturbation_flat_direction_gives_zero_increase():
    # x = 0: the weights (the only entries a biasbn direction moves) do not affect the loss
    x = torch.zeros(16, 3, dtype=F64)
    y = torch.randn(16, 1, generator=gen(), dtype=F64)
    objective, _, _ = regression(x, y)
    theta = torch.tensor([1.0, -2.0, 0.5, float(y.mean())], dtype=F64)
    r = perturbation_sharpness(
        objective, theta, objective.model.layout, radius=[0.5, 2.0], generator=gen()
    )
    assert torch.equal(r.increases, torch.zeros(10, 2, dtype=F64))


def test_perturbation_accuracy_drop_on_a_classifier():
    template = nn.Linear(2, 3)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 2])
    objective = Objective(FlatModel(template), x, y, loss="cross_entropy", classification=True)
    theta = torch.tensor([5.0, 0, 0, 0, 0, 5.0, 0, 0, 0])  # both points right
    r = perturbation_sharpness(
        objective, theta, objective.model.layout, radius=[0.1, 3.0], n_directions=1, generator=gen()
    )
    assert r.base_acc == 1.0
    assert r.acc_drop[0, 0] == 0.0  # a 10% kick keeps both margins
    assert ((r.acc_drop >= 0) & (r.acc_drop <= 1)).all()
    assert torch.isnan(r.std).all()  # one direction: no spread to report


def test_perturbation_nonfinite_is_reported_not_hidden():
    objective, theta, _ = diagonal_design()
    bad = theta.clone()
    bad[0] = math.inf
    r = perturbation_sharpness(
        objective, bad, objective.model.layout, radius=0.1, n_directions=2, generator=gen()
    )
    assert not r.finite and not torch.isfinite(r.increases).all()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epsilon": 0.0},
        {"epsilon": -1e-3},
        {"epsilon": math.nan},
        {"epsilon": math.inf},
        {"method": "adam"},
        {"max_iter": 0},
        {"generator": 0},
    ],
)
def test_epsilon_sharpness_rejects_bad_arguments(kwargs):
    objective, theta, _ = diagonal_design()
    with pytest.raises(ConfigError):
        epsilon_sharpness(objective, theta, **{"generator": gen(), **kwargs})


def test_epsilon_sharpness_rejects_a_theta_of_the_wrong_size():
    objective, theta, _ = diagonal_design()
    with pytest.raises(ConfigError, match=r"\(6,\)"):
        epsilon_sharpness(objective, theta[:3], generator=gen())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_directions": 0},
        {"n_directions": 2.5},
        {"radius": 0.0},
        {"radius": [0.1, -0.1]},
        {"radius": []},
        {"radius": "big"},
        {"ignore": "all"},
        {"generator": None},
    ],
)
def test_perturbation_sharpness_rejects_bad_arguments(kwargs):
    objective, theta, _ = diagonal_design()
    args = {"radius": 0.1, "generator": gen(), **kwargs}
    with pytest.raises(ConfigError):
        perturbation_sharpness(objective, theta, objective.model.layout, **args)
