"""The measures `landscape analyze` computes, in order: one line per measure.

Adding a measure is one new file in `landscape/measures/` with its pure function(s) and a
`SPEC`, plus one line here; the CLI's options, `--list`, `info --json`, `summary.json` and the
report's measure table and headline rows all follow from the specs.
"""

from __future__ import annotations

from importlib import import_module

from landscape.errors import ConfigError
from landscape.measures.spec import MeasureSpec

# Each name is a module landscape/measures/<name>.py holding its SPEC (imported by name: the
# package re-exports some pure functions under the same names as their measure's module).
MEASURES = (
    "distance",
    "weight_norm",
    "pair_distance",
    "gradient",
    "interpolation",
    "surface1d",
    "surface2d",
    "surface_pca",
    "hessian",
    "trace",
    "trace_hutchpp",
    "spectral_density",
    "layer_curvature",
    "restart",
    "curve",
    "curvature_trajectory",
    "epsilon_sharpness",
    "perturbation",
    "prediction",
)
SPECS: tuple[MeasureSpec, ...] = tuple(
    import_module(f"landscape.measures.{name}").SPEC for name in MEASURES
)


def names() -> list[str]:
    return [m.name for m in SPECS]


def spec(name: str) -> MeasureSpec:
    for m in SPECS:
        if m.name == name:
            return m
    raise ConfigError(f"measure {name!r}: unknown; known: {', '.join(names())}")
