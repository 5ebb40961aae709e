"""Oracle tests of Hutch++ against Hutchinson: quadratics with a known trace."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from landscape.errors import ConfigError
from landscape.measures.curvature import hessian_trace
from landscape.measures.trace_hutchpp import hutchpp_trace, split_budget

P = 300


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def quadratic(eigenvalues: torch.Tensor, seed: int = 1) -> torch.Tensor:
    """The Hessian Q diag(eigenvalues) Q^T of a quadratic, in a random orthonormal basis Q
    (a diagonal H would make every Rademacher quadratic form exact)."""
    q, _ = torch.linalg.qr(
        torch.randn(len(eigenvalues), len(eigenvalues), generator=gen(seed), dtype=torch.float64)
    )
    h = q @ torch.diag(eigenvalues.double()) @ q.T
    return (h + h.T) / 2


@pytest.fixture(scope="module")
def flat_spectrum() -> torch.Tensor:
    return quadratic(torch.linspace(-1.0, 3.0, P))


@pytest.fixture(scope="module")
def dominated() -> torch.Tensor:
    """Five large eigenvalues over a small bulk: an overfit point's kind of Hessian."""
    top = torch.tensor([400.0, 250.0, 120.0, 80.0, 50.0])
    return quadratic(torch.cat([top, torch.linspace(-0.2, 0.5, P - 5)]))


def test_the_estimate_is_within_three_standard_errors_and_spends_the_budget(flat_spectrum):
    calls = []

    def hvp(v: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return flat_spectrum @ v

    exact = float(flat_spectrum.trace())
    r = hutchpp_trace(hvp, P, n_products=90, generator=gen(2))
    assert abs(r.trace - exact) < 3 * r.std_error
    assert r.n_products == len(calls) == 90 and r.sketch_rank == 30
    assert r.residual_samples.shape == (30,)
    assert r.trace == pytest.approx(r.deflated + float(r.residual_samples.mean()))
    again = hutchpp_trace(lambda v: flat_spectrum @ v, P, n_products=90, generator=gen(2))
    assert again.trace == r.trace and torch.equal(again.residual_samples, r.residual_samples)


def test_a_low_rank_hessian_is_exact():
    h = quadratic(torch.cat([torch.tensor([5.0, -3.0, 2.0]), torch.zeros(P - 3)]))
    r = hutchpp_trace(lambda v: h @ v, P, n_products=12, generator=gen(3))
    assert r.trace == pytest.approx(4.0, abs=1e-10)
    assert r.std_error < 1e-10  # the sketch spans the range: nothing is left to sample


def test_hutchpp_beats_hutchinson_at_equal_products_with_dominant_eigenvalues(dominated):
    """Averaged over 20 seeds, at 30 products: Hutchinson's variance is 2 ||H||_F^2 minus the
    diagonal, dominated by the top eigenvalues; Hutch++ deflates them."""
    exact = float(dominated.trace())
    pp, hutch, covered = [], [], 0
    for seed in range(20):
        a = hutchpp_trace(lambda v: dominated @ v, P, n_products=30, generator=gen(seed))
        b = hessian_trace(lambda v: dominated @ v, P, n_samples=30, generator=gen(seed))
        pp.append(abs(a.trace - exact))
        hutch.append(abs(b.trace - exact))
        covered += abs(a.trace - exact) <= 2 * a.std_error
    print(f"mean |error|: Hutch++ {np.mean(pp):.3g}, Hutchinson {np.mean(hutch):.3g}")
    assert np.mean(pp) < 0.1 * np.mean(hutch)
    assert covered >= 15  # the standard error is honest: ~95% expected within 2 SE


def test_hutchinson_wins_on_a_flat_spectrum(flat_spectrum):
    """The other side of the trade: with nothing to deflate, Hutch++'s Hutchinson third has
    about 3x the variance of Hutchinson on the whole budget (RMSE ratio ~ sqrt(3))."""
    exact = float(flat_spectrum.trace())
    pp, hutch = [], []
    for seed in range(20):
        a = hutchpp_trace(lambda v: flat_spectrum @ v, P, n_products=60, generator=gen(seed))
        b = hessian_trace(lambda v: flat_spectrum @ v, P, n_samples=60, generator=gen(seed))
        pp.append((a.trace - exact) ** 2)
        hutch.append((b.trace - exact) ** 2)
    assert np.sqrt(np.mean(hutch)) < np.sqrt(np.mean(pp))


def test_float32_products_and_a_budget_larger_than_p(flat_spectrum):
    h32 = flat_spectrum.float()
    r = hutchpp_trace(lambda v: h32 @ v, P, n_products=60, generator=gen(4), dtype=torch.float32)
    assert abs(r.trace - float(flat_spectrum.trace())) < 3 * r.std_error + 1e-3
    small = torch.diag(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    s = hutchpp_trace(lambda v: small @ v, 3, n_products=12, generator=gen(5))
    assert s.sketch_rank == 3 and s.trace == pytest.approx(6.0, abs=1e-12)


def test_the_budget_split_and_its_minimum():
    assert split_budget(100, 10**6) == (33, 34)
    assert split_budget(4, 10**6) == (1, 2)
    assert split_budget(30, 5) == (5, 20)
    with pytest.raises(ConfigError, match=">= 4"):
        split_budget(3, 100)
