"""Plot functions for the deeper curvature measures: spectral density, trace estimators and
per-layer curvature. Arrays in, a Figure out; each draws on the axes given or a new figure.

    >>> grid = np.linspace(-1.0, 5.0, 7)
    >>> fig = plot_spectral_density({"normal-000": ("normal", grid, np.full(7, 1 / 6))})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from landscape.report.figures import value_axis
from landscape.report.style import mode_color, panel, styled

FLOOR = 1e-7  # densities below this fraction of the peak are tails of the smoothing Gaussians


@styled
def plot_spectral_density(
    densities: Mapping[str, tuple[str, np.ndarray, np.ndarray]], *, ax: Any = None
) -> Figure:
    """One line per run ({run: (mode, grid (n,), density (n,))}) on a log density axis.

    Runs of one mode share a colour; the axis stops FLOOR below the highest peak, so the
    Gaussians' far tails do not stretch it over tens of decades.
    """
    fig, ax = panel(ax, 6.5, 4.2)
    peak = max((float(np.nanmax(d)) for _, _, d in densities.values()), default=1.0)
    seen: set[str] = set()
    for run, (mode, grid, density) in densities.items():
        shown = np.where(density >= FLOOR * peak, density, np.nan)
        ax.plot(
            grid,
            shown,
            color=mode_color(mode),
            lw=1.2,
            alpha=0.8,
            gid=run,
            label=None if mode in seen else mode,
        )
        seen.add(mode)
    if densities and np.isfinite(peak) and peak > 0:
        ax.set_yscale("log")
        ax.set_ylim(FLOOR * peak, 2 * peak)
    ax.set_xlabel("Hessian eigenvalue (loss / θ²)")
    ax.set_ylabel("spectral density (log scale)")
    ax.set_title("Hessian spectral density (SLQ), one line per run")
    if seen:
        ax.legend(loc="best")
    return fig


@styled
def plot_estimates(
    estimates: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]],
    *,
    ax: Any = None,
    ylabel: str = "",
    title: str = "",
) -> Figure:
    """Estimates with error bars side by side: {group: {estimator: (values (K,), errors (K,))}}.

    Each group (a mode) gets a slot on the x axis; its estimators sit next to each other in
    it, one point per seed with its standard error."""
    fig, ax = panel(ax, 5.5, 4.0)
    names = sorted({e for per in estimates.values() for e in per})
    markers = ("o", "s", "^", "D")
    for i, (group, per) in enumerate(estimates.items()):
        for j, name in enumerate(names):
            if name not in per:
                continue
            values, errors = (np.asarray(a, dtype=np.float64) for a in per[name])
            x = i + (j - (len(names) - 1) / 2) * 0.25 + np.linspace(-0.04, 0.04, len(values))
            ax.errorbar(
                x,
                values,
                yerr=errors,
                fmt=markers[j % len(markers)],
                ms=5,
                color=mode_color(group, i),
                mfc="white" if j else None,
                capsize=2,
                label=f"{name}" if i == 0 else None,
            )
    ax.set_xticks(range(len(estimates)), list(estimates))
    ax.set_xlim(-0.6, len(estimates) - 0.4)
    everything = [np.asarray(v[0]) for per in estimates.values() for v in per.values()]
    value_axis(ax, np.concatenate(everything) if everything else [], ylabel)
    ax.set_title(title)
    if names:
        ax.legend(loc="best", title="marker: estimator")
    return fig


@styled
def plot_blocks(
    blocks: Sequence[str],
    values: Mapping[str, np.ndarray],
    *,
    ax: Any = None,
    ylabel: str = "",
    title: str = "",
) -> Figure:
    """A per-block quantity by mode: {mode: (K, n_blocks)}, bars at the mean, dots per seed."""
    fig, ax = panel(ax, 5.5, 4.0)
    width = 0.8 / max(len(values), 1)
    for i, (mode, v) in enumerate(values.items()):
        v = np.atleast_2d(np.asarray(v, dtype=np.float64))
        x = np.arange(len(blocks)) + (i - (len(values) - 1) / 2) * width
        color = mode_color(mode, i)
        ax.bar(
            x,
            np.nanmean(v, 0),
            width=width * 0.9,
            color=color,
            alpha=0.35,
            label=f"{mode} (n={len(v)})",
        )
        for row in v:
            ax.plot(x, row, "o", ms=3.5, color=color)
    ax.set_xticks(range(len(blocks)), list(blocks), rotation=30, ha="right")
    everything = [np.asarray(v).ravel() for v in values.values()]
    value_axis(ax, np.concatenate(everything) if everything else [], ylabel)
    ax.set_title(title)
    if values:
        ax.legend(loc="best")
    return fig
