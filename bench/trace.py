"""Hessian trace: Hutchinson against Hutch++ at equal numbers of Hessian-vector products.

On a trained normal and a trained extreme-overfit point, each estimator runs `--repeats`
times (seed 0, 1, ...) at each budget of products (`--budgets`, default 30 60 120 240), and
its error is measured against the exact trace: the sum of the Hessian's diagonal, read off P
products with the unit vectors (batched through `torch.autograd.grad(is_grads_batched=True)`,
independently of the estimators' path). Both estimators are the library's own
(`curvature.hessian_trace`, `trace_hutchpp.hutchpp_trace`) on `Objective.hvp_operator`.

By default the two points are trained here (cached in .bench/trace/): the quick preset's
recipe (digits, Adam 1e-3, batch 128, 200 epochs, xavier init, seed 0) with an MLP of
`--width` hidden units, small enough that the exact trace costs a few thousand products.
`--store` takes the runs of a stored experiment instead (e.g. the quick preset's 38,410
parameters: the reference then costs 38,410 products).

    python bench/trace.py                             # digits MLP 64-64-10; ~5 min, 2 quiet cores
    python bench/trace.py --repeats 10 --budgets 30 120   # a quicker look
    python bench/trace.py --store runs/quick.h5 --runs overfit-000

Printed per point: its top eigenvalues and their share of the trace, then one row per budget:
the root-mean-square error of each estimator relative to |tr H|, the mean standard error it
reported (relative), the fraction of repeats whose error is within 2 reported standard errors,
and the RMSE ratio Hutchinson / Hutch++ (above 1: Hutch++ wins). Results: bench/TRACE.md.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from landscape.config import resolve_config
from landscape.core.batched import GRADIENT_GRAPH
from landscape.core.objective import Objective
from landscape.measures.curvature import HVP, hessian_trace, top_eigenvalues
from landscape.measures.runs import Experiment
from landscape.measures.trace_hutchpp import hutchpp_trace
from landscape.train.experiment import train_experiment

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".bench" / "trace"


@dataclass(frozen=True)
class Point:
    label: str  # e.g. "overfit-000, MLP 64-64-10 (4,810 params)"
    objective: Objective
    theta: torch.Tensor


def inline_points(width: int, epochs: int, runs: list[str]) -> list[Point]:
    """The quick recipe with MLP 64-width-10, one seed per mode, trained once and cached."""
    overrides = {
        "model": {"widths": [width]},
        "train": {"runs": 1, "mode": "both", "epochs": epochs},
    }
    path = CACHE / f"digits-w{width}-e{epochs}.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    train_experiment(resolve_config(preset="quick", overrides=overrides), path)
    return stored_points(path, runs)


def stored_points(path: Path, runs: list[str]) -> list[Point]:
    exp = Experiment(path)
    size = exp.layout.size
    out = []
    for run_id in runs:
        theta, obj = exp.run(run_id).final, exp.objective("train")
        acc = float(obj.evaluate(theta.unsqueeze(0)).acc[0])
        label = f"{run_id} of {path.name} ({size:,} params, clean train acc {acc:.3f})"
        out.append(Point(label, obj, theta))
    return out


def exact_trace(point: Point, batch: int) -> float:
    """sum_i (H e_i)_i: P products with the unit vectors, `batch` at a time (one graph)."""
    obj = point.objective
    theta = point.theta.detach().clone().requires_grad_()
    size = theta.numel()
    diagonal = torch.zeros(size, dtype=torch.float64)
    for xb, yb, w in obj._data_chunks(obj._rows(1, GRADIENT_GRAPH)):
        with torch.enable_grad():
            (g,) = torch.autograd.grad(obj._chunk_loss(theta, xb, yb), theta, create_graph=True)
        for start in range(0, size, batch):
            rows = torch.arange(start, min(start + batch, size))
            units = torch.zeros(len(rows), size, dtype=theta.dtype)
            units[torch.arange(len(rows)), rows] = 1
            (hv,) = torch.autograd.grad(g, theta, units, retain_graph=True, is_grads_batched=True)
            diagonal[rows] += hv[torch.arange(len(rows)), rows].double() * w
    return float(diagonal.sum())


def estimate(name: str, hvp: HVP, size: int, budget: int, seed: int) -> tuple[float, float]:
    """One estimate and its standard error from `budget` products, probes from `seed`."""
    g = torch.Generator().manual_seed(seed)
    if name == "hutchinson":
        a = hessian_trace(hvp, size, generator=g, n_samples=budget)
        return a.trace, a.std_error
    b = hutchpp_trace(hvp, size, generator=g, n_products=budget)
    return b.trace, b.std_error


def errors(point: Point, exact: float, budget: int, repeats: int) -> dict[str, dict[str, float]]:
    """RMSE, mean reported SE and 2-SE coverage of each estimator over `repeats` seeds."""
    hvp = point.objective.hvp_operator(point.theta)
    size = point.theta.numel()
    out = {}
    for name in ("hutchinson", "hutchpp"):
        err, se = [], []
        for seed in range(repeats):
            trace, std_error = estimate(name, hvp, size, budget, seed)
            err.append(trace - exact)
            se.append(std_error)
        e, s = np.asarray(err), np.asarray(se)
        out[name] = {
            "rmse_rel": float(np.sqrt(np.mean(e**2)) / abs(exact)),
            "mean_abs_rel": float(np.mean(np.abs(e)) / abs(exact)),
            "mean_se_rel": float(np.mean(s) / abs(exact)),
            "coverage_2se": float(np.mean(np.abs(e) <= 2 * s)),
        }
    return out


def spectrum_note(point: Point, exact: float, k: int) -> str:
    hvp = point.objective.hvp_operator(point.theta)
    top = top_eigenvalues(
        hvp,
        point.theta.numel(),
        k,
        tol=1e-4,
        keep_vectors=False,
        generator=torch.Generator().manual_seed(0),
    )
    values = ", ".join(f"{v:.4g}" for v in top.eigenvalues.tolist()[:5])
    share = float(top.eigenvalues.clamp(min=0).sum()) / exact
    return f"top eigenvalues {values}; the top {k} hold {share:.0%} of tr H = {exact:.5g}"


def table(rows: list[tuple[int, dict[str, dict[str, float]]]]) -> str:
    head = (
        "| HVPs | Hutchinson RMSE | Hutch++ RMSE | ratio | Hutchinson mean SE | Hutch++ mean SE "
        "| within 2 SE (Hutchinson / Hutch++) |\n|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for budget, r in rows:
        a, b = r["hutchinson"], r["hutchpp"]
        lines.append(
            f"| {budget} | {a['rmse_rel']:.2%} | {b['rmse_rel']:.2%} | "
            f"{a['rmse_rel'] / b['rmse_rel']:.2f} | {a['mean_se_rel']:.2%} | "
            f"{b['mean_se_rel']:.2%} | {a['coverage_2se']:.2f} / {b['coverage_2se']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budgets", type=int, nargs="+", default=[30, 60, 120, 240])
    ap.add_argument("--repeats", type=int, default=30, help="seeds per estimator and budget")
    ap.add_argument("--width", type=int, default=64, help="hidden units of the inline MLP")
    ap.add_argument("--epochs", type=int, default=200, help="epochs of the inline MLP")
    ap.add_argument("--store", type=Path, help="a train store to take the points from")
    ap.add_argument("--runs", default="overfit-000,normal-000", help="run ids, comma-separated")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64, help="unit vectors per batched product")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    runs = args.runs.split(",")
    points = (
        stored_points(args.store, runs)
        if args.store
        else inline_points(args.width, args.epochs, runs)
    )
    print(
        f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{args.threads} threads, {args.repeats} repeats per cell"
    )
    report = {}
    for point in points:
        started = time.perf_counter()
        exact = exact_trace(point, args.batch)
        note = spectrum_note(point, exact, k=10)
        rows = [(b, errors(point, exact, b, args.repeats)) for b in args.budgets]
        seconds = time.perf_counter() - started
        print(f"\n## {point.label}\n\n{note}\n\n{table(rows)}\n\n({seconds:.0f} s)")
        report[point.label] = {"exact_trace": exact, "note": note, "rows": dict(rows)}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=_json))


def _json(value: object) -> object:
    return None if isinstance(value, float) and not math.isfinite(value) else str(value)


if __name__ == "__main__":
    main()
