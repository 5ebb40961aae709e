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


def _barrier(r: dict) -> float:
    return float(r["attrs"]["barrier_train_loss"])


def _every(key: str) -> bool:
    return True


def _last(name: str) -> Callable[[dict], float | None]:
    """The final entry of array `name`; None (not applicable) where the result has none."""
    return lambda r: float(r[name][-1]) if name in r else None


def _mse_over_ols(r: dict) -> float | None:
    if "train_mse" not in r:
        return None  # a ring result
    return float(r["train_mse"][-1]) / float(r["attrs"]["ols_train_mse"])


def _per_black(r: dict) -> float | None:
    black = r["attrs"].get("black_train_points")
    if "components" not in r or not black:
        return None
    return float(r["components"][-1]) / float(black)


# quantity -> (measure, one scalar from a result, which result keys); keys are run ids, pair
# keys or interpolation/restart keys
SCALARS: dict[str, tuple[str, Callable[[dict], float | None], Callable[[str], bool]]] = {
    "distance_l2": ("distance", lambda r: r["l2"][-1], _every),
    "distance_frobenius_sum": ("distance", lambda r: r["frobenius_sum"][-1], _every),
    "weight_norm_sum": ("distance", lambda r: r["weight_norm_sum"][-1], _every),
    "train_grad_norm": ("gradient", lambda r: r["train_grad_norm"][-1], _every),
    "test_grad_norm": ("gradient", lambda r: r["test_grad_norm"][-1], _every),
    # grokking: the weight norm rises while memorizing and falls when the net generalizes
    "weight_norm_peak_over_final": (
        "distance",
        lambda r: float(np.max(r["weight_norm_sum"]) / r["weight_norm_sum"][-1]),
        _every,
    ),
    "hessian_top": ("hessian", lambda r: r["eigenvalues"][0], _every),
    "hessian_trace": ("trace", lambda r: float(r["trace"]), _every),
    "init_final_barrier": ("interpolation", _barrier, lambda k: k.startswith("init-final")),
    "normal_overfit_barrier": ("interpolation", _barrier, lambda k: k.startswith("normal-")),
    "normal_overfit_distance": ("pair_distance", lambda r: float(r["l2"]), _every),
    "epsilon_sharpness": ("epsilon_sharpness", lambda r: float(r["sharpness"]), _every),
    "perturbation_increase": ("perturbation", lambda r: r["increase_mean"][-1], _every),
    "restart_test_acc": ("restart", lambda r: r["test_acc"][-1], _every),
    "restart_distance_moved": ("restart", lambda r: r["dist_moved"][-1], _every),
    "ring_iou": ("prediction", _last("iou"), _every),
    "ring_components": ("prediction", _last("components"), _every),
    "ring_image_mse": ("prediction", _last("image_mse"), _every),
    # memorizing would draw one blob per black training pixel: blobs over that count
    "ring_components_per_black_point": (
        "prediction",
        _per_black,
        _every,
    ),
    "line_max_abs_vs_ols": ("prediction", _last("max_abs_vs_ols"), _every),
    "line_train_mse_over_ols": ("prediction", _mse_over_ols, _every),
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
    """{quantity: {group: describe(...) + {"diverged": count}}} over the analysis store.

    A result that involves a diverged run is counted under "diverged" and left out of the
    statistics (its point is the last finite checkpoint, not a trained end point).
    """
    values: dict[str, dict[str, list[float]]] = {}
    diverged: dict[str, dict[str, int]] = {}
    for measure, key in astore.completed(out):
        quantities = [q for q, (m, _, when) in SCALARS.items() if m == measure and when(key)]
        if not quantities:
            continue
        result = astore.read_result(out, measure, key)
        group = _group(measure, key, result["attrs"])
        for q in quantities:
            value = SCALARS[q][1](result)
            if value is None:
                continue  # not applicable to this result (e.g. ring scores of a line)
            values.setdefault(q, {}).setdefault(group, [])
            count = diverged.setdefault(q, {}).setdefault(group, 0)
            if result["attrs"].get("diverged", False):
                diverged[q][group] = count + 1
            else:
                values[q][group].append(float(value))
    summary: dict[str, Any] = {
        q: {g: describe(v) | {"diverged": diverged[q][g]} for g, v in groups.items()}
        for q, groups in values.items()
    }
    if equal := _equal_steps(out):
        summary["distance_l2_equal_steps"] = equal
    _add_ratios(summary)
    return summary


def _equal_steps(out: Path) -> dict[str, Any]:
    """||theta - theta0|| of overfit run k after as many steps as normal run k took in all.

    At equal epochs an overfit run takes about twice the steps (its training set is about
    twice as large); this compares the two at equal optimizer steps instead. The overfit
    distance is interpolated linearly between its two checkpoints around that step.
    """
    done = {key for m, key in astore.completed(out) if m == "distance"}
    normal, overfit = [], []
    for key in sorted(done):
        mode, k = key.rsplit("-", 1)
        if mode != "normal" or f"overfit-{k}" not in done:
            continue
        n, o = (
            astore.read_result(out, "distance", key),
            astore.read_result(out, "distance", f"overfit-{k}"),
        )
        if n["attrs"].get("diverged") or o["attrs"].get("diverged"):
            continue
        normal.append(float(n["l2"][-1]))
        overfit.append(float(np.interp(n["step"][-1], o["step"], o["l2"])))
    if not normal:
        return {}
    return {"normal": describe(normal), "overfit": describe(overfit)}


def _add_ratios(summary: dict[str, Any]) -> None:
    """overfit/normal ratio of the means, where both exist."""
    for groups in summary.values():
        n, o = groups.get("normal", {}).get("mean"), groups.get("overfit", {}).get("mean")
        if n and o is not None:
            groups["ratio_overfit_over_normal"] = o / n
