"""The Hessian trace of the clean training loss at a final point by Hutch++, with its standard
error, at the same number of Hessian-vector products as Hutchinson's (`trace_samples`).

Hutch++ (Meyer, Musco, Musco & Woodruff 2021) spends a third of the budget on a sketch H S of
Rademacher S (P, k), takes an orthonormal basis Q of it, computes tr(Q^T H Q) exactly with a
second third, and estimates the trace of the deflated rest (I - QQ^T) H (I - QQ^T) with the
last third by Hutchinson. When a few large eigenvalues dominate H (as at an overfit point), Q
catches them and the Hutchinson part only sees the small rest: its variance, hence the error,
falls. The standard error reported is that of the Hutchinson part (the deflated part is exact
given Q).

>>> g = torch.Generator().manual_seed(1)
>>> q, _ = torch.linalg.qr(torch.randn(100, 100, generator=g, dtype=torch.float64))
>>> A = q @ torch.diag(torch.tensor([100.0, 50.0] + [0.01] * 98, dtype=torch.float64)) @ q.T
>>> r = hutchpp_trace(lambda v: A @ v, 100, n_products=12, generator=g.manual_seed(0))
>>> round(float(A.trace()), 2), round(r.trace, 2), round(r.std_error, 3), r.n_products
(150.98, 150.97, 0.017, 12)
>>> from landscape.measures.curvature import hessian_trace
>>> h = hessian_trace(lambda v: A @ v, 100, n_samples=12, generator=g.manual_seed(0))
>>> round(h.trace, 1), round(h.std_error, 1)  # Hutchinson, the same 12 products
(226.1, 43.5)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from landscape.errors import ConfigError
from landscape.measures.common import all_runs
from landscape.measures.hessian import final_hvp
from landscape.measures.hvp_ops import HVP, CountedHVP, working_precision
from landscape.measures.lanczos import rademacher
from landscape.measures.spec import CURV, Context, MeasureSpec, Stored
from landscape.measures.trace import TRACE_SAMPLES
from landscape.store.summary import Scalar


@dataclass(frozen=True)
class HutchppResult:
    """Hutch++'s estimate of tr(H), loss / param^2 summed over the P directions.

    trace: deflated + mean(residual_samples).
    std_error: standard error of the Hutchinson part: std(residual_samples) / sqrt(r).
    deflated: tr(Q^T H Q), the trace on the sketch's range (exact given Q).
    residual_samples: (r,) float64, g^T (I - QQ^T) H (I - QQ^T) g per Rademacher g.
    sketch_rank: k, the columns of Q.
    n_products: Hessian-vector products used (k + k + r).
    seconds: wall-clock time.
    """

    trace: float
    std_error: float
    deflated: float
    residual_samples: torch.Tensor
    sketch_rank: int
    n_products: int
    seconds: float


def split_budget(n_products: int, size: int) -> tuple[int, int]:
    """(k, r): k products for the sketch, k for Q's trace, r = n - 2k for the rest (Meyer et
    al.'s thirds; k <= P, since a basis of P columns already spans everything)."""
    if n_products < 4:
        raise ConfigError(
            f"hutchpp_trace: n_products: expected >= 4 (1 sketch, 1 basis and 2 residual "
            f"products, the fewest with a standard error), found {n_products}; pass more"
        )
    k = min(max(1, n_products // 3), size)
    return k, n_products - 2 * k


def hutchpp_trace(
    hvp: HVP,
    size: int,
    *,
    generator: torch.Generator,
    n_products: int = 100,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> HutchppResult:
    """Hutch++'s estimate of tr(H) from exactly `n_products` products of `hvp`.

    hvp, size, dtype, device: as in `curvature.hessian_trace`. generator: draws the sketch's
    k probes, then the r residual probes (Rademacher, on the CPU), so the same seed gives the
    same result on any device. Q is kept in float64 on the products' device (P x k).
    """
    k, r = split_budget(n_products, size)
    start = time.perf_counter()
    dtype, dev = working_precision(hvp, dtype, device)
    op = CountedHVP(hvp, size, dtype, dev, None)

    def product(v: torch.Tensor) -> torch.Tensor:
        return op.torch(v.to(dev, dtype)).to(torch.float64)

    sketch = torch.stack([product(rademacher(size, generator)) for _ in range(k)], dim=1)
    q, _ = torch.linalg.qr(sketch)  # (P, k) orthonormal even if the sketch is rank-deficient
    deflated = sum(float(q[:, i] @ product(q[:, i])) for i in range(k))
    samples = torch.empty(r, dtype=torch.float64)
    for i in range(r):
        g = rademacher(size, generator).to(dev)
        g = g - q @ (q.T @ g)  # (I - QQ^T) g
        samples[i] = float(g @ product(g))
    std_error = float(samples.std(correction=1)) / r**0.5
    trace = deflated + float(samples.mean())
    seconds = time.perf_counter() - start
    return HutchppResult(trace, std_error, deflated, samples, k, op.calls, seconds)


def _compute(ctx: Context, run_id: str) -> tuple[dict, dict]:
    hvp, size = final_hvp(ctx, run_id)
    r = hutchpp_trace(hvp, size, generator=ctx.generator, n_products=ctx.cfg.trace_samples)
    values = {
        "trace": r.trace,
        "std_error": r.std_error,
        "deflated": r.deflated,
        "residual_samples": r.residual_samples,
    }
    attrs = {
        "run": run_id,
        "n_products": r.n_products,
        "sketch_rank": r.sketch_rank,
        "headline": f"trace {r.trace:.4g} +- {r.std_error:.2g} (Hutch++)",
    }
    return values, attrs


SPEC = MeasureSpec(
    name="trace_hutchpp",
    description="Hessian trace at the final point by Hutch++ (low-rank deflation plus "
    "Hutchinson on the rest), with its standard error, at trace_samples products",
    needs="run (its final point)",
    keys=all_runs,
    compute=_compute,
    settings=(TRACE_SAMPLES,),
    arrays=(
        Stored("trace", "Hutch++ estimate of tr(H), clean training loss", CURV),
        Stored("std_error", "standard error of the Hutchinson part (deflated residual)", CURV),
        Stored("deflated", "tr(Q^T H Q) on the sketch's range Q (exact given Q)", CURV),
        Stored(
            "residual_samples",
            "g^T (I - QQ^T) H (I - QQ^T) g for each Rademacher vector g",
            CURV,
        ),
    ),
    scalars=(
        Scalar(
            "hessian_trace_hutchpp",
            "Hessian trace (Hutch++)",
            "loss / parameter²",
            "trace",
            headline="always",  # lower error than Hutchinson's at equal cost: bench/TRACE.md
        ),
        Scalar(
            "hessian_trace_hutchpp_se",
            "standard error of the Hutch++ trace",
            "loss / parameter²",
            "std_error",
        ),
    ),
    figures=("trace_estimators",),
)
