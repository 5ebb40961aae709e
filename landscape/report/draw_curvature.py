"""Figure builders for the deeper curvature measures: stored arrays to plots."""

from __future__ import annotations

import json

import numpy as np
from matplotlib.figure import Figure

from landscape.report import series as S
from landscape.report.data import ReportData
from landscape.report.figures_curvature import plot_blocks, plot_estimates, plot_spectral_density
from landscape.report.style import PAGE_WIDTH, panels

ESTIMATORS = (("trace", "Hutchinson"), ("trace_hutchpp", "Hutch++"))
# the curvature section's measures, in the order the report lists the missing ones
CURVATURE_MEASURES = ("hessian", "trace", "trace_hutchpp", "spectral_density", "layer_curvature")


def spectral_density_figure(data: ReportData) -> Figure:
    """Every run's smoothed SLQ density, normal and overfit on one log axis."""
    densities = {
        key: (S.run_mode(data, key), np.asarray(r["eigenvalue"]), np.asarray(r["density"]))
        for key, r in sorted(data.measure("spectral_density").items())
        if np.isfinite(np.asarray(r["density"])).all()
    }
    return plot_spectral_density(densities)


def trace_estimators_figure(data: ReportData) -> Figure:
    """Each run's Hessian trace by Hutchinson and by Hutch++ with standard errors, by mode
    (left), and each standard error relative to its estimate (right: the errors bars are
    too short to compare on the left's scale)."""
    estimates: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    relative: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for measure, label in ESTIMATORS:
        values = S.per_seed(data, measure, lambda r: float(r["trace"]))
        errors = S.per_seed(data, measure, lambda r: float(r["std_error"]))
        for mode, v in values.items():
            estimates.setdefault(mode, {})[label] = (v, errors[mode])
            share = 100 * errors[mode] / np.abs(v)
            relative.setdefault(mode, {})[label] = (share, np.zeros_like(share))
    fig, axs = panels(None, 2, PAGE_WIDTH, 4.0)
    plot_estimates(
        estimates,
        ax=axs[0],
        ylabel="tr(H) (loss / θ²)",
        title="Hessian trace ± standard error, at equal products",
    )
    plot_estimates(
        relative,
        ax=axs[1],
        ylabel="standard error / |estimate| (%)",
        title="relative standard error (lower is better)",
    )
    return fig


def layer_curvature_figure(data: ReportData) -> Figure:
    """Top eigenvalue and trace of each block's Hessian, by mode (runs whose blocks differ
    from the first run's are left out: another model)."""
    results = sorted(data.measure("layer_curvature").items())
    blocks = json.loads(results[0][1]["attrs"]["blocks"]) if results else []
    same = [(k, r) for k, r in results if json.loads(r["attrs"]["blocks"]) == blocks]
    fig, axs = panels(None, 2, PAGE_WIDTH, 4.0)
    for ax, name, label in (
        (axs[0], "top_eigenvalue", "largest eigenvalue of H_bb (loss / θ²)"),
        (axs[1], "trace", "tr(H_bb) (loss / θ²)"),
    ):
        rows: dict[str, list[np.ndarray]] = {}
        for key, r in same:
            rows.setdefault(S.run_mode(data, key), []).append(np.asarray(r[name]))
        values = {mode: np.vstack(v) for mode, v in rows.items()}
        plot_blocks(blocks, values, ax=ax, ylabel=label, title=label.split(" (")[0] + " per block")
    return fig
