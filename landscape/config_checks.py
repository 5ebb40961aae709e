"""The checks every config value passes: its type (from the dataclass's hint), its allowed
choices and its bounds. A value is refused with the key, what was expected and what was found,
before anything is loaded or trained.

>>> check_value("train.runs", 4)
>>> try:
...     check_value("train.runs", 10**8)
... except ConfigError as e:
...     print(str(e)[:46])
config key 'train.runs': expected a value <= 1
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any

from landscape.errors import ConfigError

CHOICES: dict[str, tuple[str, ...]] = {
    "data.name": ("digits", "mnist", "fashion-mnist", "cifar10", "ring", "line", "modular"),
    "data.operation": ("add", "sub", "mul", "div"),
    "model.name": ("mlp", "lenet", "resnet", "lenet-paper", "resnet-paper"),
    "model.activation": ("relu", "leaky_relu"),
    "model.init": ("xavier_uniform", "xavier_uniform_weights", "kaiming", "default"),
    "optim.name": ("adam", "adamw", "sgd"),
    "train.mode": ("normal", "overfit", "both"),
    "train.loss": ("auto", "cross_entropy", "mse"),
}

# (minimum, inclusive?) for numbers that have one.
LOWER_BOUNDS: dict[str, tuple[float, bool]] = {
    "data.subset": (1, True),
    "data.test_subset": (1, True),
    "data.ring_points": (1, True),
    "data.ring_test_points": (1, True),
    "data.ring_resolution": (8, True),
    "data.line_points": (2, True),
    "data.line_test_points": (1, True),
    "data.modulus": (2, True),
    "data.train_fraction": (0, False),
    "model.bias_init": (float("-inf"), False),
    "data.seed": (0, True),
    "train.seed": (0, True),
    "optim.betas": (0, True),
    "model.widths": (1, True),
    "optim.lr": (0, False),
    "optim.batch_size": (0, True),
    "optim.weight_decay": (0, True),
    "optim.momentum": (0, True),
    "train.runs": (1, True),
    "train.epochs": (1, True),
    "train.steps": (0, True),
    "train.copies": (0, True),
    "train.overfit_noise": (0, True),
    "train.checkpoints": (1, True),
    "train.log_points": (2, True),
}


SEED_LIMIT = 2**63 - 1  # torch and numpy generators take seeds below 2**64; run k adds k
# (maximum, why) for numbers with a natural bound: past it the toolkit would exhaust memory or
# a generator would refuse the seed, so it is refused here, before anything is loaded or trained.
UPPER_BOUNDS: dict[str, tuple[float, str]] = {
    "data.seed": (SEED_LIMIT, "a generator seed"),
    "train.seed": (SEED_LIMIT - 1_000_000, "a generator seed; run k uses seed + k"),
    "train.runs": (1_000_000, "seeds per mode"),
    "data.ring_resolution": (8192, "the ring image has resolution^2 pixels in memory"),
    "data.ring_points": (2**26, "pixels of an 8192 x 8192 image"),
    "data.ring_test_points": (2**26, "pixels of an 8192 x 8192 image"),
    "data.line_points": (10**8, "points held in memory"),
    "data.line_test_points": (10**8, "points held in memory"),
    "data.modulus": (400, "p^2 one-hot pairs of 2p features are held in memory"),
    "model.widths": (2**20, "units per layer"),
    "optim.batch_size": (2**31 - 1, "examples per step"),
    "optim.betas": (0.999999, "Adam's betas lie in [0, 1)"),
    "train.copies": (10_000, "copies of the corrupted test set"),
    "train.checkpoints": (10_000, "checkpoints stored per run"),
    "train.log_points": (1_000_000, "history points stored per run"),
}


def coerce(key: str, value: Any, hint: Any) -> Any:
    """Check `value` against the type hint of `key`; return it in the field's type."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(key, value, inner[0])
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config key {key!r}: expected a list, found {value!r}")
        items = args[:1] * len(value) if args[-1] is Ellipsis else args
        if len(items) != len(value):
            raise ConfigError(
                f"config key {key!r}: expected {len(items)} values, found {len(value)}: {value!r}"
            )
        return tuple(coerce(key, v, a) for v, a in zip(value, items, strict=True))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key {key!r}: expected true or false, found {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key {key!r}: expected an integer, found {value!r}")
        return value
    if hint is float:
        # NaN passes every `>= 0` check, so non-finite numbers are refused here, once
        if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
            raise ConfigError(f"config key {key!r}: expected a finite number, found {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key {key!r}: expected a string, found {value!r}")
        return value
    raise ConfigError(f"config key {key!r}: unsupported type {hint!r}")  # pragma: no cover


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int past float's range
        return False


def check_value(key: str, value: Any) -> None:
    if key in CHOICES and value not in CHOICES[key]:
        allowed = ", ".join(CHOICES[key])
        raise ConfigError(f"config key {key!r}: unknown value {value!r}; allowed: {allowed}")
    if key in LOWER_BOUNDS and value is not None:
        values = value if isinstance(value, tuple) else (value,)
        low, inclusive = LOWER_BOUNDS[key]
        for v in values:
            if v < low or (v == low and not inclusive):
                rel = ">=" if inclusive else ">"
                raise ConfigError(f"config key {key!r}: expected a value {rel} {low}, found {v!r}")
    if key in UPPER_BOUNDS and value is not None:
        high, why = UPPER_BOUNDS[key]
        for v in value if isinstance(value, tuple) else (value,):
            if v > high:
                raise ConfigError(
                    f"config key {key!r}: expected a value <= {high:,} ({why}), found {v!r}"
                )
