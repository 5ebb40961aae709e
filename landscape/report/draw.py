"""Which figures a report has, what each caption says to look for, and drawing them to PNG.

A figure is drawn only when the measures it needs were computed (and, for the dataset figures,
only for that dataset); otherwise its section says "not computed" with the command.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from landscape.report.data import ReportData
from landscape.report.draw_curvature import (
    CURVATURE_MEASURES,
    layer_curvature_figure,
    spectral_density_figure,
    trace_estimators_figure,
)
from landscape.report.draw_curves import (
    accuracy_figure,
    curve_figure,
    distance_per_seed_figure,
    distance_steps_figure,
    epochs_figure,
    gradient_figure,
    interpolation_figure,
    slices_figure,
)
from landscape.report.draw_extra import (
    grokking_figure,
    line_figure,
    ring_figure,
    surface_figures,
)
from landscape.report.draw_sharpness import (
    curvature_figure,
    hessian_figure,
    restart_figure,
    sharpness_figure,
)
from landscape.report.style import save, style
from landscape.store.atomic import ensure_folder


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    measures: tuple[str, ...]  # what it draws from; () for the training history
    intro: str


@dataclass(frozen=True)
class FigureSpec:
    name: str  # file name under figures/
    section: str
    needs: tuple[str, ...]  # measures that must be computed
    caption: str  # what to look for
    make: Callable[[ReportData], Figure | None]  # None: nothing to draw for this store
    datasets: tuple[str, ...] = ()  # only for these datasets; () for all
    any_need: bool = False  # drawn when any (not all) of `needs` was computed


@dataclass(frozen=True)
class DrawnFigure:
    name: str
    section: str
    caption: str
    path: Path


SECTIONS: tuple[Section, ...] = (
    Section(
        "training",
        "Training",
        (),
        "Accuracy and loss over training, from each run's "
        "history. Bands span the seeds (min to max); lines are the mean.",
    ),
    Section(
        "distance",
        "Distance from initialization",
        ("distance", "pair_distance"),
        "How far each run's final point lies from its initial point.",
    ),
    Section(
        "gradient",
        "Gradient norm",
        ("gradient",),
        "Full-batch gradient of the clean training loss: near zero at a critical point.",
    ),
    Section(
        "interpolation",
        "1D interpolations",
        ("interpolation", "curve", "surface1d"),
        "Loss and accuracy on straight lines between points, on a trained curve between two minima "
        "and along random directions.",
    ),
    Section(
        "surfaces",
        "2D loss surfaces",
        ("surface2d", "surface_pca"),
        "Loss on planes through a final point (Li et al. 2018).",
    ),
    Section(
        "sharpness",
        "Curvature and sharpness",
        (*CURVATURE_MEASURES, "epsilon_sharpness", "perturbation", "curvature_trajectory"),
        "How sharply the clean training loss rises around each final point.",
    ),
    Section(
        "restart",
        "Restarts from overfit points",
        ("restart",),
        "SGD or Adam restarted on the clean training data from each overfit point.",
    ),
    Section(
        "prediction",
        "What the network draws",
        ("prediction",),
        "The network's output over the input space (ring and line datasets).",
    ),
)


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec(
        "training_curves.png",
        "training",
        (),
        "Look for: normal runs reaching high test accuracy; overfit runs fitting the clean "
        "training set as well while their test accuracy falls towards zero as they memorize the "
        "corrupted labels (right column).",
        accuracy_figure,
    ),
    FigureSpec(
        "training_epochs.png",
        "training",
        (),
        "The same accuracies against epochs (passes over each mode's own training set; an overfit "
        "epoch also covers the corrupted copies), for comparing the modes after the same number of"
        " epochs.",
        epochs_figure,
    ),
    FigureSpec(
        "grokking.png",
        "training",
        (),
        "Look for: test accuracy jumping long after train accuracy reached 100% (grokking), and "
        "the weight norm shrinking before the jump.",
        grokking_figure,
        ("modular",),
    ),
    FigureSpec(
        "distance_per_seed.png",
        "distance",
        ("distance",),
        "One dot per seed. Merkulov & Oseledets report that overfit points lie farther from the "
        "initialization than normal points after the same training: look for the overfit "
        "distribution above the normal one.",
        distance_per_seed_figure,
    ),
    FigureSpec(
        "distance_steps.png",
        "distance",
        ("distance",),
        "Distance from the initial point at every checkpoint: where the modes part, and whether "
        "the overfit runs keep moving after the normal runs have settled.",
        distance_steps_figure,
    ),
    FigureSpec(
        "gradient_norm.png",
        "gradient",
        ("gradient",),
        "A critical point of the clean training loss has a gradient norm near zero: look at where "
        "each mode ends (right panel, per seed); the paper claims both kinds of point are critical"
        " points of the clean loss.",
        gradient_figure,
    ),
    FigureSpec(
        "interpolation_init_final.png",
        "interpolation",
        ("interpolation",),
        "From the initial point (α = 0) to the final point (α = 1) and beyond: a descent that "
        "never goes up on [0, 1] is monotone (largest loss rise 0; Goodfellow et al. 2015, Lucas "
        "et al. 2021). It joins a starting point to a minimum, not two minima, so the summary "
        "gives its largest loss rise, not a barrier.",
        interpolation_figure("init-final", ("init", "final")),
    ),
    FigureSpec(
        "interpolation_normal_overfit.png",
        "interpolation",
        ("interpolation",),
        "From each seed's normal point (α = 0) to its overfit point (α = 1): train loss above the "
        "straight chord between the ends is the loss barrier (Entezari et al. 2022), error above "
        "the ends' mean error the error barrier (Frankle et al. 2020); either separates the two "
        "minima.",
        interpolation_figure("normal-overfit", ("normal", "overfit")),
    ),
    FigureSpec(
        "curve_normal_overfit.png",
        "interpolation",
        ("curve",),
        "From each seed's normal point (t = 0) to its overfit point (t = 1) along a quadratic "
        "Bezier curve whose bend was trained on the clean training set (Garipov et al. 2018), and "
        "along the straight line: a curve whose train loss stays low where the line's rises joins "
        "the two minima by a low-loss path; the barriers of both are in the summary.",
        curve_figure,
    ),
    FigureSpec(
        "interpolation_line.png",
        "interpolation",
        ("interpolation",),
        "From a model (α = 0) to a second point (α = 1), measured with landscape.Probe: between "
        "two minima, train loss above the straight chord between the ends is the loss barrier "
        "(Entezari et al. 2022); from a start to a minimum, read the largest loss rise instead "
        "(Lucas et al. 2021; 0 = monotone).",
        interpolation_figure("line", ("model", "other")),
    ),
    FigureSpec(
        "slices_1d.png",
        "interpolation",
        ("surface1d",),
        "Loss along random filter-normalized directions through the final point (band: spread over"
        " the directions drawn). A narrower, steeper valley means a sharper minimum.",
        slices_figure,
    ),
    FigureSpec(
        "surface2d.png",
        "surfaces",
        ("surface2d",),
        "A random filter-normalized plane through a normal and an overfit point (star), each row "
        "on one colour scale: compare the width and depth of the dark basin around the star.",
        surface_figures("surface2d", False),
    ),
    FigureSpec(
        "surface2d_3d.png",
        "surfaces",
        ("surface2d",),
        "The same train-loss surfaces in 3D, on one height and colour scale.",
        surface_figures("surface2d", True),
    ),
    FigureSpec(
        "surface_pca.png",
        "surfaces",
        ("surface_pca",),
        "The plane of the training path's two principal components, with the path projected on it "
        "(red, from the initial point): does the path run down a valley into the basin?",
        surface_figures("surface_pca", False),
    ),
    FigureSpec(
        "surface_pca_3d.png",
        "surfaces",
        ("surface_pca",),
        "The PCA-plane train-loss surfaces in 3D, on one height and colour scale.",
        surface_figures("surface_pca", True),
    ),
    FigureSpec(
        "hessian.png",
        "sharpness",
        ("hessian",),
        "Curvature of the clean training loss at each final point: larger top eigenvalues and "
        "trace mean a sharper minimum.",
        hessian_figure,
    ),
    FigureSpec(
        "trace_estimators.png",
        "sharpness",
        ("trace", "trace_hutchpp"),
        "The Hessian trace of each run by Hutchinson's estimator and by Hutch++ at the same "
        "number of Hessian-vector products, with standard errors (left), and each standard "
        "error relative to its estimate (right): the lower estimator is the more precise one "
        "for the same cost (bench/TRACE.md checks these errors against the exact trace).",
        trace_estimators_figure,
        any_need=True,
    ),
    FigureSpec(
        "spectral_density.png",
        "sharpness",
        ("spectral_density",),
        "The Hessian's eigenvalue density at each final point (stochastic Lanczos quadrature, "
        "Gaussian-smoothed; log density axis): look for the overfit runs' spectrum reaching "
        "farther right (larger outlying eigenvalues) and how much weight lies below zero.",
        spectral_density_figure,
    ),
    FigureSpec(
        "layer_curvature.png",
        "sharpness",
        ("layer_curvature",),
        "Curvature of each parameter block's own Hessian (a layer's weight and bias together): "
        "bars at the mean over seeds, dots per seed. Which layers carry the sharpness, and do "
        "the overfit runs sharpen every layer or a few?",
        layer_curvature_figure,
    ),
    FigureSpec(
        "sharpness.png",
        "sharpness",
        ("epsilon_sharpness", "perturbation"),
        "How much the clean training loss rises near each final point: ε-sharpness (worst case in "
        "a small box) and the mean rise along random directions. A narrow dip rises faster for the"
        " same radius.",
        sharpness_figure,
        any_need=True,
    ),
    FigureSpec(
        "curvature_trajectory.png",
        "sharpness",
        ("curvature_trajectory",),
        "The top Hessian eigenvalue at every checkpoint: how the curvature develops during "
        "training in each mode.",
        curvature_figure,
    ),
    FigureSpec(
        "restart.png",
        "restart",
        ("restart",),
        "Restarted on the clean training data from each overfit point, per recipe: look for test "
        "accuracy climbing towards the normal runs' (dashed line) after a short distance moved, "
        "i.e. the overfit point sat in a narrow dip.",
        restart_figure,
    ),
    FigureSpec(
        "prediction_ring.png",
        "prediction",
        ("prediction",),
        "The network's output over the plane at a few checkpoints beside the true ring, one row "
        "per run (most training pixels first): does it draw a ring, and how much later with fewer "
        "pixels?",
        ring_figure,
        ("ring",),
    ),
    FigureSpec(
        "prediction_line.png",
        "prediction",
        ("prediction",),
        "The network's final curve against the least-squares line through the same training "
        "points: a heavily overparameterized net can still draw about the same line.",
        line_figure,
        ("line",),
    ),
)


def applicable(spec: FigureSpec, data: ReportData) -> bool:
    """Drawn for this store: its measures computed, its dataset, runs with a history."""
    if spec.datasets and data.dataset not in spec.datasets:
        return False
    if not data.run_data and not spec.needs:
        return False
    found = [bool(data.measure(m)) for m in spec.needs]
    return any(found) if spec.any_need else all(found)


def draw_all(data: ReportData, folder: Path) -> tuple[list[DrawnFigure], list[str]]:
    """Draw every applicable figure into folder; also return warnings for figures skipped
    because a stored result lacks an array they need (an analysis from another version)."""
    ensure_folder(folder, what="report figures")
    drawn, warnings = [], []
    for spec in FIGURES:
        if not applicable(spec, data):
            continue
        try:
            with style():
                fig = spec.make(data)
        except KeyError as e:
            warnings.append(f"figure {spec.name} skipped: a stored result lacks array {e}")
            continue
        if fig is not None:
            path = save(fig, folder / spec.name)
            drawn.append(DrawnFigure(spec.name, spec.section, spec.caption, path))
    return drawn, warnings
