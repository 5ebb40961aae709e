"""Figure builders for the deeper curvature measures: stored arrays to plots."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from landscape.report import series as S
from landscape.report.data import ReportData
from landscape.report.figures_curvature import plot_spectral_density


def spectral_density_figure(data: ReportData) -> Figure:
    """Every run's smoothed SLQ density, normal and overfit on one log axis."""
    densities = {
        key: (S.run_mode(data, key), np.asarray(r["eigenvalue"]), np.asarray(r["density"]))
        for key, r in sorted(data.measure("spectral_density").items())
        if np.isfinite(np.asarray(r["density"])).all()
    }
    return plot_spectral_density(densities)
