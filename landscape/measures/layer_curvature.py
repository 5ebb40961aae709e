"""Per-layer curvature: the top eigenvalue and the trace of each parameter block's Hessian.

A block is a set of parameters (by default one module's: a layer's weight and bias together);
its Hessian H_bb is the block's rows and columns of H. A product H_bb v_b is one full product:
v_b is put in the block's place of a zero vector and the block's rows of H v are read. The top
eigenvalue comes from `curvature.top_eigenvalues` on that product, the trace from Hutch++
(`trace_hutchpp.hutchpp_trace`, the toolkit's trace estimator: bench/TRACE.md); a block no
larger than the trace's products is cheaper done exactly, column by column, and is (its
standard error is then 0). The block traces sum to
tr(H) when the blocks cover every parameter; the block eigenvalues bound nothing about H's
off-diagonal blocks, so the largest need not be H's.

>>> from landscape.core.layout import Layout
>>> from torch import nn
>>> layout = Layout.of_parameters(nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1)))
>>> [(b.name, len(b.index)) for b in module_blocks(layout)]
[('0', 8), ('2', 3)]
>>> [(b.name, len(b.index)) for b in prefix_blocks(layout, ("2", "0.bias"))]
[('2', 3), ('0.bias', 2)]
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from landscape.errors import ConfigError
from landscape.measures.common import all_runs
from landscape.measures.curvature import (
    HVP,
    CurvatureError,
    hessian_matrix,
    top_eigenvalues,
)
from landscape.measures.hessian import final_hvp
from landscape.measures.spec import CURV, Context, MeasureSpec, Setting, Stored
from landscape.measures.trace_hutchpp import hutchpp_trace
from landscape.store.summary import Scalar

if TYPE_CHECKING:
    from landscape.core.layout import Layout

BY_MODULE = "modules"
TOL = 1e-3  # Lanczos residual tolerance: eigenvalues to ~1e-6 relative (bench/HESSIAN.md)

BLOCKS = Setting(
    "blocks",
    (BY_MODULE,),
    "per-layer curvature: the parameter blocks: modules (each module's own parameters, e.g. a "
    "layer's weight and bias) or dotted name prefixes, one block each (e.g. net.1,net.3)",
    "strs",
    "modules, or one or more dotted parameter-name prefixes",
    lambda v: len(v) >= 1 and all(s.strip() for s in v),
)
LAYER_SAMPLES = Setting(
    "layer_trace_samples",
    30,
    "per-layer curvature: Hessian-vector products per block's trace (Hutch++)",
    "int",
    "an integer >= 4 (Hutch++'s fewest)",
    lambda v: v >= 4,
    maximum=1_000_000,
)


@dataclass(frozen=True)
class Block:
    """A named set of parameters: index (P_b,) int64 positions in the flat vector."""

    name: str
    index: torch.Tensor


def _owner(name: str) -> str:
    """The module that owns a parameter: 'net.1.weight' -> 'net.1' ('' at the top level)."""
    return name.rsplit(".", 1)[0] if "." in name else ""


def _positions(layout: Layout, names: list[str]) -> torch.Tensor:
    entries = [e for e in layout.entries if e.name in names]
    return torch.cat([torch.arange(e.offset, e.offset + e.numel) for e in entries])


def module_blocks(layout: Layout) -> list[Block]:
    """One block per module that owns parameters, in layout order."""
    owners: dict[str, list[str]] = {}
    for e in layout.entries:
        owners.setdefault(_owner(e.name), []).append(e.name)
    return [Block(m or "(top level)", _positions(layout, n)) for m, n in owners.items()]


def _under(name: str, prefix: str) -> bool:
    """Whether a dotted name lies under a dotted prefix ('net.1' holds 'net.1.weight', not
    'net.10.weight')."""
    return name == prefix or name.startswith(prefix.rstrip(".") + ".")


def prefix_blocks(layout: Layout, prefixes: tuple[str, ...]) -> list[Block]:
    """One block per prefix: the parameters whose dotted names lie under it."""
    blocks: list[Block] = []
    taken: set[str] = set()
    for prefix in prefixes:
        names = [e.name for e in layout.entries if _under(e.name, prefix)]
        if not names or taken & set(names):
            known = ", ".join(dict.fromkeys(_owner(e.name) for e in layout.entries))
            problem = "matches no parameter" if not names else "overlaps an earlier prefix"
            raise ConfigError(
                f"analysis setting 'blocks': prefix {prefix!r} {problem}; expected disjoint "
                f"prefixes of the model's parameter names (modules: {known}); use e.g. "
                f"--set analyze.blocks=modules"
            )
        taken |= set(names)
        blocks.append(Block(prefix, _positions(layout, names)))
    return blocks


def blocks_of(layout: Layout, setting: tuple[str, ...]) -> list[Block]:
    """The blocks the `blocks` setting names: by module, or by prefix."""
    return module_blocks(layout) if setting == (BY_MODULE,) else prefix_blocks(layout, setting)


class BlockProduct:
    """v_b (P_b,) -> H_bb v_b: v_b in the block's place of a zero (P,) vector, the block's rows
    of the full product read back. One full product per call.

    `theta` is the full product's (an `Objective.hvp_operator`'s), so the curvature kernels
    run the block's products in its dtype and on its device.
    """

    def __init__(self, hvp: HVP, index: torch.Tensor, size: int):
        self.hvp, self.size = hvp, size
        self.theta = getattr(hvp, "theta", None)
        device = self.theta.device if isinstance(self.theta, torch.Tensor) else "cpu"
        self.index = index.to(device)

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        full = torch.zeros(self.size, dtype=v.dtype, device=v.device)
        full[self.index] = v
        return self.hvp(full)[self.index]


@dataclass(frozen=True)
class BlockCurvature:
    """Curvature of each block's Hessian H_bb (n blocks, loss / param^2).

    top_eigenvalue: (n,) float64, the algebraically largest eigenvalue of H_bb.
    residual: (n,) float64, ||H_bb v - lambda v|| / |lambda| of its eigenvector.
    trace: (n,) float64, tr(H_bb); trace_std_error: (n,) its standard error (0: exact).
    n_products: full Hessian-vector products used in all.
    """

    names: list[str]
    sizes: torch.Tensor
    top_eigenvalue: torch.Tensor
    residual: torch.Tensor
    trace: torch.Tensor
    trace_std_error: torch.Tensor
    n_products: int
    seconds: float


def _one_block(
    hvp: HVP, size: int, samples: int, generator: torch.Generator
) -> tuple[list[float], int]:
    """[top eigenvalue, residual, trace, standard error] of one block's Hessian, and the
    products used."""
    if size <= samples:  # P_b products give the exact block: no more than Hutchinson's
        values = torch.linalg.eigvalsh(hessian_matrix(hvp, size, max_size=samples))
        return [float(values[-1]), 0.0, float(values.sum()), 0.0], size
    try:
        top = top_eigenvalues(hvp, size, 1, generator=generator, tol=TOL, keep_vectors=False)
        eig, products = [float(top.eigenvalues[0]), float(top.residuals[0])], top.n_products
    except CurvatureError:  # stays NaN, never hidden (the trace is still estimated)
        eig, products = [float("nan"), float("nan")], 0
    tr = hutchpp_trace(hvp, size, generator=generator, n_products=samples)
    return [*eig, tr.trace, tr.std_error], products + tr.n_products


def layer_curvature(
    hvp: HVP,
    blocks: list[Block],
    size: int,
    *,
    generator: torch.Generator,
    trace_samples: int = 30,
) -> BlockCurvature:
    """Top eigenvalue and trace of each block's Hessian, from products of the full `hvp`.

    hvp: v (P,) -> H v (P,) (e.g. `Objective.hvp_operator(theta)`); size: P. generator: the
    Lanczos start vectors and Hutch++ probes, block after block. trace_samples >= 4.
    n_products counts the products of converged Lanczos runs and of the traces.
    """
    start = time.perf_counter()
    done = [
        _one_block(BlockProduct(hvp, b.index, size), len(b.index), trace_samples, generator)
        for b in blocks
    ]
    top, residual, trace, std_error = (
        torch.tensor([row for row, _ in done], dtype=torch.float64).reshape(-1, 4).T
    )
    return BlockCurvature(
        names=[b.name for b in blocks],
        sizes=torch.tensor([len(b.index) for b in blocks]),
        top_eigenvalue=top,
        residual=residual,
        trace=trace,
        trace_std_error=std_error,
        n_products=sum(n for _, n in done),
        seconds=time.perf_counter() - start,
    )


def _compute(ctx: Context, run_id: str) -> tuple[dict, dict]:
    hvp, size = final_hvp(ctx, run_id)
    blocks = blocks_of(ctx.exp.layout, ctx.cfg.blocks)
    r = layer_curvature(
        hvp, blocks, size, generator=ctx.generator, trace_samples=ctx.cfg.layer_trace_samples
    )
    ranked = torch.where(r.top_eigenvalue.isnan(), -torch.inf, r.top_eigenvalue)
    top = int(ranked.argmax())  # a failed (NaN) block is never the top one
    values = {
        "block": torch.arange(len(blocks)),
        "block_size": r.sizes,
        "top_eigenvalue": r.top_eigenvalue,
        "residual": r.residual,
        "trace": r.trace,
        "trace_std_error": r.trace_std_error,
        "max_top_eigenvalue": r.top_eigenvalue[top],
    }
    attrs = {
        "run": run_id,
        "blocks": json.dumps(r.names),
        "top_block": r.names[top],
        "n_products": r.n_products,
        "headline": f"top block {r.names[top]}: {float(r.top_eigenvalue[top]):.4g}",
    }
    return values, attrs


def _per_block(name: str, long_name: str, units: str) -> Stored:
    return Stored(name, long_name, units, ("block",))


SPEC = MeasureSpec(
    name="layer_curvature",
    description="per-layer curvature at the final point: top eigenvalue and trace of each "
    "parameter block's Hessian (a module's weight and bias together by default)",
    needs="run (its final point)",
    keys=all_runs,
    compute=_compute,
    settings=(BLOCKS, LAYER_SAMPLES),
    arrays=(
        Stored("block", "block number; the names are in attrs.blocks (JSON)", "1", ("block",)),
        _per_block("block_size", "parameters in the block", "parameters"),
        _per_block("top_eigenvalue", "largest eigenvalue of the block's Hessian H_bb", CURV),
        _per_block("residual", "||H_bb v - lambda v|| / |lambda| of its eigenvector", "1"),
        _per_block("trace", "tr(H_bb), Hutch++ (exact for small blocks)", CURV),
        _per_block("trace_std_error", "standard error of the block trace (0: exact)", CURV),
        Stored("max_top_eigenvalue", "the largest block eigenvalue (block: attrs.top_block)", CURV),
    ),
    scalars=(
        Scalar(
            "layer_top_eigenvalue",
            "largest per-layer Hessian eigenvalue",
            "loss / parameter²",
            "max_top_eigenvalue",
            headline="present",
        ),
    ),
    figures=("layer_curvature",),
)
