"""2D loss surfaces: filled contours with the projected trajectory, and a 3D view.

Surfaces of different points are drawn side by side on one colour scale, logarithmic when the
values span decades (a trained point's loss is often 1e-3 while the edge of the plane is 10).
Arrays follow Li et al.'s layout: `z[i, j]` is the value at (x[i], y[j]).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import colors as mcolors
from matplotlib import ticker as mticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from landscape.report.style import PAGE_WIDTH, new_figure, panels, styled

# label -> (x (nx,), y (ny,), z (nx, ny))
Surfaces = Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
# label -> (trajectory x (n,), trajectory y (n,)): init first, final point last
Trajectories = Mapping[str, tuple[np.ndarray, np.ndarray]]

LEVELS = 24


def shared_norm(values: Sequence[np.ndarray]) -> mcolors.Normalize:
    """One colour scale over every surface: log when positive values span > 2 decades."""
    finite = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in values])
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return mcolors.Normalize(0.0, 1.0)
    low, high = float(finite.min()), float(finite.max())
    if low > 0 and high / low > 100:
        return mcolors.LogNorm(low, high)
    if high == low:
        high = low + 1.0
    return mcolors.Normalize(low, high)


def limits(norm: mcolors.Normalize) -> tuple[float, float]:
    """(vmin, vmax) of a norm made by `shared_norm` (always set there)."""
    return float(norm.vmin if norm.vmin is not None else 0.0), float(
        norm.vmax if norm.vmax is not None else 1.0
    )


def levels(norm: mcolors.Normalize) -> np.ndarray:
    """Contour levels evenly spaced in the norm's own scale (log or linear)."""
    low, high = limits(norm)
    if isinstance(norm, mcolors.LogNorm):
        return np.geomspace(low, high, LEVELS)
    return np.linspace(low, high, LEVELS)


def _grid(z: np.ndarray, norm: mcolors.Normalize) -> np.ma.MaskedArray:
    """z transposed to (ny, nx) for contourf, non-finite (diverged) points masked."""
    z = np.ma.masked_invalid(np.asarray(z, dtype=np.float64).T)
    if isinstance(norm, mcolors.LogNorm):
        z = np.ma.masked_less_equal(z, 0)
    return z


@styled
def plot_contours(
    surfaces: Surfaces,
    *,
    trajectories: Trajectories | None = None,
    axes: Any = None,
    label: str = "train loss",
    title: str = "",
    xlabel: str = "x: coefficient of direction x",
    ylabel: str = "y: coefficient of direction y",
) -> Figure:
    """Filled contours of each surface on one colour scale, the trajectory on top if given.

    The point the plane is centred on (x = y = 0) is marked with a star.
    """
    fig, axs = panels(axes, len(surfaces), 4.2 * len(surfaces) + 1.0, 4.1)
    norm = shared_norm([z for _, _, z in surfaces.values()])
    mappable = None
    for ax, (name, (x, y, z)) in zip(axs, surfaces.items(), strict=True):
        mappable = ax.contourf(
            x, y, _grid(z, norm), levels=levels(norm), norm=norm, cmap="viridis", extend="neither"
        )
        ax.contour(
            x,
            y,
            _grid(z, norm),
            levels=levels(norm)[::4],
            norm=norm,
            colors="white",
            linewidths=0.5,
            alpha=0.6,
        )
        if trajectories and name in trajectories:
            _trajectory(ax, *trajectories[name])
        ax.plot(
            [0],
            [0],
            marker="*",
            ms=12,
            color="white",
            mec="black",
            mew=0.8,
            ls="none",
            label="final point",
        )
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_aspect("equal", adjustable="box")
        ax.xaxis.set_major_locator(mticker.MaxNLocator(5))  # room for labels like -0.75
        ax.yaxis.set_major_locator(mticker.MaxNLocator(5))
        ax.legend(loc="upper right", fontsize=7.5)
    if mappable is not None:
        _colorbar(fig, mappable, axs, norm, label)
    if title:
        fig.suptitle(title, fontweight="bold")
    return fig


def _colorbar(fig: Figure, mappable: Any, axs: Sequence[Axes], norm: Any, label: str) -> None:
    """A colour bar with readable ticks: one per decade on a log scale."""
    bar = fig.colorbar(mappable, ax=axs, shrink=0.9)
    if isinstance(norm, mcolors.LogNorm):
        low, high = np.log10(limits(norm))
        decades = np.arange(np.ceil(low), np.floor(high) + 1)
        if decades.size < 2:  # less than two decades inside: label the ends instead
            decades = np.array([low, high])
        bar.set_ticks((10.0**decades).tolist())
        bar.ax.yaxis.set_major_formatter(mticker.LogFormatterSciNotation())
        bar.ax.minorticks_off()
        label += " (log colour scale)"
    bar.set_label(label)


def _trajectory(ax: Axes, tx: np.ndarray, ty: np.ndarray) -> None:
    """The training path projected on the plane: init (circle) to final point."""
    ax.plot(tx, ty, color="white", lw=2.6, zorder=3)
    ax.plot(tx, ty, color="#D62728", lw=1.3, marker="o", ms=3, zorder=4, label="trajectory")
    ax.plot(
        tx[:1],
        ty[:1],
        marker="o",
        ms=8,
        color="#D62728",
        mec="white",
        ls="none",
        zorder=5,
        label="init",
    )


@styled
def plot_surface_3d(
    surfaces: Surfaces, *, axes: Any = None, label: str = "train loss", title: str = ""
) -> Figure:
    """3D views of each surface on one scale; log10 of the values when they span decades."""
    if axes is None:
        fig, grid = new_figure(
            min(4.8 * len(surfaces), PAGE_WIDTH), 4.4, 1, len(surfaces), projection="3d"
        )
        axs = list(grid.ravel())
    else:
        fig, axs = panels(axes, len(surfaces), 0, 0)
    norm = shared_norm([z for _, _, z in surfaces.values()])
    log = isinstance(norm, mcolors.LogNorm)
    lo, hi = limits(norm)
    if log:
        lo, hi = float(np.log10(lo)), float(np.log10(hi))
    for ax, (name, (x, y, z)) in zip(axs, surfaces.items(), strict=True):
        gx, gy = np.meshgrid(x, y)  # (ny, nx)
        zz = _grid(z, norm)
        top = limits(norm)[1]  # masked (diverged) points drawn at the top of the scale
        values = np.log10(zz.filled(top)) if log else zz.filled(top)
        ax.plot_surface(
            gx,
            gy,
            values,
            cmap="viridis",
            vmin=lo,
            vmax=hi,
            rstride=1,
            cstride=1,
            linewidth=0,
            antialiased=False,
        )
        ax.set_zlim(lo, hi)
        ax.view_init(elev=30, azim=-60)
        ax.set_title(name)
        ax.set_xlabel("x", labelpad=-2)
        ax.set_ylabel("y", labelpad=-2)
        ax.set_zlabel(f"log10({label})" if log else label, labelpad=2)
        ax.tick_params(labelsize=7, pad=0)
    if title:
        fig.suptitle(title, fontweight="bold")
    return fig
