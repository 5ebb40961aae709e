"""What a measure declares next to its pure functions: one `MeasureSpec`.

A spec says what the measure needs (its result keys: one per run, per seed pair, ...), which
analysis settings its result depends on (each a `Setting` with one default and one check), the
arrays it stores (names, `long_name`, units, dims), the per-run scalars it adds to the summary
(`landscape.store.summary.Scalar`) and the figures that draw it. Everything that lists measures (the
runner, `--list`, the CLI's options, `--set analyze.*`, the summary, the report's measure table
and headline numbers) is derived from the specs in `landscape.measures.registry`.

>>> GRID.validate(51)
51
>>> try:
...     GRID.validate(50)
... except ConfigError as e:
...     print(str(e)[:52])
analysis setting 'grid': expected an odd number >= 3
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from landscape.errors import ConfigError
from landscape.store.analysis_store import Array, Result
from landscape.store.summary import Scalar

if TYPE_CHECKING:
    from landscape.measures.runs import Experiment
    from landscape.measures.settings import AnalysisConfig

LOSS_UNITS = "{loss}"  # replaced by the dataset's loss units (nats, squared error) when stored
L2 = "L2 norm in parameter space"
CURV = "loss / parameter^2"


# -- settings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One analysis setting: `--set analyze.NAME=VALUE`, the flag `--NAME`, a preset's key.

    `kind` is int, float, str, floats (a tuple) or strs (a tuple); `check` returns True for an
    allowed (already typed) value and `expected` says in words what is allowed.
    """

    name: str
    default: Any
    help: str
    kind: str
    expected: str = ""
    check: Callable[[Any], bool] = lambda v: True
    choices: tuple[str, ...] = ()
    maximum: float = math.inf  # a natural bound (e.g. a grid side), checked with `expected`

    def validate(self, value: Any) -> Any:
        """`value` typed as this setting (a TOML list becomes a tuple) and checked."""
        typed = _typed(self.kind, value)
        allowed = typed is not None and (not self.choices or _in_choices(typed, self.choices))
        if allowed and self.check(typed) and _within(typed, self.maximum):
            return typed
        if allowed and self.check(typed):
            raise ConfigError(
                f"analysis setting {self.name!r}: expected at most {self.maximum:,g} (larger "
                f"values exhaust time or memory), found {value!r}; use e.g. --set "
                f"analyze.{self.name}={_example(self)}"
            )
        raise ConfigError(
            f"analysis setting {self.name!r}: expected {self.expectation}, found {value!r}; use "
            f"e.g. --set analyze.{self.name}={_example(self)}"
        )

    @property
    def expectation(self) -> str:
        if self.choices:
            return f"{'one or more of' if self.kind == 'strs' else 'one of'} " + ", ".join(
                self.choices
            )
        return self.expected or f"a {self.kind} value"

    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _typed(kind: str, value: Any) -> Any:
    """The value as `kind`, or None when it is not one (bools are not numbers; NaN is no float)."""
    if kind in ("floats", "strs"):
        items = value if isinstance(value, list | tuple) else [value]
        typed = [_typed(kind[:-1], v) for v in items]
        return tuple(typed) if all(t is not None for t in typed) else None
    if isinstance(value, bool):
        return None
    if kind == "int":
        return value if isinstance(value, int) else None
    if kind == "float":
        ok = isinstance(value, int | float) and math.isfinite(value)
        return float(value) if ok else None
    return value if isinstance(value, str) else None


def _in_choices(value: Any, choices: tuple[str, ...]) -> bool:
    items = value if isinstance(value, tuple) else (value,)
    return all(v in choices for v in items)


def _within(value: Any, maximum: float) -> bool:
    items = value if isinstance(value, tuple) else (value,)
    return all(not isinstance(v, int | float) or abs(v) <= maximum for v in items)


def _example(s: Setting) -> str:
    d = s.default
    return ",".join(map(str, d)) if isinstance(d, tuple) else str(d).lower()


def _odd_at_least_3(v: int) -> bool:
    return v >= 3 and v % 2 == 1


# Settings several measures share: declared once, here.
SPAN = Setting(
    "span",
    1.0,
    "surfaces and 1D slices cover [-span, span] along filter-normalized directions",
    "float",
    "a number > 0",
    lambda v: v > 0,
    maximum=1e6,
)
IGNORE = Setting(
    "ignore",
    "biasbn",
    "filter-normalized directions: zero the biases and normalization "
    "parameters (biasbn, Li et al.'s default) or keep them (none)",
    "str",
    choices=("biasbn", "none"),
)
DIRECTIONS = Setting(
    "directions",
    3,
    "independent random directions (1D slices, perturbation sharpness)",
    "int",
    "an integer >= 1",
    lambda v: v >= 1,
    maximum=10_000,
)
ALPHA_POINTS = Setting(
    "alpha_points",
    41,
    "interpolations: points from alpha_min to alpha_max (0 and 1 included)",
    "int",
    "an integer >= 3",
    lambda v: v >= 3,
    maximum=100_000,
)
ALPHA_MIN = Setting("alpha_min", -0.5, "interpolations: first alpha", "float", maximum=1e6)
ALPHA_MAX = Setting("alpha_max", 1.5, "interpolations: last alpha", "float", maximum=1e6)
GRID = Setting(
    "grid",
    51,
    "2D surfaces: points per axis (odd, so the centre is on the grid)",
    "int",
    "an odd number >= 3 (the centre point lies on the grid)",
    _odd_at_least_3,
    maximum=4001,
)
RUNS = Setting(
    "runs",
    "first",
    "runs that get the expensive per-run measures (surfaces, curvature over "
    "training): k = 0 of each mode (first) or all",
    "str",
    choices=("first", "all"),
)


# -- what a compute function may use ----------------------------------------------------------


@dataclass
class Context:
    """What a compute function may use besides the experiment: settings, seed, kept parts."""

    exp: Experiment
    cfg: AnalysisConfig
    generator: torch.Generator
    save_part: Callable[..., None]
    load_parts: Callable[[], dict[str, dict[str, np.ndarray]]]
    budget: int
    loss_units: str = "nats"


# -- the spec ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """An array a measure stores: `units` may be LOSS_UNITS (the dataset's loss units)."""

    name: str
    long_name: str
    units: str
    dims: tuple[str, ...] = ()


@dataclass(frozen=True)
class MeasureSpec:
    """Everything about one measure that is not its arithmetic.

    `keys(exp, cfg)` lists its result keys; `skip_reason(exp, key)` says why a key cannot be
    computed on this store ('' when it can); `compute(ctx, key)` returns the arrays by name (each
    declared in `arrays`) and attributes; `group` names how the summary groups its per-key
    scalars: "mode" (the run's mode), "pairs", "recipe" (overfit+<recipe>) or "path"
    (init-final.<run> by mode, normal-overfit.<k> as pairs).
    """

    name: str
    description: str
    needs: str  # what one result is about: "run", "pair of runs", "overfit run x recipe", ...
    keys: Callable[[Experiment, AnalysisConfig], list[str]]
    compute: Callable[[Context, str], tuple[dict[str, Any], dict[str, Any]]]
    arrays: tuple[Stored, ...]
    settings: tuple[Setting, ...] = ()  # what each result's values depend on (stored with it)
    key_settings: tuple[Setting, ...] = ()  # what chooses the keys only (e.g. which recipes)
    scalars: tuple[Scalar, ...] = ()
    figures: tuple[str, ...] = ()
    group: str = "mode"
    evaluates: bool = True  # evaluates the network: its result depends on the BatchNorm mode
    # why one key cannot be computed on this store ("" when it can), e.g. an imported run
    # without an initial point; the runner records the reason and the report shows it
    skip_reason: Callable[[Experiment, str], str] = field(default=lambda exp, key: "")
    # several results computed as one (e.g. the restarts of every overfit run trained as one
    # stack): keys with the same `batch_of(key)` go to one `compute_batch(contexts, keys)`,
    # which returns their (values, attrs) in order, the same as `compute` of each alone
    compute_batch: Callable[[list[Context], list[str]], list[tuple[dict, dict]]] | None = None
    batch_of: Callable[[str], str] = field(default=lambda key: key)

    def result(self, ctx: Context, values: dict[str, Any], attrs: dict[str, Any]) -> Result:
        """The stored form: every array named in `values` with its declared meaning."""
        return self.stored(values, attrs, loss_units=ctx.loss_units)

    def stored(self, values: dict[str, Any], attrs: dict[str, Any], *, loss_units: str) -> Result:
        """`result` for a caller without a `Context` (e.g. `Probe`): the loss's units given."""
        declared = {a.name: a for a in self.arrays}
        if undeclared := sorted(set(values) - set(declared)):
            raise ValueError(f"measure {self.name}: arrays {undeclared} are not in its spec")
        arrays = {}
        for name, v in values.items():
            a = declared[name]
            units = loss_units if a.units == LOSS_UNITS else a.units
            arrays[name] = Array(_numpy(v), a.long_name, units, a.dims)
        return Result(arrays, attrs)

    def describe(self) -> dict[str, Any]:
        """The spec as JSON-able data, recorded in every analysis store (the report reads it)."""
        return {
            "description": self.description,
            "needs": self.needs,
            "settings": [s.name for s in self.settings],
            "key_settings": [s.name for s in self.key_settings],
            "scalars": [s.to_json() for s in self.scalars],
            "figures": list(self.figures),
            "group": self.group,
            "arrays": {a.name: [a.long_name, a.units, list(a.dims)] for a in self.arrays},
        }


def _numpy(v: Any) -> np.ndarray:
    return v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
