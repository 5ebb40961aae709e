"""`AnalysisConfig`: the measures to compute and every analysis setting, derived from the specs.

Its fields are the global settings below plus every `Setting` a registered measure declares,
each with its one default; `landscape analyze --NAME`, `--set analyze.NAME=VALUE` and a preset's
`[analyze]` table all reach the same fields, and `AnalysisConfig.check` validates them before
anything is trained or computed.

>>> cfg = AnalysisConfig(grid=21)
>>> cfg.grid, cfg.parameters("surface2d")["grid"], sorted(cfg.parameters("distance"))
(21, 21, ['seed'])
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar

from landscape.errors import ConfigError
from landscape.measures.registry import SPECS, spec
from landscape.measures.spec import RUNS, Setting

SEED = Setting(
    "seed",
    0,
    "seed of every random draw (each result derives its own from it, the measure and the key)",
    "int",
    "an integer in [0, 2**63)",
    lambda v: 0 <= v < 2**63,
)
BN = Setting(
    "bn",
    "auto",
    "BatchNorm statistics at each evaluated point: recalibrate (re-estimated on "
    "training inputs at the point, the correct choice), stored (the run's own), batch (each "
    "batch's); auto recalibrates when the model has BatchNorm; models without it record none",
    "str",
    choices=("auto", "recalibrate", "stored", "batch", "none"),
)
BN_SAMPLES = Setting(
    "bn_samples",
    2048,
    "training inputs (evenly spaced) to recalibrate BatchNorm statistics on",
    "int",
    "an integer >= 2",
    lambda v: v >= 2,
    maximum=10**8,
)
GLOBAL: tuple[Setting, ...] = (RUNS, SEED, BN, BN_SAMPLES)
BN_CHOICES = BN.choices


def all_settings() -> dict[str, Setting]:
    """Every analysis setting by name: the global ones, then each measure's in registry order.

    A setting shared by several measures is one object (declared once), so it has one default.
    """
    out = {s.name: s for s in GLOBAL}
    for m in SPECS:
        for s in (*m.settings, *m.key_settings):
            if out.setdefault(s.name, s) is not s:
                raise RuntimeError(f"measure {m.name}: a second setting named {s.name!r}")
    return out


def users(name: str) -> list[str]:
    """The measures whose results depend on setting `name` ([] for the global ones)."""
    return [m.name for m in SPECS if any(s.name == name for s in (*m.settings, *m.key_settings))]


class _Methods:
    """Methods of the generated `AnalysisConfig` (its fields come from the specs)."""

    measures: tuple[str, ...]
    seed: int
    bn: str

    def parameters(self, measure: str) -> dict[str, Any]:
        """The settings a measure's result depends on, stored with it (a change recomputes it)."""
        m = spec(measure)
        keys = [s.name for s in m.settings]
        if m.evaluates:  # every measure that evaluates the net depends on the statistics used
            keys += ["bn"] + (["bn_samples"] if self.bn == "recalibrate" else [])
        return {k: getattr(self, k) for k in keys} | {"seed": self.seed}

    def check(self) -> None:
        """Raise ConfigError for an unknown measure or a setting of the wrong type or value."""
        known = [m.name for m in SPECS]
        if unknown := [m for m in self.measures if m not in known]:
            raise ConfigError(
                f"analysis: unknown measure(s) {unknown}; known: {', '.join(known)} (see "
                "`landscape analyze --list`)"
            )
        for name, setting in all_settings().items():
            setting.validate(getattr(self, name))

    @classmethod
    def from_values(cls, values: dict[str, Any], *, where: str = "analysis settings") -> Any:
        """A checked config from plain values (a preset's [analyze] table, --set analyze.*)."""
        fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        if unknown := sorted(set(values) - fields):
            raise ConfigError(
                f"{where}: unknown [analyze] key(s) {unknown}; known: {', '.join(sorted(fields))}"
            )
        typed = {
            k: (_measures(v, where) if k == "measures" else all_settings()[k].validate(v))
            for k, v in values.items()
        }
        cfg = cls(**typed)
        cfg.check()
        return cfg


def _measures(value: Any, where: str) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    if not all(isinstance(v, str) and v.strip() for v in items):
        raise ConfigError(f"{where}: measures: expected a list of measure names, found {value!r}")
    return tuple(v.strip() for v in items)


def _build() -> type:
    fields: list[tuple[str, Any, Any]] = [
        ("measures", tuple[str, ...], dataclasses.field(default=())),  # empty: every measure
    ]
    fields += [(s.name, Any, dataclasses.field(default=s.default)) for s in all_settings().values()]
    cls = dataclasses.make_dataclass("AnalysisConfig", fields, bases=(_Methods,), frozen=True)
    cls.__module__ = __name__  # picklable (Dask ships it to workers) under its module's name
    cls.__doc__ = "Analysis settings: the measures to compute (empty: all) and every setting."
    return cls


if TYPE_CHECKING:

    class AnalysisConfig(_Methods):
        """Typed loosely for the checker: the fields are generated from the specs."""

        __dataclass_fields__: ClassVar[dict[str, Any]]

        def __init__(self, **values: Any) -> None: ...
        def __getattr__(self, name: str) -> Any: ...

else:
    AnalysisConfig = _build()
