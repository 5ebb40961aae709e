"""Oracle tests of the curvature measures: explicit matrices, least squares, a small MLP."""

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call, grad, jacrev
from torch.nn.functional import cross_entropy

from landscape.config import DataConfig
from landscape.core.flat import FlatModel
from landscape.core.objective import Objective
from landscape.data import load_dataset
from landscape.errors import ConfigError
from landscape.measures.curvature import (
    CurvatureError,
    hessian_matrix,
    hessian_trace,
    top_eigenvalues,
)

P = 120
TOP = [10.0, 8.0, 6.0, 5.0, 4.5]  # the five largest, well separated from the bulk
MOST_NEGATIVE = -20.0  # the largest magnitude: "LA" must skip it, "LM" must find it


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_rotation(n: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen(seed), dtype=torch.float64))
    return q


@pytest.fixture(scope="module")
def spectrum() -> torch.Tensor:
    """(P,) eigenvalues: TOP, one very negative, a bulk in [-3, 1]."""
    bulk = torch.linspace(-3.0, 1.0, P - len(TOP) - 1, dtype=torch.float64)
    return torch.cat([torch.tensor([*TOP, MOST_NEGATIVE], dtype=torch.float64), bulk])


@pytest.fixture(scope="module")
def matrix(spectrum: torch.Tensor) -> torch.Tensor:
    """Symmetric (P, P) with that spectrum, in a random basis (so A is not diagonal)."""
    q = random_rotation(P, seed=1)
    a = q @ torch.diag(spectrum) @ q.T
    return (a + a.T) / 2


def test_top_k_of_an_explicit_matrix_is_exact_and_sorted(matrix):
    r = top_eigenvalues(lambda v: matrix @ v, P, k=5, generator=gen())
    assert r.eigenvalues.tolist() == pytest.approx(TOP, abs=1e-6)
    assert torch.all(r.eigenvalues[:-1] >= r.eigenvalues[1:])
    assert r.residuals.shape == (5,) and r.residuals.max() < 1e-6
    assert r.eigenvectors.shape == (P, 5)
    hv = matrix @ r.eigenvectors
    assert torch.allclose(hv, r.eigenvectors * r.eigenvalues, atol=1e-6)
    assert r.n_products > 5 and r.seconds > 0


def test_largest_magnitude_finds_the_negative_eigenvalue(matrix):
    la = top_eigenvalues(lambda v: matrix @ v, P, k=1, generator=gen())
    lm = top_eigenvalues(lambda v: matrix @ v, P, k=2, which="LM", generator=gen())
    sa = top_eigenvalues(lambda v: matrix @ v, P, k=1, which="SA", generator=gen())
    assert la.eigenvalues.item() == pytest.approx(TOP[0], abs=1e-6)
    assert lm.eigenvalues.tolist() == pytest.approx([TOP[0], MOST_NEGATIVE], abs=1e-6)
    assert sa.eigenvalues.item() == pytest.approx(MOST_NEGATIVE, abs=1e-6)


def test_same_seed_same_result_and_the_hvp_count_is_exact(matrix):
    calls = []

    def hvp(v: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return matrix @ v

    a = top_eigenvalues(hvp, P, k=3, generator=gen(7))
    b = top_eigenvalues(lambda v: matrix @ v, P, k=3, generator=gen(7))
    assert torch.equal(a.eigenvalues, b.eigenvalues) and torch.equal(a.residuals, b.residuals)
    assert torch.equal(a.eigenvectors, b.eigenvectors)
    assert a.n_products == len(calls) == b.n_products


def test_float32_products_and_no_vectors(matrix):
    a32 = matrix.float()
    seen = []

    def hvp(v: torch.Tensor) -> torch.Tensor:
        seen.append(v.dtype)
        return a32 @ v

    r = top_eigenvalues(hvp, P, k=2, generator=gen(), keep_vectors=False, dtype=torch.float32)
    assert r.eigenvectors is None and set(seen) == {torch.float32}
    assert r.eigenvalues.dtype == torch.float64
    assert r.eigenvalues.tolist() == pytest.approx(TOP[:2], rel=1e-5)


def test_bad_arguments_raise_config_errors(matrix):
    def hvp(v):
        return matrix @ v

    with pytest.raises(ConfigError, match="k < size"):
        top_eigenvalues(hvp, P, k=P, generator=gen())
    with pytest.raises(ConfigError, match="k < size"):
        top_eigenvalues(hvp, P, k=0, generator=gen())
    with pytest.raises(ConfigError, match="LA, LM, SA"):
        top_eigenvalues(hvp, P, k=2, which="BE", generator=gen())
    with pytest.raises(ConfigError, match="ncv"):
        top_eigenvalues(hvp, P, k=5, ncv=5, generator=gen())
    with pytest.raises(ConfigError, match="shape"):
        top_eigenvalues(lambda v: matrix[:3] @ v, P, k=2, generator=gen())
    with pytest.raises(ConfigError, match="n_samples"):
        hessian_trace(hvp, P, n_samples=1, generator=gen())
    with pytest.raises(ConfigError, match="rademacher"):
        hessian_trace(hvp, P, distribution="uniform", generator=gen())
    with pytest.raises(ConfigError, match="max_size"):
        hessian_matrix(hvp, P, max_size=10)


def test_budget_and_non_finite_products_raise(matrix):
    with pytest.raises(CurvatureError, match="within 12 Hessian-vector products"):
        top_eigenvalues(lambda v: matrix @ v, P, k=5, max_products=12, generator=gen())
    with pytest.raises(CurvatureError, match="not finite"):
        top_eigenvalues(lambda v: matrix @ v * float("nan"), P, k=2, generator=gen())


def test_hutchinson_trace_is_unbiased_and_its_error_shrinks(matrix, spectrum):
    exact = float(spectrum.sum())
    small = hessian_trace(lambda v: matrix @ v, P, n_samples=100, generator=gen(3))
    large = hessian_trace(lambda v: matrix @ v, P, n_samples=1600, generator=gen(4))
    for r in (small, large):
        assert abs(r.trace - exact) < 3 * r.std_error
    assert large.std_error < 0.5 * small.std_error  # 1/sqrt(n): a quarter, up to noise
    assert small.samples.shape == (100,) and small.n_products == 100
    again = hessian_trace(lambda v: matrix @ v, P, n_samples=100, generator=gen(3))
    assert torch.equal(again.samples, small.samples)
    gauss = hessian_trace(lambda v: matrix @ v, P, distribution="gaussian", generator=gen(5))
    assert abs(gauss.trace - exact) < 3 * gauss.std_error


def test_dense_matrix_from_products(matrix):
    assert torch.allclose(hessian_matrix(lambda v: matrix @ v, P), matrix, atol=1e-12)


def least_squares(
    n: int = 60, d: int = 12, device: torch.device | str = "cpu"
) -> tuple[Objective, torch.Tensor, np.ndarray]:
    """MSE of a bias-free linear model: H = 2/n X^T X, with X built to a chosen spectrum.

    Data and model on `device`; theta on the CPU (the products run on the objective's)."""
    u = random_rotation(n, seed=2)[:, :d]  # orthonormal columns
    lam = torch.tensor([9.0, 7.0, 4.0, 3.0, 2.5, 2.0, 1.5, 1.0, 0.5, 0.3, 0.2, 0.1])
    x = u @ torch.diag((n * lam.double() / 2).sqrt()) @ random_rotation(d, seed=3).T
    y = torch.randn(n, 1, generator=gen(4), dtype=torch.float64)
    model = FlatModel(nn.Linear(d, 1, bias=False).double().to(device))
    obj = Objective(model, x.to(device), y.to(device), loss="mse", classification=False)
    theta = torch.randn(d, generator=gen(5), dtype=torch.float64)
    closed_form = np.linalg.eigvalsh(2 / n * (x.T @ x).numpy())[::-1]
    return obj, theta, closed_form


def test_least_squares_hessian_matches_the_closed_form(device):
    obj, theta, exact = least_squares(device=device)
    size = theta.numel()
    hvp = obj.hvp_operator(theta)
    r = top_eigenvalues(hvp, size, k=5, generator=gen())
    np.testing.assert_allclose(r.eigenvalues.numpy(), exact[:5], rtol=1e-8)
    assert r.eigenvalues.dtype == torch.float64 and r.eigenvectors.dtype == torch.float64
    assert hvp.calls == r.n_products
    tr = hessian_trace(hvp, size, n_samples=200, generator=gen(1))
    assert abs(tr.trace - exact.sum()) < 3 * tr.std_error
    np.testing.assert_allclose(torch.linalg.eigvalsh(hessian_matrix(hvp, size)), exact[::-1])


@pytest.fixture(scope="module")
def small_mlp(device) -> tuple[Objective, torch.Tensor, torch.Tensor]:
    """MLP 64-40-10 (3,010 parameters) on 200 digits after 30 gradient steps, and the exact
    spectrum (descending) of its Hessian from a float64 jacrev(grad) that bypasses flat.py
    (on the CPU; the objective and theta live on the device under test)."""
    ds = load_dataset(DataConfig(subset=200))
    x, y = torch.from_numpy(ds.x_train), torch.from_numpy(ds.y_train)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 40), nn.ReLU(), nn.Linear(40, 10))
    flat = FlatModel(copy.deepcopy(model).to(device))
    theta = flat.layout.flatten(dict(model.named_parameters())).clone().to(device)
    obj = Objective(flat, x.to(device), y.to(device), loss="cross_entropy", classification=True)
    for _ in range(30):  # a few steps off the initialization, toward a realistic point
        theta = theta - 0.5 * obj.gradient(theta)

    def loss(t: torch.Tensor) -> torch.Tensor:
        return cross_entropy(functional_call(model, flat.layout.unflatten(t), (x.double(),)), y)

    dense = jacrev(grad(loss))(theta.double().cpu())
    return obj, theta, torch.linalg.eigvalsh((dense + dense.T) / 2).flip(0)


def test_mlp_top5_matches_the_dense_hessian_and_leaves_theta_alone(small_mlp):
    obj, theta, exact = small_mlp
    before = theta.clone()
    r = top_eigenvalues(obj.hvp_operator(theta), theta.numel(), k=5, generator=gen())
    torch.testing.assert_close(r.eigenvalues, exact[:5], rtol=1e-3, atol=0)
    assert r.residuals.max() < 1e-3
    assert r.eigenvectors.dtype == torch.float32  # the objective's own dtype
    again = top_eigenvalues(obj.hvp_operator(theta), theta.numel(), k=5, generator=gen())
    assert torch.equal(again.eigenvalues, r.eigenvalues)
    assert torch.equal(theta, before)


def test_mlp_trace_is_within_three_standard_errors(small_mlp):
    obj, theta, exact = small_mlp
    tr = hessian_trace(obj.hvp_operator(theta), theta.numel(), n_samples=200, generator=gen())
    assert abs(tr.trace - float(exact.sum())) < 3 * tr.std_error
