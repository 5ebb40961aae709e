"""Figure builders for surfaces and the dataset-specific pictures (ring, line, grokking)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from landscape.report import series as S
from landscape.report.data import ReportData
from landscape.report.figures import plot_curves
from landscape.report.figures_datasets import RingPredictions, plot_line_fit, plot_ring
from landscape.report.figures_surface import plot_contours, plot_surface_3d
from landscape.report.style import PAGE_WIDTH, new_figure, panels


def _surface_label(key: str, res: dict[str, Any]) -> str:
    ratio = res.get("explained_variance_ratio")
    if ratio is None:
        return key
    parts = " + ".join(f"{100 * float(r):.0f}%" for r in np.asarray(ratio)[:2])
    return f"{key} (PCs explain {parts})"


def _surfaces(data: ReportData, measure: str, name: str) -> dict[str, tuple[Any, Any, Any]]:
    results = data.measure(measure)
    picked = S.first_of_each_mode(results, data)
    return {
        _surface_label(key, results[key]): (
            np.asarray(results[key]["xcoordinates"]),
            np.asarray(results[key]["ycoordinates"]),
            np.asarray(results[key][name]),
        )
        for key in picked.values()
    }


def _trajectories(data: ReportData, measure: str) -> dict[str, tuple[Any, Any]]:
    results = data.measure(measure)
    return {
        _surface_label(key, res): (np.asarray(res["trajectory_x"]), np.asarray(res["trajectory_y"]))
        for key, res in results.items()
        if "trajectory_x" in res and "trajectory_y" in res
    }


# axis labels of each plane: Li et al.'s filter-normalized directions, or unit PCA directions
AXES = {
    "surface2d": ("x: filter-normalized direction 1", "y: filter-normalized direction 2"),
    "surface_pca": ("PC 1 coordinate (L2 norm)", "PC 2 coordinate (L2 norm)"),
}


def surface_figures(measure: str, three_d: bool) -> Callable[[ReportData], Figure | None]:
    """Contours (train loss row, test loss row) or 3D train loss, normal beside overfit."""

    def make(data: ReportData) -> Figure | None:
        train = _surfaces(data, measure, "train_loss")
        if not train:
            return None
        plane = "PCA plane" if measure == "surface_pca" else "random plane"
        if three_d:
            return plot_surface_3d(train, label="train loss", title=f"train loss, {plane}")
        test = _surfaces(data, measure, "test_loss")
        n = len(train)
        fig, grid = new_figure(4.2 * n + 1.3, 8.2, 2, n)
        trajectories = _trajectories(data, measure)
        xlabel, ylabel = AXES[measure]
        for row, surfaces, label in ((grid[0], train, "train loss"), (grid[1], test, "test loss")):
            plot_contours(
                surfaces,
                axes=row,
                trajectories=trajectories,
                label=label,
                xlabel=xlabel,
                ylabel=ylabel,
            )
        fig.suptitle(f"{plane}: train loss (top) and test loss (bottom)", fontweight="bold")
        return fig

    return make


MAX_RING_ROWS = 6  # a row per run is ~220 px tall: more would bury the rest of the page


def ring_figure(data: ReportData) -> Figure | None:
    """Rows of predicted images, most training pixels first."""
    results = data.measure("prediction")
    if not results:
        return None

    def size(item: tuple[str, dict[str, Any]]) -> tuple[float, str]:
        return (-float(item[1]["attrs"].get("train_size", 0)), item[0])

    rows = []
    for key, res in sorted(results.items(), key=size)[:MAX_RING_ROWS]:
        n = res["attrs"].get("train_size")
        label = f"{key}\n{int(n)} training pixels" if n is not None else key
        if "iou" in res:
            label += f"\nIoU {float(np.asarray(res['iou'])[-1]):.2f}"
        run = data.run_data.get(str(res["attrs"].get("run", key)))
        per_epoch = run.attrs.get("steps_per_epoch") if run else None
        rows.append(RingPredictions.of(label, res, float(per_epoch) if per_epoch else None))
    target = np.asarray(next(iter(results.values()))["target"])
    fig = plot_ring(rows, target)
    if len(results) > len(rows):
        fig.suptitle(f"the first {len(rows)} of {len(results)} runs", fontsize=10)
    return fig


def line_figure(data: ReportData) -> Figure | None:
    results = data.measure("prediction")
    if not results:
        return None
    first = next(iter(results.values()))
    curves = {key: np.asarray(res["output"])[-1] for key, res in sorted(results.items())}
    return plot_line_fit(
        np.asarray(first["x"]),
        curves,
        ols=np.asarray(first["ols"]),
        train_x=np.asarray(first["train_x"]),
        train_y=np.asarray(first["train_y"]),
    )


SPLIT_COLORS = {"train": "#009E73", "test": "#CC79A7"}  # not the mode colours: one panel per mode


def grokking_figure(data: ReportData) -> Figure | None:
    """Per mode, train and test accuracy against steps; the weight norm when it was logged."""
    train, test = S.history_curves(data, "train_acc"), S.history_curves(data, "test_acc")
    modes = [m for m in train if m in test]
    if not modes:
        return None
    norms = S.history_curves(data, "weight_norm")
    n = len(modes) + bool(norms)
    fig, axs = panels(None, n, min(4.6 * n, PAGE_WIDTH), 3.7)
    for ax, mode in zip(axs, modes, strict=False):
        curves = {"train": train[mode], "test": test[mode]}
        plot_curves(
            curves,
            ax=ax,
            ylabel="accuracy (fraction)",
            colors=SPLIT_COLORS,
            title=f"{mode} runs: train and test accuracy",
        )
    if norms:
        plot_curves(norms, ax=axs[-1], ylabel="‖θ‖₂ (L2 norm)", title="weight norm")
    return fig
