"""From ReportData to the arrays the plot functions take: curves by mode, per-seed values.

Seeds of one mode share a step grid (they are trained together), so their curves stack into a
(K, m) array; a run whose grid differs (e.g. one that stopped early) is interpolated onto the
longest grid, with NaN past its end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from landscape.report.data import ReportData

Curve = tuple[np.ndarray, np.ndarray]  # x (m,), y (K, m)


def stack(xs: list[np.ndarray], ys: list[np.ndarray]) -> Curve:
    """Curves of several seeds as one (x, (K, m)) pair on the longest x grid."""
    grid = max(xs, key=len)
    rows = []
    for x, y in zip(xs, ys, strict=True):
        y = np.asarray(y, dtype=np.float64)
        if len(x) == len(grid) and np.array_equal(x, grid):
            rows.append(y)
        else:  # another grid: interpolate, NaN where this seed has no data
            rows.append(np.interp(grid, x, y, left=np.nan, right=np.nan))
    return np.asarray(grid, dtype=np.float64), np.vstack(rows)


def modes(data: ReportData) -> list[str]:
    """Modes present, normal first."""
    found = {r.mode for r in data.run_data.values()}
    return sorted(found, key=lambda m: (m != "normal", m != "overfit", m))


def history_curves(
    data: ReportData, name: str, *, x: str = "step", only: tuple[str, ...] = ()
) -> dict[str, Curve]:
    """{mode: (x, (K, m))} of one history array over the runs that have it."""
    out: dict[str, Curve] = {}
    for mode in modes(data):
        if only and mode not in only:
            continue
        runs = [r for r in data.run_data.values() if r.mode == mode and name in r.history]
        runs = [r for r in runs if np.isfinite(r.history[name]).any()]
        if runs:
            out[mode] = stack([r.history[x] for r in runs], [r.history[name] for r in runs])
    return out


def history_units(data: ReportData, name: str) -> str:
    for run in data.run_data.values():
        if name in run.units:
            return run.units[name]
    return ""


def run_mode(data: ReportData, run_id: str) -> str:
    run = data.run_data.get(run_id)
    return run.mode if run else run_id.rsplit("-", 1)[0]


def result_curves(
    data: ReportData,
    measure: str,
    name: str,
    *,
    x: str = "step",
    group: Callable[[str, dict[str, Any]], str | None] | None = None,
    pick: Callable[[np.ndarray], np.ndarray] = lambda a: a,
) -> dict[str, Curve]:
    """{group: (x, (K, m))} of one array of a measure's results; group defaults to the mode.

    `group` returning None leaves a result out; `pick` selects a column (e.g. eigenvalue 1).
    """
    group = group or (lambda key, res: run_mode(data, key))
    xs: dict[str, list[np.ndarray]] = {}
    ys: dict[str, list[np.ndarray]] = {}
    for key, res in sorted(data.measure(measure).items()):
        g = group(key, res)
        if g is None or name not in res or x not in res:
            continue
        xs.setdefault(g, []).append(np.asarray(res[x], dtype=np.float64))
        ys.setdefault(g, []).append(pick(np.asarray(res[name], dtype=np.float64)))
    return {g: stack(xs[g], ys[g]) for g in _ordered(xs)}


def per_seed(
    data: ReportData,
    measure: str,
    value: Callable[[dict[str, Any]], float],
    *,
    group: Callable[[str, dict[str, Any]], str | None] | None = None,
) -> dict[str, np.ndarray]:
    """{group: (K,) one number per result}, e.g. the final distance of every run by mode."""
    group = group or (lambda key, res: run_mode(data, key))
    out: dict[str, list[float]] = {}
    for key, res in sorted(data.measure(measure).items()):
        g = group(key, res)
        if g is not None:
            out.setdefault(g, []).append(float(value(res)))
    return {g: np.asarray(out[g]) for g in _ordered(out)}


def _ordered(groups: dict[str, Any]) -> list[str]:
    return sorted(groups, key=lambda g: (g != "normal", g != "overfit", g))


def interpolation_lines(data: ReportData, name: str, kind: str) -> dict[str, Curve]:
    """init-final lines by mode, the normal -> overfit lines of every seed pair, or the
    `landscape.Probe` lines ("line.<label>") by label."""

    def group(key: str, res: dict[str, Any]) -> str | None:
        prefix, rest = key.split(".", 1)
        if prefix != kind:
            return None
        if kind == "line":
            return rest
        return run_mode(data, rest) if kind == "init-final" else "normal → overfit"

    return result_curves(data, "interpolation", name, x="alpha", group=group)


def first_of_each_mode(results: dict[str, dict[str, Any]], data: ReportData) -> dict[str, str]:
    """{mode: key} of the first result of each mode (surfaces are drawn for one point each)."""
    out: dict[str, str] = {}
    for key in sorted(results):
        out.setdefault(run_mode(data, key), key)
    return {m: out[m] for m in _ordered(out)}


def restart_group(key: str, res: dict[str, Any]) -> str:
    return str(res["attrs"].get("recipe", key.split(".", 1)[0]))


def mean_final(data: ReportData, mode: str, name: str) -> float:
    """Mean over complete runs of a mode of a final value (e.g. test accuracy); NaN if none."""
    values = [
        r["final"][name]
        for r in data.runs
        if r["mode"] == mode and r.get("final") and r["final"].get(name) is not None
    ]
    return float(np.mean(values)) if values else float("nan")
