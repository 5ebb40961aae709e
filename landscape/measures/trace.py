"""The Hessian trace of the clean training loss at a final point (Hutchinson), with its
standard error. The kernel is `curvature.hessian_trace`."""

from __future__ import annotations

import torch

from landscape.measures.common import all_runs
from landscape.measures.curvature import HVP, hessian_trace
from landscape.measures.hessian import final_hvp
from landscape.measures.spec import CURV, Context, MeasureSpec, Setting, Stored
from landscape.store.summary import Scalar

TRACE_SAMPLES = Setting(
    "trace_samples",
    100,
    "Hessian trace: Hessian-vector products per run (Hutchinson's samples, Hutch++'s budget)",
    "int",
    "an integer >= 4 (Hutch++'s fewest: 1 sketch, 1 basis, 2 residual products)",
    lambda v: v >= 4,
    maximum=1_000_000,
)


def hutchinson(
    hvp: HVP, size: int, n_samples: int, *, generator: torch.Generator
) -> tuple[dict, dict]:
    """What a trace result stores (`hessian_trace`'s estimate, standard error and samples) and
    attributes. Shared by `landscape analyze` and `Probe.trace`."""
    r = hessian_trace(hvp, size, generator=generator, n_samples=n_samples)
    values = {"trace": r.trace, "std_error": r.std_error, "samples": r.samples}
    attrs = {
        "n_products": r.n_products,
        "headline": f"trace {r.trace:.4g} +- {r.std_error:.2g}",
    }
    return values, attrs


def _compute(ctx: Context, run_id: str) -> tuple[dict, dict]:
    hvp, size = final_hvp(ctx, run_id)
    values, attrs = hutchinson(hvp, size, ctx.cfg.trace_samples, generator=ctx.generator)
    return values, {"run": run_id} | attrs


SPEC = MeasureSpec(
    name="trace",
    description="Hessian trace at the final point (Hutchinson) with its standard error",
    needs="run (its final point)",
    keys=all_runs,
    compute=_compute,
    settings=(TRACE_SAMPLES,),
    arrays=(
        Stored("trace", "Hutchinson estimate of tr(H), clean training loss", CURV),
        Stored("std_error", "standard error of the trace estimate", CURV),
        Stored("samples", "v^T H v for each Rademacher vector v", CURV),
    ),
    scalars=(
        Scalar(
            "hessian_trace",
            "Hessian trace (Hutchinson)",
            "loss / parameter²",
            "trace",
            headline="present",  # the headline trace is Hutch++'s: bench/TRACE.md
        ),
        Scalar(
            "hessian_trace_se",
            "standard error of the Hutchinson trace",
            "loss / parameter²",
            "std_error",
        ),
    ),
    figures=("hessian",),
)
