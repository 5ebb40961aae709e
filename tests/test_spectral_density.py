"""Oracle tests of stochastic Lanczos quadrature: a dense Hessian's exact eigenvalues."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import wasserstein_distance
from torch import nn
from torch.func import functional_call, grad, jacrev
from torch.nn.functional import cross_entropy

from landscape.config import DataConfig
from landscape.core.flat import FlatModel
from landscape.core.objective import HessianVectorProduct, Objective
from landscape.data import load_dataset
from landscape.errors import ConfigError
from landscape.measures.curvature import hessian_trace
from landscape.measures.lanczos import gauss_quadrature, lanczos, rademacher
from landscape.measures.spectral_density import negative_mass, slq, smoothed_density

N_PROBES, STEPS, ETA = 10, 80, 0.01  # fixed before any result was looked at


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ctu_bound(size: int, steps: int, n_probes: int, eta: float) -> float:
    """Chen, Trogdon & Ubaru (2021), Theorem 1 read for given steps k and probes n_v: with
    probability >= 1 - eta, W1 <= t (lambda_max - lambda_min) for every t with
    k >= 12 / t + 1/2 and n_v >= 4 t^-2 ln(2 P / eta) / (P + 2); the smallest such t is below.
    (Their probes are uniform on the sphere; a Rademacher probe has the same mean and its
    quadratic forms concentrate at least as well, Hanson-Wright.)"""
    t_lanczos = 12 / (steps - 0.5)
    t_sampling = math.sqrt(4 * math.log(2 * size / eta) / ((size + 2) * n_probes))
    return max(t_lanczos, t_sampling)


@pytest.fixture(scope="module")
def mlp_hessian() -> tuple[HessianVectorProduct, torch.Tensor, torch.Tensor, torch.Tensor]:
    """MLP 64-12-10 (910 parameters) in float64 on 100 digits after 10 gradient steps: its
    Hessian-vector products, the dense Hessian (jacrev of grad, bypassing flat.py) and its
    exact eigenvalues (ascending)."""
    torch.manual_seed(0)
    ds = load_dataset(DataConfig(subset=100))
    x, y = torch.from_numpy(ds.x_train).double(), torch.from_numpy(ds.y_train)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 12), nn.ReLU(), nn.Linear(12, 10)).double()
    flat = FlatModel(model)
    theta = flat.layout.flatten(dict(model.named_parameters())).clone()
    obj = Objective(flat, x, y, loss="cross_entropy", classification=True)
    for _ in range(10):  # off the initialization, toward a realistic point
        theta = theta - 1.0 * obj.gradient(theta)

    def loss(t: torch.Tensor) -> torch.Tensor:
        return cross_entropy(functional_call(model, flat.layout.unflatten(t), (x,)), y)

    dense = jacrev(grad(loss))(theta)
    dense = (dense + dense.T) / 2
    return obj.hvp_operator(theta), dense, torch.linalg.eigvalsh(dense), theta


def matvec(dense: torch.Tensor):
    return lambda v: dense @ v


def test_slq_is_within_the_published_wasserstein_bound_of_the_exact_spectrum(mlp_hessian):
    _, dense, exact, theta = mlp_hessian
    size = theta.numel()
    r = slq(matvec(dense), size, generator=gen(1), n_probes=N_PROBES, steps=STEPS)
    w1 = wasserstein_distance(
        exact.numpy(), r.nodes.reshape(-1).numpy(), v_weights=r.weights.reshape(-1).numpy()
    )
    spread = float(exact[-1] - exact[0])
    bound = ctu_bound(size, STEPS, N_PROBES, ETA) * spread
    print(f"W1 = {w1:.3g} ({w1 / spread:.2e} of the range {spread:.3g}); bound {bound:.3g}")
    assert w1 <= bound
    assert r.n_products == N_PROBES * STEPS
    assert float(r.nodes.max()) <= float(exact[-1]) + 1e-8  # Ritz values interlace
    assert float(r.nodes.min()) >= float(exact[0]) - 1e-8
    assert float(r.nodes.max()) == pytest.approx(float(exact[-1]), rel=1e-6)  # converged


def test_each_probe_is_a_gauss_rule_exact_to_degree_2m_minus_1(mlp_hessian):
    """sum_k w_k theta_k^j = q^T H^j q for j <= 2m - 1 (q the unit start vector)."""
    hvp, dense, exact, theta = mlp_hessian
    z = rademacher(theta.numel(), gen(2))
    m = 4  # degree 7: large powers of H lose digits, the identity holds in exact arithmetic
    nodes, weights = gauss_quadrature(lanczos(hvp, z, m))  # through flat.py's products
    q = z / z.norm()
    h = dense / float(exact.abs().max())  # scaled: every moment is O(1)
    power = q.clone()  # h^j q
    for j in range(2 * m):
        moment = float(weights @ (nodes / float(exact.abs().max())) ** j)
        assert moment == pytest.approx(float(q @ power), abs=1e-10), j
        power = h @ power


def test_the_first_moment_is_hutchinsons_estimate_with_the_same_probes(mlp_hessian):
    hvp, _, _, theta = mlp_hessian
    size = theta.numel()
    r = slq(hvp, size, generator=gen(3), n_probes=3, steps=4)
    hutchinson = hessian_trace(hvp, size, generator=gen(3), n_samples=3)
    first_moment = size * float((r.nodes * r.weights).sum()) / 3
    assert first_moment == pytest.approx(hutchinson.trace, rel=1e-9)


def test_the_smoothed_density_integrates_to_one(mlp_hessian):
    _, dense, _, theta = mlp_hessian
    r = slq(matvec(dense), theta.numel(), generator=gen(4), n_probes=3, steps=30)
    for sigma, points in ((0.01, 801), (0.002, 101), (0.2, 11)):
        grid, density, width = smoothed_density(r.nodes, r.weights, sigma=sigma, points=points)
        assert len(grid) >= points and torch.all(density >= 0)
        assert float(torch.trapezoid(density, grid)) == pytest.approx(1.0, abs=1e-3)
        spread = float(r.nodes.max() - r.nodes.min())
        assert width == pytest.approx(sigma * spread)


def test_few_distinct_eigenvalues_are_found_exactly_and_the_rows_padded():
    values = torch.tensor([-2.0] * 5 + [1.0] * 30 + [4.0] * 5, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(40, 40, generator=gen(5), dtype=torch.float64))
    a = q @ torch.diag(values) @ q.T
    r = slq(lambda v: a @ v, 40, generator=gen(6), n_probes=200, steps=12)
    assert r.nodes.shape == (200, 12) and r.n_products == 200 * 3  # stops after 3 steps
    np.testing.assert_allclose(r.nodes[:, :3], [[-2.0, 1.0, 4.0]] * 200, atol=1e-9)
    assert torch.all(r.weights[:, 3:] == 0)
    np.testing.assert_allclose(r.weights.sum(1), 1.0, atol=1e-12)
    # the mean weights estimate the multiplicities 5, 30, 5 out of 40
    np.testing.assert_allclose(r.weights[:, :3].mean(0), [0.125, 0.75, 0.125], atol=0.03)
    assert negative_mass(r.nodes, r.weights) == pytest.approx(0.125, abs=0.03)


def test_same_seed_same_result_and_float32_products(mlp_hessian):
    hvp, dense, _, theta = mlp_hessian
    a = slq(hvp, theta.numel(), generator=gen(7), n_probes=2, steps=15)
    b = slq(hvp, theta.numel(), generator=gen(7), n_probes=2, steps=15)
    assert torch.equal(theta, hvp.theta.detach())  # the point is not moved
    assert torch.equal(a.nodes, b.nodes) and torch.equal(a.weights, b.weights)
    d32 = dense.float()
    c = slq(lambda v: d32 @ v, theta.numel(), generator=gen(7), n_probes=2, steps=15,
            dtype=torch.float32)  # fmt: skip
    np.testing.assert_allclose(c.nodes[:, -1], a.nodes[:, -1], rtol=1e-4)


def test_bad_arguments_raise_config_errors():
    with pytest.raises(ConfigError, match="nonzero start"):
        lanczos(lambda v: v, torch.zeros(3, dtype=torch.float64), 2)
    with pytest.raises(ConfigError, match="steps >= 1"):
        lanczos(lambda v: v, torch.ones(3, dtype=torch.float64), 0)


def test_negative_mass_counts_only_nodes_clearly_below_zero():
    weights = torch.tensor([[0.5, 0.3, 0.2]], dtype=torch.float64)
    bulk_below_zero = torch.tensor([[-1e-6, 0.5, 5.0]], dtype=torch.float64)
    assert negative_mass(bulk_below_zero, weights) == 0.0  # the near-null bulk's sign is noise
    clearly = torch.tensor([[-0.1, 0.5, 5.0]], dtype=torch.float64)
    assert negative_mass(clearly, weights) == pytest.approx(0.5)
