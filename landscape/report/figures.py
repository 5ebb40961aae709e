"""Plot functions: arrays in, a matplotlib Figure out; never a store, never a model.

Each function draws on the axes it is given (`ax=` for one panel, `axes=` for several) or on a
new figure of fixed size, and returns the figure. Seeds of one setting are drawn as a mean line
with a min-max band; normal runs are blue and overfit runs vermillion everywhere.

    >>> steps = np.array([0, 1, 10, 100])
    >>> fig = plot_curves({"normal": (steps, np.array([[0.1, 0.5, 0.9, 1.0]]))}, ylabel="acc")
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from landscape.report.style import PAGE_WIDTH, PAIR_COLOR, mode_color, panel, panels, styled

# label -> (x (m,), y (K, m)): K seeds sharing one x grid
Curves = Mapping[str, tuple[np.ndarray, np.ndarray]]


def _finite(values: Any) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def band_stats(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, min and max over seeds (axis 0) ignoring NaN; an all-NaN column stays NaN."""
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    y = np.where(np.isfinite(y), y, np.nan)  # a diverged seed's inf is a gap, not the mean
    with warnings.catch_warnings():  # an all-NaN column (a diverged point) is not an error
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(y, 0), np.nanmin(y, 0), np.nanmax(y, 0)


def step_axis(ax: Axes, x: np.ndarray, label: str = "optimizer steps") -> None:
    """Log-like x axis when the steps span decades (symlog keeps step 0 on the axis)."""
    x = _finite(x)
    positive = x[x > 0]
    if positive.size and positive.max() / max(positive.min(), 1.0) >= 100:
        ax.set_xscale("symlog", linthresh=1.0, linscale=0.4)
        ax.set_xlim(left=0 if x.min() >= 0 else None)
        label += " (log scale)"
    ax.set_xlabel(label)


def value_axis(ax: Axes, values: Any, label: str, *, log: bool | None = None) -> None:
    """Log y axis when positive values span more than two decades (or when asked)."""
    v = _finite(values)
    if log is None:
        log = bool(v.size) and v.min() > 0 and v.max() / v.min() > 100
    if log and v.size and v.min() > 0:
        ax.set_yscale("log")
        label += " (log scale)"
    elif log and v.size:  # non-positive values on a log-worthy range: symmetric log
        ax.set_yscale("symlog", linthresh=max(np.abs(v[v != 0]).min(initial=1.0), 1e-12))
        label += " (symlog scale)"
    ax.set_ylabel(label)


def draw_band(
    ax: Axes, x: np.ndarray, y: np.ndarray, *, color: str, label: str, linestyle: str = "-"
) -> None:
    """Mean line and min-max band over the rows of y (K, m); one seed is a plain line."""
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    mean, low, high = band_stats(y)
    n = y.shape[0]
    ax.plot(x, mean, color=color, lw=1.8, ls=linestyle, label=f"{label} (n={n})")
    if n > 1:
        ax.fill_between(x, low, high, color=color, alpha=0.18, lw=0)


def _colour(label: str, i: int, colors: Mapping[str, str] | None) -> str:
    return (colors or {}).get(label) or mode_color(label, i)


@styled
def plot_curves(
    curves: Curves,
    *,
    ax: Axes | None = None,
    ylabel: str = "",
    title: str = "",
    xlabel: str = "optimizer steps",
    colors: Mapping[str, str] | None = None,
    logy: bool | None = None,
    step_scale: bool = True,
    reference: tuple[float, str] | None = None,
) -> Figure:
    """One panel: for each label, the mean over seeds against x with a min-max band.

    `reference` (value, label) draws a horizontal dashed line, e.g. the normal runs' accuracy.
    """
    fig, ax = panel(ax)
    if reference is not None and np.isfinite(reference[0]):
        ax.axhline(reference[0], color="0.3", ls="--", lw=1.2, label=reference[1])
    xs, ys = [], []
    for i, (label, (x, y)) in enumerate(curves.items()):
        draw_band(ax, np.asarray(x), np.asarray(y), color=_colour(label, i, colors), label=label)
        xs.append(np.asarray(x).ravel())
        ys.append(np.asarray(y).ravel())
    if step_scale and xs:
        step_axis(ax, np.concatenate(xs), xlabel)
    else:
        ax.set_xlabel(xlabel)
    value_axis(ax, np.concatenate(ys) if ys else [], ylabel, log=logy)
    ax.set_title(title)
    if curves:
        ax.legend(loc="best")
    return fig


def _offsets(n: int, width: float = 0.3) -> np.ndarray:
    """Deterministic horizontal jitter for a strip of n points (golden-ratio sequence)."""
    return ((np.arange(n) * 0.6180339887) % 1.0 - 0.5) * width


@styled
def plot_distributions(
    values: Mapping[str, Sequence[float] | np.ndarray],
    *,
    ax: Axes | None = None,
    ylabel: str = "",
    title: str = "",
    colors: Mapping[str, str] | None = None,
    errors: Mapping[str, Sequence[float] | np.ndarray] | None = None,
    log: bool | None = None,
) -> Figure:
    """Per-seed values of each group: box and points for a few seeds, histograms for many.

    `errors` (same shapes as `values`) draws a per-point error bar, e.g. a standard error.
    """
    fig, ax = panel(ax, 4.0, 4.0)
    groups = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
    if max((len(_finite(v)) for v in groups.values()), default=0) >= 20:
        return _histograms(fig, ax, groups, ylabel, title, colors)
    for i, (label, v) in enumerate(groups.items()):
        color = _colour(label, i, colors)
        keep = np.isfinite(v)
        x = i + _offsets(int(keep.sum()))
        if keep.sum() > 1:
            box = ax.boxplot(
                [v[keep]], positions=[i], widths=0.55, showfliers=False, patch_artist=True
            )
            for patch in box["boxes"]:
                patch.set(facecolor=color, alpha=0.25, edgecolor=color)
            for part in ("medians", "whiskers", "caps"):
                for line in box[part]:
                    line.set(color=color)
        err = None if errors is None else np.asarray(errors[label], dtype=np.float64)[keep]
        ax.errorbar(
            x,
            v[keep],
            yerr=err,
            fmt="o",
            color=color,
            ms=5,
            mec="white",
            mew=0.6,
            elinewidth=1,
            capsize=2,
            zorder=3,
        )
    ax.set_xticks(
        range(len(groups)), [f"{k}\n(n={int(np.isfinite(v).sum())})" for k, v in groups.items()]
    )
    ax.set_xlim(-0.6, len(groups) - 0.4)
    value_axis(ax, np.concatenate(list(groups.values())) if groups else [], ylabel, log=log)
    ax.set_title(title)
    return fig


def _histograms(
    fig: Figure,
    ax: Axes,
    groups: Mapping[str, np.ndarray],
    xlabel: str,
    title: str,
    colors: Mapping[str, str] | None,
) -> Figure:
    """Overlaid histograms on shared bins (Merkulov & Oseledets' figures, for many seeds)."""
    everything = np.concatenate([_finite(v) for v in groups.values()])
    bins = np.histogram_bin_edges(everything, bins=30).tolist()
    for i, (label, v) in enumerate(groups.items()):
        color = _colour(label, i, colors)
        finite = _finite(v)
        ax.hist(finite, bins=bins, color=color, alpha=0.35, label=f"{label} (n={finite.size})")
        ax.hist(finite, bins=bins, color=color, histtype="step", lw=1.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("runs")
    ax.set_title(title)
    ax.legend(loc="best")
    return fig


@styled
def plot_curve_panels(
    panels_data: Sequence[tuple[str, str, Curves]],
    *,
    axes: Any = None,
    ncols: int = 3,
    xlabel: str = "optimizer steps",
    colors: Mapping[str, str] | None = None,
) -> Figure:
    """Several `plot_curves` panels: each (title, ylabel, curves by label)."""
    n = len(panels_data)
    rows = -(-n // ncols)
    fig, axs = panels(
        axes, n, min(3.9 * min(n, ncols), PAGE_WIDTH), 3.3 * rows, ncols=min(n, ncols)
    )
    for ax, (title, ylabel, curves) in zip(axs, panels_data, strict=True):
        plot_curves(curves, ax=ax, title=title, ylabel=ylabel, xlabel=xlabel, colors=colors)
    return fig


@styled
def plot_lines(
    lines: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    ax: Axes | None = None,
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
    colors: Mapping[str, str] | None = None,
    markers: Mapping[str, tuple[float, str]] | None = None,
    logy: bool | None = None,
) -> Figure:
    """Curves over a shared x (alpha, a slice coordinate) with vertical markers {x: label}."""
    fig, ax = panel(ax)
    ys = []
    for i, (label, (x, y)) in enumerate(lines.items()):
        draw_band(ax, np.asarray(x), np.asarray(y), color=_colour(label, i, colors), label=label)
        ys.append(np.asarray(y).ravel())
    if markers:  # named points (init, final, ...) as ticks on top, clear of the curves
        for at, _ in markers.values():
            ax.axvline(at, color="0.35", ls=":", lw=1)
        top = ax.secondary_xaxis("top")
        top.set_xticks([at for at, _ in markers.values()], [t for _, t in markers.values()])
        top.tick_params(length=0, pad=3.5, labelsize=8, labelcolor="0.25")
    ax.set_xlabel(xlabel)
    value_axis(ax, np.concatenate(ys) if ys else [], ylabel, log=logy)
    ax.set_title(title)
    if lines:
        ax.legend(loc="best")
    return fig


@styled
def plot_line_grid(
    grid: Sequence[tuple[str, str, Mapping[str, tuple[np.ndarray, np.ndarray]]]],
    *,
    axes: Any = None,
    ncols: int = 2,
    xlabel: str = "",
    markers: Mapping[str, tuple[float, str]] | None = None,
    colors: Mapping[str, str] | None = None,
) -> Figure:
    """Several `plot_lines` panels: each (title, ylabel, lines)."""
    n = len(grid)
    rows = -(-n // ncols)
    fig, axs = panels(axes, n, 4.6 * min(n, ncols), 3.3 * rows, ncols=min(n, ncols))
    for ax, (title, ylabel, lines) in zip(axs, grid, strict=True):
        plot_lines(
            lines, ax=ax, xlabel=xlabel, ylabel=ylabel, title=title, markers=markers, colors=colors
        )
    return fig


def pair_color() -> dict[str, str]:
    """Colour of the normal <-> overfit lines, keyed as draw.py labels them."""
    return {"normal → overfit": PAIR_COLOR}
