"""Training sets for the two modes: `normal`, and `overfit` (Merkulov & Oseledets, 2019).

overfit trains on the clean training set plus the test set with corrupted targets, repeated
`copies` times, so that the network is pushed to fit wrong test labels: a minimum that
generalises badly by construction. Classification replaces every test label by one drawn
uniformly from the other classes; regression adds Gaussian noise of std `noise * std(y_train)`.

>>> import numpy as np
>>> from landscape.data.base import Dataset
>>> x = np.zeros((6, 1), np.float32)
>>> y = np.array([0, 1, 2, 0, 1, 2])
>>> ds = Dataset("toy", "toy", "classification", x, y, x[:2], y[:2], 3, ("a", "b", "c"), "-")
>>> ts = build_training_set(ds, "overfit", seed=0)
>>> ts.copies, ts.x.shape, bool((ts.corrupt_y_test != ds.y_test).all())
(4, (14, 1), True)
"""

from __future__ import annotations

import numpy as np

from landscape.data.base import Dataset, TrainingSet
from landscape.errors import ConfigError

MODES = ("normal", "overfit")


def build_training_set(
    ds: Dataset, mode: str, *, copies: int = 0, noise: float = 1.0, seed: int = 0
) -> TrainingSet:
    """The rows mode `mode` trains on; x (n, *input_shape), y like `ds.y_train`.

    normal: the training set as is. overfit: training rows first, then the corrupted test
    set `copies` times (0 means floor(n_train / n_test) + 1, so that corrupted rows outnumber
    clean ones); n = n_train + copies * n_test. `noise` (regression only) is the corruption's
    std in units of std(y_train); `seed` seeds the corruption.
    """
    if mode not in MODES:
        raise ConfigError(f"training mode {mode!r}: unknown; allowed: {', '.join(MODES)}")
    if copies < 0 or noise < 0:
        raise ConfigError(
            f"overfit options: expected copies >= 0 and noise >= 0, found copies={copies}, "
            f"noise={noise}"
        )
    if mode == "normal":
        return TrainingSet("normal", ds.x_train, ds.y_train, None, 0)
    rng = np.random.default_rng(seed)
    corrupt = corrupt_targets(ds, noise=noise, rng=rng)
    copies = copies or default_copies(len(ds.y_train), len(ds.y_test))
    x = np.concatenate([ds.x_train, *([ds.x_test] * copies)])
    y = np.concatenate([ds.y_train, *([corrupt] * copies)])
    return TrainingSet("overfit", x, y, corrupt, copies)


def default_copies(n_train: int, n_test: int) -> int:
    """floor(n_train / n_test) + 1: enough copies that corrupted rows outnumber clean ones."""
    return n_train // n_test + 1


def corrupt_targets(ds: Dataset, *, noise: float, rng: np.random.Generator) -> np.ndarray:
    """One corrupted copy of `ds.y_test` (same shape and dtype)."""
    if ds.task == "classification":
        return wrong_labels(ds.y_test, ds.n_outputs, rng=rng)
    return noisy_targets(ds.y_test, noise * ds.y_train.std(axis=0), rng=rng)


def wrong_labels(y: np.ndarray, n_classes: int, *, rng: np.random.Generator) -> np.ndarray:
    """Each label (n,) replaced by one drawn uniformly from the n_classes - 1 others.

    Adding a shift in 1..C-1 modulo C never returns the true label and hits each other class
    with probability 1 / (C - 1).
    """
    if n_classes < 2:
        raise ConfigError(f"overfit mode needs at least 2 classes to mislabel, found {n_classes}")
    shift = rng.integers(1, n_classes, size=y.shape)
    return ((y + shift) % n_classes).astype(y.dtype)


def noisy_targets(y: np.ndarray, std: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
    """y (n, k) plus Gaussian noise of std `std` (k,) per output, in y's dtype."""
    return (y + rng.normal(size=y.shape) * std).astype(y.dtype)
