"""Figure builders for curvature, sharpness and restarts: store arrays to plots."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from landscape.report import series as S
from landscape.report.data import ReportData
from landscape.report.figures import plot_curves, plot_distributions, plot_lines
from landscape.report.figures_datasets import plot_spectrum
from landscape.report.style import PAGE_WIDTH, RECIPE_COLORS, panels


def hessian_figure(data: ReportData) -> Figure:
    fig, axs = panels(None, 3, PAGE_WIDTH, 3.6)
    spectra = {
        k: (S.run_mode(data, k), np.asarray(r["eigenvalues"]))
        for k, r in sorted(data.measure("hessian").items())
    }
    plot_spectrum(spectra, ax=axs[0])
    top = S.per_seed(data, "hessian", lambda r: float(np.asarray(r["eigenvalues"])[0]))
    plot_distributions(top, ax=axs[1], ylabel="λ_max (loss / θ²)", title="top eigenvalue")
    trace = S.per_seed(data, "trace", lambda r: float(r["trace"]))
    err = S.per_seed(data, "trace", lambda r: float(r["std_error"]))
    if trace:
        plot_distributions(
            trace,
            ax=axs[2],
            ylabel="tr(H) (loss / θ²)",
            errors=err,
            title="Hessian trace ± standard error",
        )
    else:
        axs[2].set_visible(False)
    return fig


def sharpness_figure(data: ReportData) -> Figure:
    fig, axs = panels(None, 3, PAGE_WIDTH, 3.6)
    eps = S.per_seed(data, "epsilon_sharpness", lambda r: float(r["sharpness"]))
    if eps:
        plot_distributions(
            eps, ax=axs[0], ylabel="ε-sharpness (percent)", title="ε-sharpness (Keskar et al.)"
        )
    else:
        axs[0].set_visible(False)
    rise = S.result_curves(data, "perturbation", "increase_mean", x="radius")
    drop = S.result_curves(data, "perturbation", "acc_drop_mean", x="radius")
    for ax, curves, label, title in (
        (axs[1], rise, "loss increase L(θ + r d) − L(θ)", "loss increase vs radius"),
        (axs[2], drop, "accuracy drop (fraction)", "train accuracy drop vs radius"),
    ):
        if curves:
            plot_lines(
                curves,
                ax=ax,
                xlabel="radius r (filter-normalized units)",
                ylabel=label,
                title=title,
            )
        else:
            ax.set_visible(False)
    return fig


def curvature_figure(data: ReportData) -> Figure:
    curves = S.result_curves(
        data,
        "curvature_trajectory",
        "eigenvalues",
        pick=lambda a: np.asarray(a).reshape(len(a), -1)[:, 0],
    )
    return plot_curves(
        curves, ylabel="λ_max (loss / θ²)", title="top Hessian eigenvalue over training"
    )


def restart_figure(data: ReportData) -> Figure:
    fig, axs = panels(None, 3, PAGE_WIDTH, 3.6)
    normal_test = S.mean_final(data, "normal", "test_acc")
    for ax, name, label, reference in (
        (axs[0], "test_acc", "test accuracy (fraction)", (normal_test, "normal runs' final")),
        (axs[1], "train_acc", "clean train accuracy (fraction)", None),
        (axs[2], "dist_moved", "distance moved from the overfit point (L2 norm)", None),
    ):
        curves = S.result_curves(data, "restart", name, group=S.restart_group)
        plot_curves(
            curves,
            ax=ax,
            ylabel=label,
            colors=RECIPE_COLORS,
            reference=reference,
            xlabel="optimizer steps since the restart",
            title=label.split(" (")[0],
        )
    return fig
