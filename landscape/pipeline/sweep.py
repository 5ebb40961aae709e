"""A sweep: one preset trained at several values of one key, at equal epochs and equal steps.

halvar.flake's ring experiment trains the same net on 5000, 2500, ... 312 pixels for the same
number of epochs. At batch 1024 fewer pixels also means fewer optimizer steps, so a fair
comparison also trains each size for the steps the largest one took. A preset asks for that
with a [sweep] table::

    [sweep]
    key = "data.ring_points"                 # any experiment key
    values = [5000, 2500, 1250, 625, 312]    # the first value is the reference
    budgets = ["epochs", "steps"]            # equal epochs; equal optimizer steps

Each (value, budget) is a variant with its own train store, analysis and report; the sweep's
claims are checked against sweep.json, whose `variants.<label>` hold each variant's summary.
Under "steps" every variant trains for the reference's total steps; the reference itself has
one variant only, labelled with "epochs", because its two budgets coincide.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from landscape.config import ExperimentConfig, from_dict, total_steps
from landscape.errors import ConfigError

BUDGETS = ("epochs", "steps")
SWEEP_KEYS = ("key", "values", "budgets")


@dataclass(frozen=True)
class Sweep:
    key: str  # dotted experiment key, e.g. "data.ring_points"
    values: tuple[Any, ...]  # the first is the reference for equal steps
    budgets: tuple[str, ...] = ("epochs",)


@dataclass(frozen=True)
class Variant:
    label: str  # e.g. "ring_points-625-equal-steps": a folder and store name
    value: Any
    budget: str  # "epochs" or "steps"
    experiment: ExperimentConfig
    train_size: int
    steps: int  # optimizer steps it trains for
    epochs: float  # passes over its training set


def parse_sweep(section: Any, where: str) -> Sweep:
    """The [sweep] table checked: a known key, a non-empty list of distinct values, budgets."""
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: [sweep] must be a table with keys {', '.join(SWEEP_KEYS)}")
    unknown = sorted(set(section) - set(SWEEP_KEYS))
    if unknown or "key" not in section or "values" not in section:
        raise ConfigError(
            f"{where}: [sweep] needs `key` and `values` (and optionally `budgets`); "
            f"found keys {sorted(section)}"
        )
    key, values = section["key"], section["values"]
    budgets = tuple(section.get("budgets", ["epochs"]))
    if not isinstance(key, str) or key.count(".") != 1:
        raise ConfigError(f"{where}: [sweep] key must be 'section.name', found {key!r}")
    if not isinstance(values, list) or not values or len(set(map(repr, values))) != len(values):
        raise ConfigError(f"{where}: [sweep] values must be a non-empty list of distinct values")
    bad = [b for b in budgets if b not in BUDGETS]
    if bad or not budgets or len(set(budgets)) != len(budgets):
        raise ConfigError(
            f"{where}: [sweep] budgets {list(budgets)}: allowed {', '.join(BUDGETS)}, each once"
        )
    return Sweep(key, tuple(values), budgets)


def slug(value: Any) -> str:
    """A value as a label part without dots (claims address variants by dotted paths).

    >>> slug(5000), slug(1.0), slug(0.5), slug(1e-4)
    ('5000', '1', '0p5', '0p0001')
    """
    text = f"{value:g}" if isinstance(value, float) else str(value)
    if "e" in text and isinstance(value, float):
        text = f"{value:f}".rstrip("0")
    return text.replace(".", "p").replace(" ", "")


def _with(base: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    section, name = key.split(".")
    d = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    d.setdefault(section, {})[name] = value
    return d


def variants(
    base: ExperimentConfig, sweep: Sweep, train_size: Callable[[ExperimentConfig], int]
) -> list[Variant]:
    """Every (value, budget) variant of `base`; train_size(cfg) is its training-set rows.

    Raises ConfigError when the base counts in steps (there are no epochs to hold equal) or a
    value does not build a valid experiment.
    """
    if base.train.steps and "epochs" in sweep.budgets:
        raise ConfigError(
            f"[sweep] budget 'epochs' needs train.epochs, but train.steps = {base.train.steps}; "
            "set train.steps = 0 or use budgets = ['steps']"
        )
    d = base.to_dict()
    configs = [from_dict(_with(d, sweep.key, v)) for v in sweep.values]
    sizes = [train_size(c) for c in configs]
    reference_steps = total_steps(configs[0], sizes[0])[1]
    name = sweep.key.split(".")[1]
    out = []
    for i, (value, cfg, n) in enumerate(zip(sweep.values, configs, sizes, strict=True)):
        for budget in sweep.budgets:
            if budget == "steps" and i == 0 and "epochs" in sweep.budgets:
                continue  # the reference at equal steps is the reference at equal epochs
            if budget == "steps":
                cfg = dataclasses.replace(
                    cfg, train=dataclasses.replace(cfg.train, steps=reference_steps)
                )
            per_epoch, steps = total_steps(cfg, n)
            label = f"{name}-{slug(value)}-equal-{budget}"
            out.append(Variant(label, value, budget, cfg, n, steps, steps / per_epoch))
    return out
