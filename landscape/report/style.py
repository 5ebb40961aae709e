"""One look for every figure, applied in a context so the caller's rcParams are never changed.

Figures are `matplotlib.figure.Figure` objects on an Agg canvas, never pyplot figures: nothing
is registered globally, no GUI backend is touched, and a figure no one holds is freed by the
garbage collector (its artists refer to each other). PNGs are byte-identical between runs:
fixed size and dpi, the bundled DejaVu font, and no "Software" or date metadata.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

import matplotlib
import matplotlib.ticker as mticker
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.mathtext import MathTextParser
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from landscape.store.atomic import atomic_path

DPI = 100
# inches: 1150 px at DPI 100, the width of the page's column, so figures show at ~100%
PAGE_WIDTH = 11.5
# normal blue, overfit vermillion (Okabe-Ito: distinct for colour-blind readers and in grey)
MODE_COLORS = {"normal": "#0072B2", "overfit": "#D55E00"}
RECIPE_COLORS = {
    "sgd": "#009E73",
    "sgd-paper": "#56B4E9",
    "adam-full": "#CC79A7",
    "adam": "#E69F00",
}
PAIR_COLOR = "#6A3D9A"  # normal <-> overfit lines: neither mode's colour
OTHER_COLORS = ("#56B4E9", "#E69F00", "#009E73", "#F0E442", "#CC79A7", "#999999")

# seaborn's "whitegrid" look: the rcParams `seaborn.axes_style("whitegrid")` returns (0.13),
# written out because importing seaborn (pandas, scipy.stats) took longer than drawing three
# figures; tests/test_report.py checks it against seaborn. seaborn's plotting functions are not
# used: its strip-plot jitter draws from numpy's global generator, which would make PNG bytes
# differ run to run.
SEABORN_WHITEGRID: dict[str, Any] = {
    "figure.facecolor": "white",
    "axes.labelcolor": ".15",
    "xtick.direction": "out",
    "ytick.direction": "out",
    "xtick.color": ".15",
    "ytick.color": ".15",
    "axes.axisbelow": True,
    "grid.linestyle": "-",
    "text.color": ".15",
    "font.family": ["sans-serif"],
    "font.sans-serif": [
        "Arial",
        "DejaVu Sans",
        "Liberation Sans",
        "Bitstream Vera Sans",
        "sans-serif",
    ],
    "lines.solid_capstyle": "round",
    "patch.edgecolor": "w",
    "patch.force_edgecolor": True,
    "image.cmap": "rocket",
    "xtick.top": False,
    "ytick.right": False,
    "axes.grid": True,
    "axes.facecolor": "white",
    "axes.edgecolor": ".8",
    "grid.color": ".8",
    "axes.spines.left": True,
    "axes.spines.bottom": True,
    "axes.spines.right": True,
    "axes.spines.top": True,
    "xtick.bottom": False,
    "ytick.left": False,
}
# Our sizes and colours on top (nothing global is set: `style()` applies them in a context).
_OURS: dict[str, Any] = {
    "font.family": "DejaVu Sans",  # ships with matplotlib: the same glyphs on every machine
    "font.size": 10,
    "axes.facecolor": "white",
    "axes.edgecolor": "#cccccc",
    "axes.grid": True,
    "axes.axisbelow": True,
    "axes.labelcolor": "#262626",
    "axes.labelsize": 9.5,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "grid.color": "#e5e5e5",
    "grid.linewidth": 0.8,
    "xtick.color": "#262626",
    "ytick.color": "#262626",
    "xtick.labelsize": 8.5,
    # x tick marks of length 0 rather than hidden (seaborn hides them), the labels 7 pt below
    # the axis as before (3.5 pad + 3.5 mark): with no visible mark matplotlib cannot tell
    # where the ticks are and measures the x axis again to place every title (a twentieth of
    # the drawing). Minor marks stay hidden.
    "xtick.bottom": True,
    "xtick.minor.bottom": False,
    "xtick.major.size": 0.0,
    "xtick.major.pad": 7.0,
    "ytick.labelsize": 8.5,
    "lines.solid_capstyle": "round",
    "legend.fontsize": 8,
    "legend.framealpha": 0.85,
    "legend.edgecolor": "#cccccc",
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "image.cmap": "viridis",
    "axes.formatter.limits": (-3, 4),
    "svg.hashsalt": "landscape",  # deterministic ids should anyone save SVG
}
_STYLE: dict[str, Any] = {**SEABORN_WHITEGRID, **_OURS}


@contextlib.contextmanager
def style() -> Iterator[None]:
    """The report's rcParams for the duration of the block only."""
    with matplotlib.rc_context(cast(Any, _STYLE)):
        yield


P = ParamSpec("P")
R = TypeVar("R")


def styled(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a plot function inside `style()` (artists read rcParams when they are created)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with style():
            return fn(*args, **kwargs)

    return wrapper


def new_figure(
    width: float, height: float, nrows: int = 1, ncols: int = 1, **subplot_kw: Any
) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure (inches) on an Agg canvas and its (nrows, ncols) axes."""
    with style():
        fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, squeeze=False, subplot_kw=subplot_kw or None)
    return fig, axes


def figure_of(ax: Axes) -> Figure:
    """The top-level figure an axes lives on."""
    fig = ax.figure
    while not isinstance(fig, Figure):  # a SubFigure: walk up to the root
        fig = fig.figure
    return fig


def panel(ax: Axes | None, width: float = 6.0, height: float = 4.0) -> tuple[Figure, Axes]:
    """The given axes and its figure, or a new one-panel figure."""
    if ax is not None:
        return figure_of(ax), ax
    fig, axes = new_figure(width, height)
    return fig, axes[0, 0]


def panels(
    axes: Any, n: int, width: float, height: float, ncols: int | None = None
) -> tuple[Figure, list[Axes]]:
    """`n` given axes and their figure, or a new figure with n panels in one row (or ncols)."""
    if axes is not None:
        flat = list(np.ravel(axes))
        if len(flat) < n:
            raise ValueError(f"expected {n} axes, found {len(flat)}")
        return figure_of(flat[0]), flat[:n]
    ncols = ncols or n
    nrows = -(-n // ncols)
    fig, grid = new_figure(width, height, nrows, ncols)
    flat = list(grid.ravel())
    for extra in flat[n:]:
        extra.set_visible(False)
    return fig, flat[:n]


# One mathtext parser for every figure's renderer: its parses are cached per parser, so each
# figure's own (Agg makes one per renderer) parsed the same log-axis labels (10^k) again.
_MATHTEXT = MathTextParser("path")

# zlib level of the PNGs: 3 writes an opaque figure's RGB about a third faster than the default
# 6, and 3% larger (both still smaller than the RGBA PNGs savefig writes)
PNG_COMPRESS_LEVEL = 3


def save(fig: Figure, path: Path) -> Path:
    """Write a PNG that is byte-identical for the same figure (no software or date stamp).

    One Agg draw (the constrained layout runs inside it), then its pixels to PNG, without the
    extra layout-only draw `fig.savefig` makes first for a constrained-layout figure. An opaque
    figure (all of the report's) is written as RGB: the same pixels as savefig's RGBA in 3/4 of
    the bytes to compress.
    """
    with style(), atomic_path(path, what="figure") as tmp:
        fig.set_dpi(DPI)
        _skip_unseen_minor_ticks(fig)
        canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
        canvas.get_renderer().mathtext_parser = _MATHTEXT
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba())
        pixels = np.ascontiguousarray(rgba[..., :3]) if rgba[..., 3].min() == 255 else rgba
        Image.fromarray(pixels).save(
            tmp,
            format="png",
            dpi=(DPI, DPI),
            pnginfo=PngInfo(),  # no text chunks: a "Software" version would change the bytes
            compress_level=PNG_COMPRESS_LEVEL,
        )
    # not fig.clear(): it re-creates every axes empty before freeing it; the figure, never
    # registered with pyplot, goes with the garbage collector
    return path


def _skip_unseen_minor_ticks(fig: Figure) -> None:
    """Drop the minor ticks of a log or symlog axis that show nothing (an eighth of drawing).

    The style hides tick marks and grids only major ticks, and a log axis labels its minor
    ticks only when it spans about a decade or less: every other minor tick is an invisible
    Tick that the layout and the draw would still create, format and measure.
    """
    for ax in fig.axes:
        if ax.name != "rectilinear" or ax.get_aspect() != "auto":  # limits final before draw
            continue
        for axis in (ax.xaxis, ax.yaxis):
            locator = axis.get_minor_locator()
            if isinstance(locator, mticker.NullLocator):
                continue
            tick = axis.get_minor_ticks(1)[0]
            if any(a.get_visible() for a in (tick.tick1line, tick.tick2line, tick.gridline)):
                continue
            labelled = tick.label1.get_visible() or tick.label2.get_visible()
            if not labelled or not any(axis.get_minor_formatter().format_ticks(list(locator()))):
                axis.set_minor_locator(mticker.NullLocator())


def mode_color(mode: str, i: int = 0) -> str:
    return MODE_COLORS.get(mode, OTHER_COLORS[i % len(OTHER_COLORS)])


def recipe_color(recipe: str, i: int = 0) -> str:
    return RECIPE_COLORS.get(recipe, OTHER_COLORS[i % len(OTHER_COLORS)])
