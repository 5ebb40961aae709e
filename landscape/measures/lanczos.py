"""The Lanczos tridiagonalization with full reorthogonalization, and its Gauss quadrature.

`lanczos` runs m steps on the symmetric H behind `hvp` from one start vector and returns the
tridiagonal T = Q^T H Q (diagonal alpha, off-diagonal beta). `gauss_quadrature` turns T into
the Gauss quadrature rule of the start vector's spectral measure (Golub & Welsch 1969): nodes
= eigenvalues of T (Ritz values), weights = squared first components of T's eigenvectors.
Averaged over random start vectors this is stochastic Lanczos quadrature (Ubaru, Chen & Saad
2017; Ghorbani, Krishnan & Xiao 2019), which `spectral_density` builds on.

Unlike `curvature.top_eigenvalues` (ARPACK, restarted, converges to a few extreme pairs) this
keeps every step: the whole tridiagonal is the result, not a few converged eigenpairs.

>>> A = torch.diag(torch.tensor([1.0, 2.0, 2.0, 5.0], dtype=torch.float64))
>>> t = lanczos(lambda v: A @ v, torch.ones(4, dtype=torch.float64), steps=4)
>>> t.steps, t.n_products  # stops at 3: the start vector sees only 3 distinct eigenvalues
(3, 3)
>>> nodes, weights = gauss_quadrature(t)
>>> nodes.round(decimals=9).tolist(), weights.round(decimals=9).tolist()
([1.0, 2.0, 5.0], [0.25, 0.5, 0.25])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from landscape.errors import ConfigError
from landscape.measures.hvp_ops import HVP, CountedHVP, working_precision

# beta_j below this fraction of the largest |alpha| or beta seen so far: the Krylov space is
# exhausted (an invariant subspace), and the next vector would be rounding noise.
BREAKDOWN = 1e-10


@dataclass(frozen=True)
class Tridiagonal:
    """T = Q^T H Q after `steps` Lanczos steps.

    alpha: (steps,) float64, the diagonal (Rayleigh quotients q_j^T H q_j), loss / param^2.
    beta: (steps - 1,) float64 >= 0, the off-diagonal.
    n_products: Hessian-vector products used (one per step).
    """

    alpha: torch.Tensor
    beta: torch.Tensor
    n_products: int

    @property
    def steps(self) -> int:
        return len(self.alpha)


def rademacher(size: int, generator: torch.Generator) -> torch.Tensor:
    """(P,) float64 on the CPU with entries +-1, drawn from `generator` (the same draw as
    `curvature.hessian_trace`'s probes, so equal seeds give equal probes)."""
    bits = torch.randint(0, 2, (size,), generator=generator, dtype=torch.int64)
    return bits.to(torch.float64) * 2 - 1


def lanczos(
    hvp: HVP,
    start: torch.Tensor,
    steps: int,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tridiagonal:
    """`steps` Lanczos steps on H from `start` (P,), fully reorthogonalized.

    hvp: v (P,) -> H v (P,); dtype/device of the products as in `curvature.top_eigenvalues`
        (None: those of `hvp.theta`, else float64 on the CPU).
    start: (P,) any nonzero vector (normalized here), e.g. `rademacher(P, generator)`.
    steps: 1 <= steps; at most P are taken, fewer when the Krylov space closes early.

    The basis Q (steps, P) is kept in float64 on the products' device (8 * steps * P bytes:
    80 steps of a 1M-parameter net is 640 MB) and every new vector is orthogonalized against
    all of it twice (classical Gram-Schmidt, "twice is enough"): without this, rounding makes
    Lanczos repeat converged Ritz values ("ghosts"), which would put spurious mass at the
    spectrum's edges.
    """
    size = start.numel()
    if steps < 1 or size < 1 or not float(start.norm()) > 0:
        raise ConfigError(
            f"lanczos: expected steps >= 1 and a nonzero start vector, found steps = {steps} "
            f"and |start| = {float(start.norm()):g}; pass e.g. rademacher(P, generator)"
        )
    dtype, dev = working_precision(hvp, dtype, device)
    op = CountedHVP(hvp, size, dtype, dev, None)
    q = start.to(dev, torch.float64)
    basis = torch.empty(min(steps, size), size, dtype=torch.float64, device=dev)
    basis[0] = q / q.norm()
    alpha: list[float] = []
    beta: list[float] = []
    for j in range(len(basis)):
        w = op.torch(basis[j].to(dtype)).to(torch.float64)
        alpha.append(float(basis[j] @ w))
        w = _orthogonalize(w, basis[: j + 1])
        if j + 1 == len(basis):
            break
        b = float(w.norm())
        if b <= BREAKDOWN * max(max(map(abs, alpha)), max(beta, default=0.0)):
            break  # the start vector lies in an invariant subspace: T is exact already
        beta.append(b)
        basis[j + 1] = w / b
    return Tridiagonal(
        torch.tensor(alpha, dtype=torch.float64), torch.tensor(beta, dtype=torch.float64), op.calls
    )


def _orthogonalize(w: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """w minus its projection on the rows of basis (k, P), done twice.

    This also removes the three-term recurrence's alpha_j q_j + beta_{j-1} q_{j-1}: those are
    w's components on the last two rows, so the full projection covers them."""
    for _ in range(2):
        w = w - basis.T @ (basis @ w)
    return w


def gauss_quadrature(t: Tridiagonal) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes (m,) ascending and weights (m,) summing to 1 of T's Gauss quadrature rule.

    For the start vector q (unit), sum_k weights_k f(nodes_k) approximates q^T f(H) q, exactly
    for polynomials f of degree <= 2m - 1. nodes are in loss / param^2, weights are unitless.
    """
    m = t.steps
    tri = torch.diag(t.alpha)
    if m > 1:
        tri += torch.diag(t.beta, 1) + torch.diag(t.beta, -1)
    nodes, vectors = torch.linalg.eigh(tri)
    weights = vectors[0] ** 2
    return nodes, weights / weights.sum()  # the sum is 1 up to rounding; make it exact
