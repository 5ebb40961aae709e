"""The Hessian's spectral density at a final point, by stochastic Lanczos quadrature (SLQ).

Ubaru, Chen & Saad (2017); Ghorbani, Krishnan & Xiao (2019): from each of `n_probes` random
+-1 vectors z, `steps` Lanczos steps give a Gauss quadrature rule (nodes theta_k, weights w_k)
of the measure sum_i (z^T u_i)^2 / |z|^2 delta(lambda_i); its mean over probes approximates the
eigenvalue distribution (1/P) sum_i delta(lambda_i). The raw nodes and weights are stored, so a
user can re-smooth; the stored density is their sum of Gaussians of width sigma on a grid.

Chen, Trogdon & Ubaru (2021) bound the Wasserstein-1 distance to the true distribution by
t (lambda_max - lambda_min) with probability 1 - eta when steps >= 12 / t + 1/2 and
n_probes >= 4 t^-2 ln(2 P / eta) / (P + 2): the steps set the resolution (about range / steps)
and, for large P, one or two probes already suffice. tests/test_spectral_density.py checks it
against a dense Hessian.

>>> H = torch.diag(torch.tensor([-1.0, 2.0, 2.0, 3.0], dtype=torch.float64))
>>> r = slq(lambda v: H @ v, 4, n_probes=2, steps=10, generator=torch.Generator().manual_seed(0))
>>> r.nodes[0].round(decimals=6).tolist()  # 3 distinct eigenvalues: Lanczos stops at 3 steps
[-1.0, 2.0, 3.0, 3.0]
>>> r.weights[0].round(decimals=6).tolist()  # (z^T u_i)^2 / P; the padded node has weight 0
[0.25, 0.5, 0.25, 0.0]
>>> negative_mass(r.nodes, r.weights), r.n_products
(0.25, 6)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from landscape.measures.common import all_runs
from landscape.measures.hessian import final_hvp
from landscape.measures.hvp_ops import HVP, CurvatureError
from landscape.measures.lanczos import gauss_quadrature, lanczos, rademacher
from landscape.measures.spec import CURV, Context, MeasureSpec, Setting, Stored
from landscape.store.summary import Scalar

if TYPE_CHECKING:
    from landscape.measures.settings import AnalysisConfig

INVERSE_CURV = "parameter^2 / loss"  # a density over eigenvalues (loss / parameter^2)
NEGATIVE_TOL = 1e-3  # "negative": below -1e-3 of the largest |eigenvalue| (see negative_mass)
TAIL = 6.0  # the grid reaches TAIL sigma past the extreme nodes: Gaussian mass lost < 2e-9

PROBES = Setting(
    "density_probes",
    3,
    "spectral density: Rademacher probes (one Lanczos run each)",
    "int",
    "an integer >= 1",
    lambda v: v >= 1,
    maximum=10_000,
)
STEPS = Setting(
    "density_steps",
    60,
    "spectral density: Lanczos steps per probe (resolution about range / steps)",
    "int",
    "an integer >= 2",
    lambda v: v >= 2,
    maximum=10_000,
)
SIGMA = Setting(
    "density_sigma",
    0.01,
    "spectral density: Gaussian width of the smoothed density, as a fraction of the range of "
    "the Ritz nodes",
    "float",
    "a number in (0, 1]",
    lambda v: 0 < v <= 1,
)
GRID_POINTS = Setting(
    "density_points",
    801,
    "spectral density: points of the smoothed density's grid (more if sigma needs them)",
    "int",
    "an integer >= 11",
    lambda v: v >= 11,
    maximum=1_000_000,
)


@dataclass(frozen=True)
class SpectralDensity:
    """The SLQ spectral measure: sum over probes l and nodes k of weights[l, k] / n_probes
    at nodes[l, k].

    nodes: (n_probes, steps) float64, each row ascending, loss / param^2. A probe whose Lanczos
        stopped early (its Krylov space closed: exact) is padded with its last node, weight 0.
    weights: (n_probes, steps) float64 >= 0, each row summing to 1.
    n_products: Hessian-vector products used (n_probes * steps unless Lanczos stopped early).
    seconds: wall-clock time.
    """

    nodes: torch.Tensor
    weights: torch.Tensor
    n_products: int
    seconds: float


def slq(
    hvp: HVP,
    size: int,
    *,
    generator: torch.Generator,
    n_probes: int = 3,
    steps: int = 60,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> SpectralDensity:
    """Stochastic Lanczos quadrature of the symmetric H behind `hvp` (P = `size`).

    Probes are Rademacher vectors drawn one after another from `generator` (CPU), so the same
    seed gives the same result on any device. hvp, dtype, device: as in
    `curvature.top_eigenvalues`. Cost: n_probes * min(steps, P) products.
    """
    start = time.perf_counter()
    width = min(steps, size)
    nodes = torch.empty(n_probes, width, dtype=torch.float64)
    weights = torch.zeros(n_probes, width, dtype=torch.float64)
    products = 0
    for i in range(n_probes):
        t = lanczos(hvp, rademacher(size, generator), steps, dtype=dtype, device=device)
        theta, w = gauss_quadrature(t)
        nodes[i, : t.steps], nodes[i, t.steps :] = theta.cpu(), theta[-1].cpu()
        weights[i, : t.steps] = w.cpu()
        products += t.n_products
    return SpectralDensity(nodes, weights, products, time.perf_counter() - start)


def smoothed_density(
    nodes: torch.Tensor, weights: torch.Tensor, *, sigma: float, points: int
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The SLQ measure convolved with a Gaussian: grid (n,), density (n,) and its width.

    nodes, weights: (n_probes, steps) as in `SpectralDensity`. sigma: the Gaussian's standard
    deviation as a fraction of the nodes' range (max - min; |max| when all nodes are equal).
    The grid spans the nodes +- 6 widths with at least `points` points and at most half a
    width between them, so the trapezoid rule integrates the density to 1 within ~1e-8.
    Returns grid (loss / param^2), density (param^2 / loss) and the absolute width.
    """
    lo, hi = float(nodes.min()), float(nodes.max())
    width = sigma * max(hi - lo, abs(hi), abs(lo), 1e-30)
    n = max(points, math.ceil((hi - lo + 2 * TAIL * width) / (width / 2)) + 1)
    grid = torch.linspace(lo - TAIL * width, hi + TAIL * width, n, dtype=torch.float64)
    mass = (weights / len(weights)).reshape(-1)
    z = (grid[:, None] - nodes.reshape(1, -1)) / width  # (n, probes * steps)
    gauss = torch.exp(-0.5 * z**2) / (width * math.sqrt(2 * math.pi))
    return grid, gauss @ mass, width


def negative_mass(nodes: torch.Tensor, weights: torch.Tensor) -> float:
    """The SLQ measure's weight on nodes below -NEGATIVE_TOL * max |node|, in [0, 1].

    Nodes that close to 0 count as 0: a network's Hessian has a large near-null bulk, which
    Gauss quadrature puts on one node whose sign is rounding noise (on the quick preset's
    points 60-85% of the weight sits on a node within 1e-4 of 0, on either side)."""
    threshold = -NEGATIVE_TOL * float(nodes.abs().max())
    return float((weights * (nodes < threshold)).sum() / len(weights))


def _compute(ctx: Context, run_id: str) -> tuple[dict, dict]:
    hvp, size = final_hvp(ctx, run_id)
    cfg = ctx.cfg
    try:
        r = slq(
            hvp, size, generator=ctx.generator, n_probes=cfg.density_probes, steps=cfg.density_steps
        )
    except CurvatureError as e:  # a non-finite product: stored as NaN with the reason
        return _failed(cfg, run_id, hvp.calls, str(e))
    grid, density, width = smoothed_density(
        r.nodes, r.weights, sigma=cfg.density_sigma, points=cfg.density_points
    )
    values = {
        "nodes": r.nodes,
        "weights": r.weights,
        "eigenvalue": grid,
        "density": density,
        "width": torch.tensor(width, dtype=torch.float64),
        "negative_mass": torch.tensor(negative_mass(r.nodes, r.weights), dtype=torch.float64),
        "max_node": r.nodes.max(),
    }
    headline = (
        f"max node {float(r.nodes.max()):.4g}, negative mass {float(values['negative_mass']):.3g}"
    )
    attrs = {"run": run_id, "n_products": r.n_products, "failed": "", "headline": headline}
    return values, attrs


def _failed(cfg: AnalysisConfig, run_id: str, products: int, reason: str) -> tuple[dict, dict]:
    """Every array NaN (never hidden), with the reason: Lanczos met a non-finite product."""
    nan = float("nan")
    values = {
        "nodes": torch.full((cfg.density_probes, 1), nan),
        "weights": torch.full((cfg.density_probes, 1), nan),
        "eigenvalue": torch.full((cfg.density_points,), nan),
        "density": torch.full((cfg.density_points,), nan),
        **{k: torch.tensor(nan) for k in ("width", "negative_mass", "max_node")},
    }
    attrs = {"run": run_id, "n_products": products, "failed": reason, "headline": "failed"}
    return values, attrs


SPEC = MeasureSpec(
    name="spectral_density",
    description="Hessian spectral density at the final point (stochastic Lanczos quadrature: "
    "raw Ritz nodes and weights, and a Gaussian-smoothed density)",
    needs="run (its final point)",
    keys=all_runs,
    compute=_compute,
    settings=(PROBES, STEPS, SIGMA, GRID_POINTS),
    arrays=(
        Stored(
            "nodes",
            "Ritz values (Gauss nodes) of each probe's Lanczos run, one row per "
            "probe, ascending (padded with weight 0 if Lanczos stopped early)",
            CURV,
        ),
        Stored(
            "weights",
            "Gauss weights of the nodes (squared first eigenvector components "
            "of the tridiagonal), one row per probe, each row summing to 1",
            "1",
        ),
        Stored("eigenvalue", "grid of the smoothed density", CURV, ("eigenvalue",)),
        Stored(
            "density",
            "SLQ spectral density, Gaussian-smoothed (integrates to 1)",
            INVERSE_CURV,
            ("eigenvalue",),
        ),
        Stored("width", "standard deviation of the smoothing Gaussian", CURV),
        Stored(
            "negative_mass",
            "fraction of the spectral weight on nodes below -1e-3 max |node|",
            "fraction",
        ),
        Stored("max_node", "largest Ritz value over the probes (<= lambda_max)", CURV),
    ),
    scalars=(
        Scalar(
            "density_negative_mass",
            "spectral weight below −0.1% of |λ|max (SLQ)",
            "fraction",
            "negative_mass",
            headline="present",
        ),
        Scalar("density_max_node", "largest SLQ node (≈ λ_max)", "loss / parameter²", "max_node"),
    ),
    figures=("spectral_density",),
)
