"""What a `Probe` method returns: named arrays with units, `.plot(ax=None)` and `.save(path)`.

A `ProbeResult` holds one measure's `Result` exactly as `landscape analyze` would store it
(the arrays, their `long_name`, units and dims from the measure's spec). `save` writes it into
an analysis store of its own (the same HDF5 layout, with no train store behind it), so
`landscape report` draws a user's own results; `plot` computes nothing, it draws the stored
arrays with the report's plot functions (matplotlib is imported only there).

>>> from landscape.store.analysis_store import Array
>>> r = ProbeResult("trace", Result({"trace": Array(np.array(3.5), "tr(H)", "1")}), "model")
>>> float(r.trace), r.units["trace"]
(3.5, '1')
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from landscape._version import __version__
from landscape.errors import ConfigError, StoreError
from landscape.measures.registry import spec
from landscape.store import analysis_store as astore
from landscape.store.analysis_store import Result
from landscape.store.summary import summarize

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

LABEL = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class ProbeResult:
    """One measure's arrays at the probe's point, as `landscape analyze` stores them.

    measure: the measure's name in the registry (`landscape analyze --list`).
    result: the arrays (`result.arrays[name].values`, `.long_name`, `.units`, `.dims`) and
        attributes (settings, seed, seconds, versions, a one-line `headline`).
    key: the result's key in a saved store: "model" (a point), "line.model" (a path),
        "<recipe>.model" (a restart); `save(label=...)` replaces "model".
    Arrays are attributes too: `r.eigenvalues` is `r.result.arrays["eigenvalues"].values`.
    """

    measure: str
    result: Result
    key: str

    def __getattr__(self, name: str) -> np.ndarray:
        arrays = self.__dict__.get("result")
        if arrays is not None and not name.startswith("_") and name in arrays.arrays:
            return np.asarray(arrays.arrays[name].values)
        raise AttributeError(
            f"{type(self).__name__} of {self.__dict__.get('measure')!r} has no {name!r}"
        )

    @property
    def names(self) -> list[str]:
        """The arrays' names, in the order the measure stores them."""
        return list(self.result.arrays)

    @property
    def units(self) -> dict[str, str]:
        return {n: a.units for n, a in self.result.arrays.items()}

    @property
    def long_names(self) -> dict[str, str]:
        return {n: a.long_name for n, a in self.result.arrays.items()}

    @property
    def attrs(self) -> dict[str, Any]:
        return self.result.attrs

    def __repr__(self) -> str:
        rows = [
            f"  {n}: {_shape(a.values)} {a.units} ({a.long_name})"
            for n, a in self.result.arrays.items()
        ]
        head = f"ProbeResult({self.measure!r}, key={self.key!r}): {self.attrs.get('headline', '')}"
        return "\n".join([head, *rows])

    def save(self, path: Path | str, *, label: str = "model") -> Path:
        """Write into the analysis store `path` (created, or added to); return the result file.

        The store holds no train store: `landscape report PATH` draws it (its measures table
        lists what was saved). Label a result "normal-000" / "overfit-000" to show it in the
        report's normal and overfit columns. Refuses a store written by `landscape analyze`.
        """
        index = Path(path)
        key = _labelled(self.key, label)
        attrs = _index_attrs(index, self.measure)
        written = astore.write_result(index, self.measure, key, self.result)
        astore.write_index(index, attrs=attrs)
        attrs["summary"] = json.dumps(summarize(index))
        astore.write_index(index, attrs=attrs)
        return written

    def plot(self, ax: Axes | None = None) -> Figure:
        """Draw the stored arrays (on `ax`, or on a new figure) and return the figure."""
        return _DRAWERS[self.measure](self, ax)


def _shape(values: Any) -> str:
    a = np.asarray(values)
    return f"{a.item():.6g}" if a.size == 1 and a.dtype.kind == "f" else str(a.shape)


def _labelled(key: str, label: str) -> str:
    if not isinstance(label, str) or not LABEL.fullmatch(label):
        raise ConfigError(
            f"ProbeResult.save: expected a label of letters, digits, '_' and '-' (it names a "
            f"file), found {label!r}; use e.g. label='resnet18-final'"
        )
    head, dot, _ = key.rpartition(".")
    return f"{head}{dot}{label}"


def _index_attrs(index: Path, measure: str) -> dict[str, Any]:
    """The index attributes of a probe store, keeping the measures saved into it before."""
    recorded: dict[str, Any] = {}
    if index.exists():
        attrs = astore.read_index(index)
        if attrs.get("train_store"):
            raise StoreError(
                f"ProbeResult.save: {index} is the analysis of the train store "
                f"{attrs['train_store']}; expected a store of probe results; save to another "
                "file (e.g. mine.analysis.h5)"
            )
        recorded = json.loads(attrs.get("measures") or "{}")
    recorded[measure] = spec(measure).describe()
    return {
        "train_store": "",
        "source": astore.PROBE_SOURCE,
        "config": "{}",
        "measures": json.dumps(recorded),
        "landscape_version": __version__,
    }


# -- figures: the report's plot functions on this result's arrays --------------------------------


def _hessian(r: ProbeResult, ax: Axes | None) -> Figure:
    from landscape.report.figures_datasets import plot_spectrum

    return plot_spectrum({r.key: (r.key, r.eigenvalues)}, ax=ax)


def _strip(name: str, label: str, error: str = "") -> Callable[[ProbeResult, Axes | None], Figure]:
    def draw(r: ProbeResult, ax: Axes | None) -> Figure:
        from landscape.report.figures import plot_distributions

        errors = {r.key: [float(getattr(r, error))]} if error else None
        values = {r.key: [float(getattr(r, name))]}
        return plot_distributions(values, ax=ax, ylabel=label, errors=errors, title=r.measure)

    return draw


def _gradient(r: ProbeResult, ax: Axes | None) -> Figure:
    from landscape.report.figures import plot_distributions

    values = {
        s: getattr(r, f"{s}_grad_norm") for s in ("train", "test") if f"{s}_grad_norm" in r.names
    }
    return plot_distributions(values, ax=ax, ylabel="‖∇L‖₂ (L2 norm)", title="gradient norm")


def _surface(r: ProbeResult, ax: Axes | None) -> Figure:
    from landscape.report.figures_surface import plot_contours

    splits = [s for s in ("train", "test") if f"{s}_loss" in r.names][: 1 if ax is not None else 2]
    surfaces = {
        f"{s} loss": (r.xcoordinates, r.ycoordinates, getattr(r, f"{s}_loss")) for s in splits
    }
    return plot_contours(
        surfaces,
        axes=ax,
        label=f"loss ({r.units['train_loss']})",
        xlabel="x: filter-normalized direction 1",
        ylabel="y: filter-normalized direction 2",
    )


def _interpolation(r: ProbeResult, ax: Axes | None) -> Figure:
    from landscape.report.figures import plot_lines

    lines = {
        s: (r.alpha, getattr(r, f"{s}_loss")) for s in ("train", "test") if f"{s}_loss" in r.names
    }
    ends = (str(r.attrs.get("a", "a")), str(r.attrs.get("b", "b")))
    return plot_lines(
        lines,
        ax=ax,
        xlabel=f"α: θ(α) = (1 − α) θ_{ends[0]} + α θ_{ends[1]}",
        ylabel=f"loss ({r.units['train_loss']})",
        markers={"a": (0.0, ends[0]), "b": (1.0, ends[1])},
        title=f"train loss barrier (Entezari) {float(r.attrs['barrier_train_loss']):.3g}, "
        f"largest rise (0 = monotone) {float(r.attrs['rise_train_loss']):.3g}",
    )


def _curve(r: ProbeResult, ax: Axes | None) -> Figure:
    from landscape.report.figures import plot_lines

    lines = {
        f"{path} ({s})": (r.alpha, getattr(r, f"{path}_{s}_loss"))
        for path in ("curve", "line")
        for s in ("train", "test")
        if f"{path}_{s}_loss" in r.names
    }
    return plot_lines(
        lines,
        ax=ax,
        xlabel="t: Bezier curve (1 − t)² a + 2t(1 − t) bend + t² b, or the line (1 − t) a + t b",
        ylabel=f"loss ({r.units['curve_train_loss']})",
        markers={"a": (0.0, "a"), "b": (1.0, "b")},
        title=f"train loss barrier (Entezari): curve "
        f"{float(r.attrs['curve_barrier_train_loss']):.3g}, line "
        f"{float(r.attrs['line_barrier_train_loss']):.3g}",
    )


def _restart(r: ProbeResult, ax: Axes | None) -> Figure:
    from landscape.report.figures import plot_curve_panels, plot_curves

    def curves(q: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {
            s: (r.step, getattr(r, f"{s}_{q}")) for s in ("train", "test") if f"{s}_{q}" in r.names
        }

    xlabel = "optimizer steps since the restart"
    if ax is not None:
        return plot_curves(curves("acc"), ax=ax, ylabel="accuracy (fraction)", xlabel=xlabel)
    moved = {r.key: (r.step, r.dist_moved)}
    return plot_curve_panels(
        [
            ("accuracy", "accuracy (fraction)", curves("acc")),
            ("loss", f"loss ({r.units['train_loss']})", curves("loss")),
            ("distance moved", "L2 norm", moved),
        ],
        xlabel=xlabel,
    )


_DRAWERS: dict[str, Callable[[ProbeResult, Any], Figure]] = {
    "hessian": _hessian,
    "trace": _strip("trace", "tr(H) (loss / θ²)", error="std_error"),
    "epsilon_sharpness": _strip("sharpness", "ε-sharpness (percent)"),
    "gradient": _gradient,
    "surface2d": _surface,
    "interpolation": _interpolation,
    "restart": _restart,
    "curve": _curve,
}
