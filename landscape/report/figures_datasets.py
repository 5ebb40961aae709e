"""Figures that only some datasets have: the ring's predicted image, the line's fitted curve,
and the Hessian spectrum per run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from landscape.report.figures import value_axis
from landscape.report.style import mode_color, new_figure, panel, styled


@dataclass(frozen=True)
class RingPredictions:
    """One run's predicted images over the plane: output (n, H, W) at steps (n,)."""

    label: str  # e.g. "normal-000, 625 training pixels"
    steps: np.ndarray  # (n,)
    output: np.ndarray  # (n, H, W), the net's prediction; row 0 is the top of the image
    x: np.ndarray  # (W,)
    y: np.ndarray  # (H,) downwards, as image rows
    steps_per_epoch: float | None = None  # titles in epochs, as the blog shows them

    @classmethod
    def of(
        cls, label: str, result: Mapping[str, Any], steps_per_epoch: float | None = None
    ) -> RingPredictions:
        """From a stored `prediction` result's arrays."""
        step, output, x, y = (np.asarray(result[k]) for k in ("step", "output", "x", "y"))
        return cls(label, step, output, x, y, steps_per_epoch)

    def title(self, i: int) -> str:
        step = int(self.steps[i])
        if not self.steps_per_epoch:
            return f"step {step}"
        return f"epoch {step / self.steps_per_epoch:.3g} (step {step})"


def checkpoint_indices(steps: np.ndarray, k: int) -> list[int]:
    """Up to k indices of steps spread evenly in log(step + 1), always the first and last."""
    n = len(steps)
    if n <= k:
        return list(range(n))
    targets = np.linspace(np.log1p(max(steps[0], 0)), np.log1p(steps[-1]), k)
    picked = [int(np.argmin(np.abs(np.log1p(np.maximum(steps, 0)) - t))) for t in targets]
    return sorted(set(picked) | {0, n - 1})


@styled
def plot_ring(
    runs: Sequence[RingPredictions], target: np.ndarray, *, max_columns: int = 5
) -> Figure:
    """For each run (a row): the prediction at a few checkpoints, then the true image."""
    columns = max_columns + 1
    fig, grid = new_figure(2.0 * columns + 0.8, 2.2 * len(runs) + 0.4, len(runs), columns)
    image = None
    lo, hi = float(np.nanmin(target)), float(np.nanmax(target))  # the true image's range
    for row, run in zip(grid, runs, strict=True):
        picks = checkpoint_indices(np.asarray(run.steps), max_columns)
        extent = (float(run.x[0]), float(run.x[-1]), float(run.y[-1]), float(run.y[0]))
        # prediction and truth on one gray scale and grid, so they compare pixel for pixel
        shown = dict(origin="upper", extent=extent, cmap="gray", vmin=lo, vmax=hi,
                     interpolation="nearest")  # fmt: skip
        for ax, i in zip(row, picks, strict=False):
            image = ax.imshow(run.output[i], **shown)
            ax.set_title(run.title(i), fontsize=9)
        for ax in row[len(picks) : columns - 1]:
            ax.set_visible(False)
        row[-1].imshow(target, **shown)
        row[-1].set_title("true image", fontsize=9)
        row[0].set_ylabel(run.label, fontsize=9)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
    if image is not None:
        fig.colorbar(image, ax=grid, label="predicted value (dark … light)", shrink=0.6)
    return fig


@styled
def plot_line_fit(
    x: np.ndarray,
    curves: Mapping[str, np.ndarray],
    *,
    ols: np.ndarray,
    train_x: np.ndarray,
    train_y: np.ndarray,
    ax: Any = None,
) -> Figure:
    """The nets' final curves over x beside the least-squares line and the training points."""
    fig, ax = panel(ax, 6.5, 4.2)
    ax.scatter(
        train_x, train_y, s=12, color="0.55", label=f"training points (n={len(train_x)})", zorder=2
    )
    ax.plot(x, ols, color="black", ls="--", lw=2, label="ordinary least squares", zorder=4)
    for i, (label, y) in enumerate(curves.items()):
        ax.plot(
            x, y, color=mode_color(label.split("-")[0], i), lw=1.4, alpha=0.9, label=label, zorder=3
        )
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("final fit of each run vs ordinary least squares")
    ax.legend(loc="best", fontsize=7.5)
    return fig


@styled
def plot_spectrum(eigenvalues: Mapping[str, tuple[str, np.ndarray]], *, ax: Any = None) -> Figure:
    """Top-k Hessian eigenvalues of each run ({run: (mode, (k,) descending)}), by rank."""
    fig, ax = panel(ax, 4.6, 3.8)
    seen: set[str] = set()
    everything = []
    for run, (mode, values) in eigenvalues.items():
        values = np.asarray(values, dtype=np.float64)
        label = mode if mode not in seen else None
        seen.add(mode)
        ax.plot(
            np.arange(1, len(values) + 1),
            values,
            marker="o",
            ms=4,
            lw=1.2,
            alpha=0.8,
            color=mode_color(mode),
            label=label,
            gid=run,
        )
        everything.append(values)
    ax.set_xlabel("eigenvalue rank (1 = largest)")
    if everything:
        ax.set_xticks(range(1, max(len(v) for v in everything) + 1))
    value_axis(ax, np.concatenate(everything) if everything else [], "eigenvalue (loss / θ²)")
    ax.set_title("top Hessian eigenvalues, one line per run")
    if seen:
        ax.legend(loc="best")
    return fig
