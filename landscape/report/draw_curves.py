"""Figure builders for training, distance, gradient, 1D slices and curves: store arrays to plots."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from landscape.report import series as S
from landscape.report.data import ReportData
from landscape.report.figures import (
    plot_curve_panels,
    plot_curves,
    plot_distributions,
    plot_line_grid,
)
from landscape.report.style import PAGE_WIDTH, PAIR_COLOR, mode_color, panels


def accuracy_figure(data: ReportData) -> Figure | None:
    loss = f"loss ({S.history_units(data, 'train_loss') or 'loss units'})"
    grid = [
        ("clean train accuracy", "accuracy (fraction)", S.history_curves(data, "train_acc")),
        ("test accuracy (true labels)", "accuracy (fraction)", S.history_curves(data, "test_acc")),
        (
            "corrupted-label accuracy",
            "accuracy (fraction)",
            S.history_curves(data, "corrupt_acc", only=("overfit",)),
        ),
        ("clean train loss", loss, S.history_curves(data, "train_loss")),
        ("test loss", loss, S.history_curves(data, "test_loss")),
        ("corrupted-label loss", loss, S.history_curves(data, "corrupt_loss", only=("overfit",))),
    ]
    grid = [g for g in grid if g[2]]
    return plot_curve_panels(grid) if grid else None


def epochs_figure(data: ReportData) -> Figure | None:
    grid = [
        (
            "clean train accuracy",
            "accuracy (fraction)",
            S.history_curves(data, "train_acc", x="epoch"),
        ),
        ("test accuracy", "accuracy (fraction)", S.history_curves(data, "test_acc", x="epoch")),
    ]
    grid = [g for g in grid if g[2]]
    return plot_curve_panels(grid, xlabel="epochs") if grid else None


# (array, axis label, title); mathtext, since the font has no subscript t
KINDS = (
    ("l2", r"$\|\theta - \theta_0\|_2$ (L2 norm)", "L2 distance from init"),
    (
        "frobenius_sum",
        r"$\Sigma_t\ \|\theta_t - \theta_{0,t}\|_F$ over tensors t",
        "sum of per-tensor distances",
    ),
    (
        "weight_norm_sum",
        r"$\Sigma_t\ \|\theta_t\|_F$ (a norm, not a distance)",
        "sum of per-tensor weight norms",
    ),
)


def _last(name: str) -> Callable[[dict[str, Any]], float]:
    """The final entry of a result's array `name` (e.g. the distance at the last checkpoint)."""
    return lambda result: float(np.asarray(result[name])[-1])


def distance_per_seed_figure(data: ReportData) -> Figure:
    pairs = S.per_seed(data, "pair_distance", lambda r: float(r["l2"]), group=lambda k, r: "pairs")
    n = len(KINDS) + bool(pairs)
    fig, axs = panels(None, n, min(3.6 * n, PAGE_WIDTH), 3.9)
    for ax, (name, label, title) in zip(axs, KINDS, strict=False):
        values = S.per_seed(data, "distance", _last(name))
        plot_distributions(values, ax=ax, ylabel=label, title=title)
    if pairs:
        plot_distributions(
            {"normal ↔ overfit": pairs["pairs"]},
            ax=axs[-1],
            ylabel=r"$\|\theta_{normal} - \theta_{overfit}\|_2$ (L2 norm)",
            title="normal ↔ overfit",
            colors={"normal ↔ overfit": PAIR_COLOR},
        )
    fig.suptitle("at the final point of each run (one dot per seed)", fontsize=10)
    return fig


def distance_steps_figure(data: ReportData) -> Figure:
    grid = [(title, label, S.result_curves(data, "distance", name)) for name, label, title in KINDS]
    return plot_curve_panels(grid)


def gradient_figure(data: ReportData) -> Figure:
    fig, axs = panels(None, 3, PAGE_WIDTH, 3.6)
    for ax, split in zip(axs, ("train", "test"), strict=False):
        curves = S.result_curves(data, "gradient", f"{split}_grad_norm")
        plot_curves(curves, ax=ax, ylabel="‖∇L‖₂ (L2 norm)", title=f"{split} gradient norm")
    finals = S.per_seed(data, "gradient", lambda r: float(np.asarray(r["train_grad_norm"])[-1]))
    plot_distributions(
        finals,
        ax=axs[2],
        ylabel="‖∇L_train‖₂ at the final point",
        title="final train gradient norm",
    )
    return fig


def interpolation_figure(kind: str, ends: tuple[str, str]) -> Callable[[ReportData], Figure | None]:
    def make(data: ReportData) -> Figure | None:
        grid = [
            (
                f"{split} {q}",
                "accuracy (fraction)" if q == "accuracy" else "loss",
                S.interpolation_lines(
                    data, f"{split}_{'acc' if q == 'accuracy' else 'loss'}", kind
                ),
            )
            for q in ("loss", "accuracy")
            for split in ("train", "test")
        ]
        if not any(g[2] for g in grid):
            return None
        markers = {"a": (0.0, ends[0]), "b": (1.0, ends[1])}
        xlabel = f"α: θ(α) = (1 − α) θ_{ends[0]} + α θ_{ends[1]}"
        return plot_line_grid(
            grid, xlabel=xlabel, markers=markers, colors={"normal → overfit": PAIR_COLOR}
        )

    return make


CURVE_COLORS = {"trained curve": PAIR_COLOR, "straight line": "0.55"}


def curve_figure(data: ReportData) -> Figure | None:
    """The trained Bezier curve and the straight line between each seed's normal and overfit
    points (bands over seeds), train and test, loss and accuracy."""

    def paths(name: str) -> dict[str, S.Curve]:
        return {
            label: curve
            for path, label in (("curve", "trained curve"), ("line", "straight line"))
            for curve in S.result_curves(
                data, "curve", f"{path}_{name}", x="alpha", group=lambda k, r: "all"
            ).values()
        }

    grid = [
        (
            f"{split} {q}",
            "accuracy (fraction)" if q == "accuracy" else "loss",
            paths(f"{split}_{a}"),
        )
        for q, a in (("loss", "loss"), ("accuracy", "acc"))
        for split in ("train", "test")
    ]
    if not any(g[2] for g in grid):
        return None
    markers = {"a": (0.0, "normal"), "b": (1.0, "overfit")}
    xlabel = "t on the curve φ(t), α on the line (1 − α) θ_normal + α θ_overfit"
    return plot_line_grid(grid, xlabel=xlabel, markers=markers, colors=CURVE_COLORS)


def slices_figure(data: ReportData) -> Figure | None:
    def lines(name: str) -> dict[str, S.Curve]:
        out = {}
        for key, res in sorted(data.measure("surface1d").items()):
            out[key] = (np.asarray(res["xcoordinates"]), np.asarray(res[name]))
        return out

    colors = {
        k: mode_color(S.run_mode(data, k), i)
        for i, k in enumerate(sorted(data.measure("surface1d")))
    }
    grid = [(f"{s} loss", "loss", lines(f"{s}_loss")) for s in ("train", "test")]
    return plot_line_grid(
        grid,
        xlabel="step along a filter-normalized random direction",
        markers={"c": (0.0, "final point")},
        colors=colors,
    )
