"""Top-k Hessian eigenvalues of the clean training loss at a final point, with residuals.

The kernel is `curvature.top_eigenvalues` (Lanczos through scipy's eigsh on Hessian-vector
products). A Lanczos that fails is stored as NaN with the reason, never hidden.
"""

from __future__ import annotations

import torch

from landscape.core.objective import HessianVectorProduct
from landscape.measures.common import all_runs, objective
from landscape.measures.curvature import CurvatureError, top_eigenvalues
from landscape.measures.spec import CURV, Context, MeasureSpec, Setting, Stored
from landscape.store.summary import Scalar

TOP_K = Setting(
    "top_k",
    5,
    "Hessian: top eigenvalues by Lanczos",
    "int",
    "an integer >= 1",
    lambda v: v >= 1,
    maximum=1000,
)


def final_hvp(ctx: Context, run_id: str) -> tuple[HessianVectorProduct, int]:
    """Hessian-vector products of the clean training loss at a run's final point, and P."""
    run = ctx.exp.run(run_id)
    obj = objective(ctx, "train", run.final_buffers)
    return obj.hvp_operator(run.final), obj.model.size


def top_k(
    hvp: HessianVectorProduct, size: int, k: int, *, generator: torch.Generator
) -> tuple[dict, dict]:
    """What a hessian result stores: eigenvalues and residuals (k,) by `top_eigenvalues`, and
    attributes; a Lanczos that fails gives NaN with the reason (`failed`), never hidden.
    Shared by `landscape analyze` and `Probe.hessian`."""
    try:
        r = top_eigenvalues(hvp, size, k, generator=generator, keep_vectors=False)
        values, residuals, products, failed = r.eigenvalues, r.residuals, r.n_products, ""
    except CurvatureError as e:  # stored as NaN with the reason, never hidden
        values = residuals = torch.full((k,), float("nan"))
        products, failed = hvp.calls, str(e)
    attrs = {
        "n_products": products,
        "failed": failed,
        "headline": f"top eigenvalue {float(values[0]):.4g}",
    }
    return {"eigenvalues": values, "residuals": residuals}, attrs


def _compute(ctx: Context, run_id: str) -> tuple[dict, dict]:
    hvp, size = final_hvp(ctx, run_id)
    values, attrs = top_k(hvp, size, ctx.cfg.top_k, generator=ctx.generator)
    return values, {"run": run_id} | attrs


SPEC = MeasureSpec(
    name="hessian",
    description="top-k Hessian eigenvalues of the clean training loss at the final point "
    "(Lanczos), with residuals",
    needs="run (its final point)",
    keys=all_runs,
    compute=_compute,
    settings=(TOP_K,),
    arrays=(
        Stored(
            "eigenvalues",
            "top Hessian eigenvalues of the clean training loss, descending (Lanczos)",
            CURV,
        ),
        Stored("residuals", "||H v - lambda v|| / |lambda| per eigenpair", "1"),
    ),
    scalars=(
        Scalar(
            "hessian_top",
            "top Hessian eigenvalue",
            "loss / parameter²",
            "eigenvalues",
            at="first",
            headline="always",
        ),
    ),
    figures=("hessian",),
)
