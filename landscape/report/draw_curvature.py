"""Figure builders for the deeper curvature measures: stored arrays to plots."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from landscape.report import series as S
from landscape.report.data import ReportData
from landscape.report.figures_curvature import plot_estimates, plot_spectral_density

ESTIMATORS = (("trace", "Hutchinson"), ("trace_hutchpp", "Hutch++"))


def spectral_density_figure(data: ReportData) -> Figure:
    """Every run's smoothed SLQ density, normal and overfit on one log axis."""
    densities = {
        key: (S.run_mode(data, key), np.asarray(r["eigenvalue"]), np.asarray(r["density"]))
        for key, r in sorted(data.measure("spectral_density").items())
        if np.isfinite(np.asarray(r["density"])).all()
    }
    return plot_spectral_density(densities)


def trace_estimators_figure(data: ReportData) -> Figure:
    """Each run's Hessian trace by Hutchinson and by Hutch++ with standard errors, by mode."""
    estimates: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for measure, label in ESTIMATORS:
        values = S.per_seed(data, measure, lambda r: float(r["trace"]))
        errors = S.per_seed(data, measure, lambda r: float(r["std_error"]))
        for mode, v in values.items():
            estimates.setdefault(mode, {})[label] = (v, errors[mode])
    return plot_estimates(
        estimates,
        ylabel="tr(H) (loss / θ²)",
        title="Hessian trace ± standard error, at equal products",
    )
