"""One page across a sweep's variants: sweep.html, sweep.json and figures/sweep_*.png.

Each variant (a value of the swept key, at equal epochs or equal steps) has its own report
in a sub-folder; this page sets them side by side: a table of each variant's numbers, the
quantities against the swept value (one line per budget), each variant's training curves, and
for the ring the predicted images over training, one row per variant, as halvar.flake's post
shows them. The sweep's claims are checked against sweep.json (`variants.<label>....`).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from landscape.report.claims import check_claim, evaluate_claims
from landscape.report.data import ReportData, load
from landscape.report.figures_datasets import RingPredictions, plot_ring
from landscape.report.page import CSS, claims_table, esc, number
from landscape.report.style import OTHER_COLORS, new_figure, save, styled
from landscape.report.summary_json import dumps
from landscape.store.atomic import ensure_folder, write_text

SWEEP_SCHEMA = 1
BUDGET_STYLE = {"epochs": ("#0072B2", "o", "-"), "steps": ("#D55E00", "s", "--")}

# (quantity in a variant's summary.json, axis label); plotted in this order where present
PLOTTED: tuple[tuple[str, str], ...] = (
    ("ring_iou", "IoU with the ring"),
    ("ring_components_per_black_point", "black blobs / black training pixels"),
    ("ring_image_mse", "MSE over the whole image"),
    ("final_train_loss", "final training loss"),
    ("final_test_acc", "final test accuracy"),
    ("test_over_train_steps_099", "steps to test 0.99 / to train 0.99"),
    ("weight_norm_peak_over_final", "weight norm: peak / final"),  # grokking only (see ONLY)
    ("line_max_abs_vs_ols", "max |net − least squares|"),
    ("distance_l2", "L2 distance from init"),
    ("train_grad_norm", "gradient norm (clean train)"),
)
MAX_PANELS = 6
ONLY = {"weight_norm_peak_over_final": "modular"}  # quantity -> the one dataset it speaks of


@dataclass(frozen=True)
class SweepEntry:
    """One finished variant: what it is and where its stores and report are."""

    label: str
    value: Any
    budget: str  # epochs | steps
    train_size: int
    steps: int
    epochs: float
    analysis_path: Path
    report_dir: Path  # its own report.html and summary.json
    summary: Mapping[str, Any]  # its summary.json


def build_sweep_report(
    entries: Sequence[SweepEntry],
    out_dir: Path,
    *,
    name: str,
    description: str,
    key: str,
    claims: Sequence[Mapping[str, Any]] = (),
    commands: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Write out_dir/sweep.html, sweep.json and figures/sweep_*.png; return the sweep dict."""
    for claim in claims:
        check_claim(claim)
    out_dir = Path(out_dir)
    folder = out_dir / "figures"
    ensure_folder(folder, what="sweep report")
    summary: dict[str, Any] = {
        "schema": SWEEP_SCHEMA,
        "preset": name,
        "description": description,
        "key": key,
        "variants": {e.label: _variant_json(e, out_dir) for e in entries},
        "commands": dict(commands or {}),
    }
    drawn = []
    loaded = [(e, load(e.analysis_path)) for e in entries]
    for fname, caption, make in _figures(loaded, key):
        fig = make()
        if fig is not None:
            drawn.append((fname, caption, save(fig, folder / fname).read_bytes()))
    summary["figures"] = [f for f, _, _ in drawn]
    summary["claims"] = evaluate_claims(claims, summary)
    write_text(out_dir / "sweep.json", dumps(summary), what="sweep report")
    write_text(out_dir / "sweep.html", _page(summary, entries, drawn), what="sweep report")
    return summary


def _variant_json(e: SweepEntry, out_dir: Path) -> dict[str, Any]:
    return {
        "value": e.value,
        "budget": e.budget,
        "train_size": e.train_size,
        "steps": e.steps,
        "epochs": e.epochs,
        "report": str(Path(e.report_dir, "report.html").relative_to(out_dir)),
        "quantities": e.summary.get("quantities", {}),
        "claims": e.summary.get("claims", []),
    }


def _group(q: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The normal runs' statistics of a quantity, else the first mode's."""
    if not isinstance(q, Mapping):
        return None
    if isinstance(q.get("normal"), Mapping):
        return q["normal"]
    modes = [v for v in q.values() if isinstance(v, Mapping) and "mean" in v]
    return modes[0] if modes else None


def _mean(e: SweepEntry, quantity: str) -> float | None:
    dataset = e.summary.get("experiment", {}).get("dataset")
    if quantity in ONLY and dataset != ONLY[quantity]:
        return None
    g = _group(e.summary.get("quantities", {}).get(quantity))
    value = g.get("mean") if g else None
    return float(value) if isinstance(value, int | float) else None


Loaded = Sequence[tuple[SweepEntry, ReportData]]


def _figures(loaded: Loaded, key: str) -> list[tuple[str, str, Any]]:
    entries = [e for e, _ in loaded]
    return [
        (
            "sweep_quantities.png",
            f"Each quantity against {key} (mean over seeds, bars min–max): blue equal epochs, "
            "orange equal optimizer steps.",
            lambda: plot_sweep_quantities(entries, key),
        ),
        (
            "sweep_curves.png",
            "Training curves of every variant (first seed): accuracy, or loss for regression.",
            lambda: plot_sweep_curves(loaded),
        ),
        (
            "sweep_ring.png",
            "The predicted image over training, one row per variant (first seed), beside the "
            "true ring.",
            lambda: ring_rows(loaded),
        ),
    ]


def _positions(values: Sequence[Any]) -> tuple[np.ndarray, bool]:
    """x positions and whether to use a log axis: numbers spanning > 8x go on a log axis."""
    try:
        x = np.array([float(v) for v in values])
    except (TypeError, ValueError):
        return np.arange(len(values), dtype=float), False
    log = bool(np.all(x > 0) and x.max() / x.min() > 8)
    return x, log


@styled
def plot_sweep_quantities(entries: Sequence[SweepEntry], key: str) -> Figure | None:
    present = [(q, label) for q, label in PLOTTED if any(_mean(e, q) is not None for e in entries)]
    present = present[:MAX_PANELS]
    if not present:
        return None
    values = list(dict.fromkeys(e.value for e in entries))
    xs, log = _positions(values)
    where = dict(zip(map(repr, values), xs, strict=True))
    ncols = min(3, len(present))
    nrows = -(-len(present) // ncols)
    fig, grid = new_figure(3.9 * ncols, 3.1 * nrows, nrows, ncols)
    axes = list(grid.ravel())
    for ax, (q, label) in zip(axes, present, strict=False):
        for budget in ("epochs", "steps"):
            rows = [e for e in entries if e.budget == budget or _is_reference(e, entries, budget)]
            x, mean, lo, hi = _points(rows, q, where)
            if not x:
                continue
            color, marker, ls = BUDGET_STYLE[budget]
            err = [[m - low for m, low in zip(mean, lo, strict=True)],
                   [high - m for m, high in zip(mean, hi, strict=True)]]  # fmt: skip
            ax.errorbar(x, mean, yerr=err, color=color, marker=marker, linestyle=ls, capsize=3,
                        label=f"equal {budget}")  # fmt: skip
        if log:
            ax.set_xscale("log")
        ax.set_xticks(xs, [str(v) for v in values])
        ax.minorticks_off()
        ax.set_xlabel(key)
        ax.set_title(label)
    for ax in axes[len(present) :]:
        ax.set_visible(False)
    axes[0].legend()
    return fig


def _points(
    rows: Sequence[SweepEntry], quantity: str, where: Mapping[str, float]
) -> tuple[list[float], list[float], list[float], list[float]]:
    """x, mean, min, max of a quantity over the variants that have it."""
    out: tuple[list[float], list[float], list[float], list[float]] = ([], [], [], [])
    for e in rows:
        g = _group(e.summary.get("quantities", {}).get(quantity))
        if g is None or g.get("mean") is None:
            continue
        for column, value in zip(out, (where[repr(e.value)], g["mean"], g["min"], g["max"]),
                                 strict=True):  # fmt: skip
            column.append(float(value))
    return out


def _is_reference(e: SweepEntry, entries: Sequence[SweepEntry], budget: str) -> bool:
    """The first value's variant stands for both budgets (they coincide there)."""
    return budget == "steps" and e.value == entries[0].value and e.budget == "epochs"


@styled
def plot_sweep_curves(loaded: Loaded) -> Figure | None:
    histories = [(e, next(iter(d.run_data.values()))) for e, d in loaded if d.run_data]
    if not histories:
        return None
    accuracy = all("test_acc" in r.history for _, r in histories)
    fig, grid = new_figure(11.0, 3.8, 1, 2)
    for i, (e, run) in enumerate(histories):
        color = OTHER_COLORS[i % len(OTHER_COLORS)]
        step = np.maximum(np.asarray(run.history["step"], dtype=float), 1)
        names = ("train_acc", "test_acc") if accuracy else ("train_loss", "test_loss")
        for ax, name in zip(grid[0], names, strict=True):
            ax.plot(step, np.asarray(run.history[name]), color=color, label=e.label)
    for ax, name in zip(grid[0], ("training", "test"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(f"{name} {'accuracy' if accuracy else 'loss'}")
        if not accuracy:
            ax.set_yscale("log")
    grid[0][1].legend(fontsize=7)
    return fig


def ring_rows(loaded: Loaded) -> Figure | None:
    rows, target = [], None
    for e, data in loaded:
        results = data.measure("prediction")
        if not results:
            continue
        res = results[sorted(results)[0]]
        if "iou" not in res:
            return None  # the line: its own reports draw it
        target = np.asarray(res["target"])
        black = res["attrs"].get("black_train_points", "?")
        label = (
            f"{e.value}, equal {e.budget}\n{e.steps} steps, {e.epochs:g} ep\n"
            f"{black} black px, IoU {float(np.asarray(res['iou'])[-1]):.2f}"
        )
        rows.append(RingPredictions.of(label, res, e.steps / e.epochs))
    if not rows or target is None:
        return None
    return plot_ring(rows, target)


def _variants_table(summary: Mapping[str, Any], entries: Sequence[SweepEntry]) -> str:
    shown = [(q, label) for q, label in PLOTTED if any(_mean(e, q) is not None for e in entries)]
    head = "".join(f"<th>{esc(label)}</th>" for _, label in shown)
    rows = []
    for e in entries:
        cells = "".join(f"<td class=num>{number(_mean(e, q))}</td>" for q, _ in shown)
        link = summary["variants"][e.label]["report"]
        rows.append(
            f"<tr><td style='white-space: nowrap'><a href='{esc(link)}'>{esc(e.label)}</a></td>"
            f"<td class=num>{esc(e.value)}</td><td>equal {esc(e.budget)}</td>"
            f"<td class=num>{e.train_size}</td><td class=num>{e.steps}</td>"
            f"<td class=num>{number(e.epochs)}</td>{cells}</tr>"
        )
    return (
        f"<table><tr><th>variant (its report)</th><th>{esc(summary['key'])}</th><th>budget</th>"
        f"<th>training rows</th><th>steps</th><th>epochs</th>{head}</tr>{''.join(rows)}</table>"
        "<p class=small>Means over seeds of each variant's normal runs.</p>"
    )


def _page(
    summary: Mapping[str, Any],
    entries: Sequence[SweepEntry],
    drawn: Sequence[tuple[str, str, bytes]],
) -> str:
    figures = "".join(
        f"<figure><img alt='{esc(name)}' src='data:image/png;base64,"
        f"{base64.b64encode(png).decode()}'><figcaption>{esc(caption)}</figcaption></figure>"
        for name, caption, png in drawn
    )
    commands = "".join(f"<pre>{esc(c)}</pre>" for c in summary["commands"].values())
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>landscape sweep: {esc(summary['preset'])}</title><style>{CSS}</style></head>"
        f"<body><header><h1>landscape sweep: {esc(summary['preset'])}</h1>"
        f"<p class=sub>{esc(summary['description'])}; swept <code>{esc(summary['key'])}</code>"
        "</p></header>"
        f"<h2>Claims</h2>{claims_table(summary['claims'])}"
        f"<h2>Variants</h2>{_variants_table(summary, entries)}"
        f"<h2>Figures</h2>{figures}<h2>How to reproduce</h2>{commands}</body></html>\n"
    )
