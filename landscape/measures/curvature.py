"""Curvature of the loss at one point: top Hessian eigenvalues (Lanczos) and the trace.

Every function takes the Hessian as a plain callable `hvp: v (P,) -> H v (P,)`, so the same
code runs on `Objective.hvp_operator(theta)` and on an explicit matrix in a test. Nothing here
sees a model: the caller's parameters cannot change.

- `top_eigenvalues`: the k algebraically largest eigenvalues by implicitly restarted Lanczos
  (ARPACK through `scipy.sparse.linalg.eigsh`), with residuals checked by extra products.
- `hessian_trace`: Hutchinson's estimate E[v^T H v] over Rademacher (or Gaussian) v.
- `hessian_matrix`: the dense H from P products, for tests and benchmarks of small models.

Random start vectors are drawn on the CPU in float64 from the caller's generator, so the same
seed gives the same numbers on any device.

>>> A = torch.diag(torch.tensor([3.0, -5.0, 1.0, 2.0], dtype=torch.float64))
>>> r = top_eigenvalues(lambda v: A @ v, 4, k=2, generator=torch.Generator().manual_seed(0))
>>> r.eigenvalues.round(decimals=9).tolist()
[3.0, 2.0]
>>> r = top_eigenvalues(lambda v: A @ v, 4, k=1, which="LM",
...                     generator=torch.Generator().manual_seed(0))
>>> r.eigenvalues.round(decimals=9).tolist(), r.n_products  # 5 Lanczos + 1 residual
([-5.0], 6)
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh
from threadpoolctl import ThreadpoolController

from landscape.errors import ConfigError
from landscape.measures.hvp_ops import (
    HVP,
    BudgetSpent,
    CountedHVP,
    CurvatureError,
    working_precision,
)

WHICH = ("LA", "LM", "SA")  # eigsh's: largest algebraic, largest magnitude, smallest algebraic
DISTRIBUTIONS = ("rademacher", "gaussian")
TINY = 1e-30  # floor of |lambda| in relative residuals, so a zero eigenvalue does not divide by 0


@dataclass(frozen=True)
class EigenResult:
    """Top-k eigenpairs of a symmetric H (the Hessian of the loss at a point).

    eigenvalues: (k,) float64, sorted descending (algebraically), units of loss / param^2.
    eigenvectors: (P, k) unit columns in the working dtype and device, column i for
        eigenvalue i; None unless `keep_vectors`.
    residuals: (k,) float64, ||H v_i - lambda_i v_i|| / max(|lambda_i|, TINY), lower is better.
    n_products: Hessian-vector products used in all (Lanczos plus k for the residuals).
    seconds: wall-clock time of the whole call.
    """

    eigenvalues: torch.Tensor
    eigenvectors: torch.Tensor | None
    residuals: torch.Tensor
    n_products: int
    seconds: float


@dataclass(frozen=True)
class TraceResult:
    """Hutchinson's estimate of tr(H).

    trace: mean of `samples`, units of loss / param^2 summed over the P directions.
    std_error: sample standard deviation / sqrt(n_samples) (the estimate's standard error).
    samples: (n_samples,) float64, v^T H v for each random v, in draw order.
    n_products: Hessian-vector products used (one per sample).
    seconds: wall-clock time of the whole call.
    """

    trace: float
    std_error: float
    samples: torch.Tensor
    n_products: int
    seconds: float


def _check_k(k: int, size: int) -> None:
    if size < 2:
        raise ConfigError(
            f"top_eigenvalues: expected size >= 2 parameters, found {size}; "
            "for one parameter H is the scalar hvp(ones(1))"
        )
    if not 1 <= k < size:
        raise ConfigError(
            f"top_eigenvalues: expected 1 <= k < size = {size} (Lanczos needs k < P), found "
            f"k = {k}; ask for fewer eigenvalues, or for all of them use "
            "torch.linalg.eigvalsh(hessian_matrix(hvp, size))"
        )


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(
            f"{name}: expected one of {', '.join(allowed)}, found {value!r}; pick one of those"
        )


def _check_positive(name: str, value: float | int | None, minimum: float) -> None:
    if value is not None and not value >= minimum:
        raise ConfigError(
            f"{name}: expected a number >= {minimum}, found {value!r}; pass one that is"
        )


def _ncv(ncv: int | None, k: int, size: int) -> int:
    """The Lanczos basis size: as given (checked), else min(P, max(8, 4k))."""
    if ncv is None:
        return min(size, max(8, 4 * k))
    if not k < ncv <= size:
        raise ConfigError(
            f"top_eigenvalues: ncv: expected k = {k} < ncv <= size = {size}, found {ncv}; "
            "leave ncv=None for the default min(P, max(8, 4k))"
        )
    return ncv


def _start_vector(size: int, generator: torch.Generator) -> np.ndarray:
    """(P,) float64 Gaussian from `generator`, drawn on the CPU so any device agrees."""
    return torch.randn(size, generator=generator, dtype=torch.float64).numpy()


@functools.cache
def _blas() -> ThreadpoolController:
    """The process's BLAS thread pools, found once (a fresh scan costs about 1 ms)."""
    return ThreadpoolController()


def _lanczos(
    op: CountedHVP, k: int, which: str, v0: np.ndarray, tol: float, ncv: int
) -> tuple[np.ndarray, np.ndarray]:
    """eigsh on `op`: eigenvalues (k,) and eigenvectors (P, k), as ARPACK returns them."""
    linear = LinearOperator((op.size, op.size), matvec=op.numpy, dtype=np.float64)
    try:
        # ARPACK's own BLAS work is small (P x ncv); multithreaded, OpenBLAS's threads keep
        # spinning after each call and take the cores from the next Hessian-vector product.
        with _blas().limit(limits=1, user_api="blas"):
            return eigsh(linear, k=k, which=which, v0=v0, tol=tol, ncv=ncv)
    except (BudgetSpent, ArpackNoConvergence):
        raise CurvatureError(
            f"top_eigenvalues: Lanczos did not reach tol = {tol:g} for k = {k} within "
            f"{op.calls} Hessian-vector products; raise max_products, loosen tol, or ask for "
            "fewer eigenvalues"
        ) from None


def _residuals(op: CountedHVP, values: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """||H v - lambda v|| / max(|lambda|, TINY) for each column of vectors (P, k): k products."""
    out = torch.empty(len(values), dtype=torch.float64)
    for i, lam in enumerate(values.tolist()):
        v = vectors[:, i]
        hv = op.torch(v.to(op.device, op.dtype)).to("cpu", torch.float64)
        out[i] = torch.linalg.vector_norm(hv - lam * v) / max(abs(lam), TINY)
    return out


def top_eigenvalues(
    hvp: HVP,
    size: int,
    k: int = 5,
    *,
    generator: torch.Generator,
    which: str = "LA",
    tol: float = 1e-6,
    max_products: int | None = None,
    ncv: int | None = None,
    keep_vectors: bool = True,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> EigenResult:
    """The k largest eigenvalues of the symmetric H behind `hvp`, by Lanczos (scipy's eigsh).

    hvp: v (P,) -> H v (P,), called with `dtype` tensors on `device`; None takes both from
        `hvp.theta` (an `Objective.hvp_operator`, float32 or float64), else float64 on the
        CPU (an explicit matrix). Use a float64 objective for tolerances below ~1e-6.
    size: P, the number of parameters. k: how many eigenvalues, 1 <= k < P.
    generator: a CPU generator for the Lanczos start vector; the same seed, the same result.
    which: "LA" the algebraically largest (the sharpest directions; default), "LM" the largest
        in magnitude (a large negative eigenvalue counts), "SA" the most negative.
    tol: stopping rule, ||H v - lambda v|| <= tol |lambda| for every pair (ARPACK's Ritz
        estimate; 0: machine precision). Eigenvalues are then accurate to about
        tol^2 |lambda| / gap: tol 1e-3 already gives ~1e-6 on trained MLPs, with fewer
        products for k = 1 (bench/HESSIAN.md). float32 products floor residuals near 1e-7.
    max_products: a hard cap on Lanczos products; exceeding it raises `CurvatureError`.
    ncv: Lanczos basis size, k < ncv <= P; None: min(P, max(8, 4k)), which on trained MLPs
        (bench/hessian.py) needs fewer products than eigsh's own max(2k + 1, 20) for k = 1
        and as few for k = 5.
    keep_vectors: return the eigenvectors (P, k) too.

    Returns an `EigenResult`: eigenvalues (k,) sorted descending, residuals (k,) from k extra
    products, and the product count. Raises `ConfigError` for bad arguments, `CurvatureError`
    when Lanczos does not converge or a product is not finite.
    """
    _check_k(k, size)
    _check_choice("top_eigenvalues: which", which, WHICH)
    _check_positive("top_eigenvalues: tol", tol, 0.0)
    _check_positive("top_eigenvalues: max_products", max_products, k + 1)
    ncv = _ncv(ncv, k, size)
    start = time.perf_counter()
    dtype, device = working_precision(hvp, dtype, device)
    op = CountedHVP(hvp, size, dtype, device, max_products)
    values, vectors = _lanczos(op, k, which, _start_vector(size, generator), tol, ncv)
    order = np.argsort(values)[::-1]  # ARPACK returns ascending; callers want descending
    lam = torch.from_numpy(values[order].copy())
    vec = torch.from_numpy(vectors[:, order].copy())
    op.budget = None  # the residual check is not part of the Lanczos budget
    res = _residuals(op, lam, vec)
    kept = vec.to(device, dtype) if keep_vectors else None
    return EigenResult(lam, kept, res, op.calls, time.perf_counter() - start)


def _probe(size: int, distribution: str, generator: torch.Generator) -> torch.Tensor:
    """(P,) float64 on the CPU: Rademacher +-1 or standard Gaussian, from `generator`."""
    if distribution == "rademacher":
        bits = torch.randint(0, 2, (size,), generator=generator, dtype=torch.int64)
        return bits.to(torch.float64) * 2 - 1
    return torch.randn(size, generator=generator, dtype=torch.float64)


def hessian_trace(
    hvp: HVP,
    size: int,
    *,
    generator: torch.Generator,
    n_samples: int = 100,
    distribution: str = "rademacher",
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> TraceResult:
    """Hutchinson's estimate of tr(H): the mean of v^T H v over n_samples random v.

    hvp, size, dtype, device: as in `top_eigenvalues`. generator: draws the probes, one after
    another, so the same seed gives the same samples. distribution: "rademacher" (entries
    +-1, the lower-variance choice) or "gaussian". n_samples >= 2 (the standard error needs
    two).

    Returns a `TraceResult`: the estimate, its standard error, the samples (n_samples,).
    """
    _check_choice("hessian_trace: distribution", distribution, DISTRIBUTIONS)
    _check_positive("hessian_trace: n_samples", n_samples, 2)
    _check_positive("hessian_trace: size", size, 1)
    start = time.perf_counter()
    dtype, device = working_precision(hvp, dtype, device)
    op = CountedHVP(hvp, size, dtype, device, None)
    samples = torch.empty(n_samples, dtype=torch.float64)
    for i in range(n_samples):
        v = _probe(size, distribution, generator)
        hv = op.torch(v.to(op.device, dtype)).to("cpu", torch.float64)
        samples[i] = torch.dot(v, hv)
    std_error = float(samples.std(correction=1)) / n_samples**0.5
    return TraceResult(
        float(samples.mean()), std_error, samples, op.calls, time.perf_counter() - start
    )


def hessian_matrix(
    hvp: HVP,
    size: int,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    max_size: int = 8192,
) -> torch.Tensor:
    """The dense H (P, P) float64 on the CPU, column j = H e_j: P products.

    Symmetrized as (H + H^T) / 2 so that rounding in the products cannot make
    `torch.linalg.eigvalsh` (which reads one triangle) depend on the triangle. Refuses
    P > max_size (P^2 float64 bytes: 8192 parameters is 0.5 GB).
    """
    if not 1 <= size <= max_size:
        gb = size**2 * 8 / 2**30
        raise ConfigError(
            f"hessian_matrix: expected 1 <= size <= max_size = {max_size}, found {size} "
            f"({gb:.1f} GB as float64); use top_eigenvalues / hessian_trace, or raise max_size"
        )
    dtype, device = working_precision(hvp, dtype, device)
    op = CountedHVP(hvp, size, dtype, device, None)
    h = torch.empty(size, size, dtype=torch.float64)
    for j in range(size):
        e = torch.zeros(size, dtype=dtype, device=op.device)
        e[j] = 1
        h[:, j] = op.torch(e).to("cpu", torch.float64)
    return (h + h.T) / 2
