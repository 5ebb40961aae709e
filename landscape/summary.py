"""Per-seed numbers of an analysis store, aggregated per mode: mean, std, min, max, n.

Every number is read from a stored result array (named in `SCALARS`), so the report can say
how sure it is and trace it back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from landscape import analysis_store as astore

# quantity -> (measure, how to get one scalar from a result); keys are run ids or pair keys
SCALARS: dict[str, tuple[str, Callable[[dict], float]]] = {
    "distance_l2": ("distance", lambda r: r["l2"][-1]),
    "distance_frobenius_sum": ("distance", lambda r: r["frobenius_sum"][-1]),
    "weight_norm_sum": ("distance", lambda r: r["weight_norm_sum"][-1]),
    "train_grad_norm": ("gradient", lambda r: r["train_grad_norm"][-1]),
    "test_grad_norm": ("gradient", lambda r: r["test_grad_norm"][-1]),
    "hessian_top": ("hessian", lambda r: r["eigenvalues"][0]),
    "hessian_trace": ("trace", lambda r: float(r["trace"])),
    "init_final_barrier": ("interpolation", lambda r: r["attrs"]["barrier_train_loss"]),
    "normal_overfit_distance": ("pair_distance", lambda r: float(r["l2"])),
    "epsilon_sharpness": ("epsilon_sharpness", lambda r: float(r["sharpness"])),
    "perturbation_increase": ("perturbation", lambda r: r["increase_mean"][-1]),
    "restart_test_acc": ("restart", lambda r: r["test_acc"][-1]),
    "restart_distance_moved": ("restart", lambda r: r["dist_moved"][-1]),
}


def describe(values: list[float]) -> dict[str, float | int | None]:
    """mean, sample standard deviation (ddof 1), min, max and n of finite values."""
    a = np.asarray([v for v in values if np.isfinite(v)], dtype=np.float64)
    if a.size == 0:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    std = float(a.std(ddof=1)) if a.size > 1 else 0.0
    return {"mean": float(a.mean()), "std": std, "min": float(a.min()), "max": float(a.max()),
            "n": int(a.size)}  # fmt: skip


def _group(measure: str, key: str, attrs: dict) -> str:
    """The group a result's scalar belongs to: its mode, recipe or 'pairs'."""
    if measure == "restart":
        return f"overfit+{attrs['recipe']}"
    if measure == "pair_distance":
        return "pairs"
    if measure == "interpolation":
        kind, rest = key.split(".", 1)
        return rest.rsplit("-", 1)[0] if kind == "init-final" else "pairs"
    return key.rsplit("-", 1)[0]


def summarize(out: Path) -> dict[str, Any]:
    """{quantity: {group: describe(...)}} over every result in the analysis store."""
    values: dict[str, dict[str, list[float]]] = {}
    for measure, key in astore.completed(out):
        quantities = [q for q, (m, _) in SCALARS.items() if m == measure]
        if not quantities:
            continue
        result = astore.read_result(out, measure, key)
        if measure == "interpolation" and not key.startswith("init-final"):
            quantities = []  # normal <-> overfit barriers are kept per pair below
            values.setdefault("normal_overfit_barrier", {}).setdefault("pairs", []).append(
                float(result["attrs"]["barrier_train_loss"])
            )
        for q in quantities:
            group = _group(measure, key, result["attrs"])
            values.setdefault(q, {}).setdefault(group, []).append(float(SCALARS[q][1](result)))
    summary = {q: {g: describe(v) for g, v in groups.items()} for q, groups in values.items()}
    _add_ratios(summary)
    return summary


def _add_ratios(summary: dict[str, Any]) -> None:
    """overfit/normal ratio of the means, where both exist."""
    for groups in summary.values():
        n, o = groups.get("normal", {}).get("mean"), groups.get("overfit", {}).get("mean")
        if n and o is not None:
            groups["ratio_overfit_over_normal"] = o / n
