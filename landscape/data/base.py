"""The two containers the rest of `landscape` consumes, their fingerprint, and seeded subsets.

A `Dataset` is what a loader returns: a fixed train/test split as numpy arrays plus what the
arrays mean. A `TrainingSet` (built in `modes.py`) is what one training mode actually fits.
Both are frozen and compare by identity: their arrays are never to be modified in place, so a
dataset's `fingerprint` can be computed once and cached.

>>> x = np.zeros((4, 2), np.float32)
>>> y = np.array([0, 1, 0, 1])
>>> ds = Dataset("toy", "toy", "classification", x, y, x, y, 2, ("a", "b"), "generated: toy")
>>> ds.input_shape, len(ds.fingerprint)
((2,), 64)
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from landscape.errors import ConfigError, DataError

TASKS = ("classification", "regression")


def fingerprint(*arrays: np.ndarray) -> str:
    """sha256 hex digest over the dtype, shape and bytes of each array, in order.

    Equal digests mean bit-identical arrays of the same dtypes and shapes, so a stored result
    can say exactly which data it was computed on.
    """
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        # The header keeps e.g. (2, 3) float32 and (3, 2) float32 of the same bytes apart.
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.data)
    return h.hexdigest()


# eq=False: the generated __eq__/__hash__ would compare numpy arrays (ambiguous) and hash them
# (unhashable); identity is the meaningful equality here, `fingerprint` the content one.
@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split. Images are float32 in [0, 1], channels first: (n, C, H, W).

    x_*: float32 (n, *input_shape). y_*: int64 (n,) class indices for classification, float32
    (n, n_outputs) for regression. `source` says where the data came from (files read, or
    "generated: ..." with parameters).
    """

    name: str  # registry name: "digits", "mnist", ...
    title: str  # human name, e.g. "MNIST", "CIFAR-10 (JPEG subset)", "ring 1024x1024"
    task: str  # "classification" | "regression"
    x_train: np.ndarray  # float32 (n_train, *input_shape)
    y_train: np.ndarray  # int64 (n_train,) | float32 (n_train, n_outputs)
    x_test: np.ndarray  # float32 (n_test, *input_shape)
    y_test: np.ndarray  # int64 (n_test,) | float32 (n_test, n_outputs)
    n_outputs: int  # number of classes, or of regression outputs
    class_names: tuple[str, ...]  # one per class; () for regression
    source: str  # file paths read, or "generated: ..." with its parameters

    def __post_init__(self) -> None:
        _check_dataset(self)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, e.g. (1, 28, 28) for MNIST or (2,) for the ring."""
        return tuple(self.x_train.shape[1:])

    @cached_property
    def fingerprint(self) -> str:
        """sha256 hex digest of x_train, y_train, x_test, y_test (bytes, shapes, dtypes)."""
        return fingerprint(self.x_train, self.y_train, self.x_test, self.y_test)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, title={self.title!r}, task={self.task!r}, "
            f"train={self.x_train.shape}, test={self.x_test.shape}, n_outputs={self.n_outputs})"
        )


@dataclass(frozen=True, eq=False)
class TrainingSet:
    """What one training mode fits: rows of `x` (n, *input_shape) with targets `y`.

    overfit: the clean training set first, then the corrupted test set `copies` times;
    `corrupt_y_test` is one copy of the corrupted test targets. normal: the training set,
    `corrupt_y_test` None and `copies` 0.
    """

    mode: str  # "normal" | "overfit"
    x: np.ndarray  # float32 (n_train + copies * n_test, *input_shape)
    y: np.ndarray  # int64 (n,) | float32 (n, n_outputs)
    corrupt_y_test: np.ndarray | None  # overfit: corrupted test targets (one copy); else None
    copies: int  # times the corrupted test set is appended; 0 for normal

    def __repr__(self) -> str:
        return f"TrainingSet(mode={self.mode!r}, x={self.x.shape}, copies={self.copies})"


def _check_dataset(ds: Dataset) -> None:
    """Raise DataError unless the arrays match the documented dtypes and shapes."""
    where = f"dataset {ds.name!r}"
    if ds.task not in TASKS:
        raise DataError(f"{where}: task must be one of {', '.join(TASKS)}, found {ds.task!r}")
    for split, x, y in (("train", ds.x_train, ds.y_train), ("test", ds.x_test, ds.y_test)):
        if x.dtype != np.float32 or len(x) != len(y):
            raise DataError(
                f"{where}: x_{split} must be float32 with one row per target, found "
                f"{x.dtype} {x.shape} for y_{split} {y.shape}"
            )
        _check_targets(where, split, ds, y)
    if ds.x_train.shape[1:] != ds.x_test.shape[1:]:
        raise DataError(
            f"{where}: train and test inputs differ in shape: {ds.x_train.shape[1:]} "
            f"vs {ds.x_test.shape[1:]}"
        )


def _check_targets(where: str, split: str, ds: Dataset, y: np.ndarray) -> None:
    if ds.task == "regression":
        if y.dtype != np.float32 or y.ndim != 2 or y.shape[1] != ds.n_outputs:
            raise DataError(
                f"{where}: y_{split} must be float32 (n, {ds.n_outputs}), found {y.dtype} {y.shape}"
            )
        return
    if y.dtype != np.int64 or y.ndim != 1:
        raise DataError(f"{where}: y_{split} must be int64 (n,), found {y.dtype} {y.shape}")
    if len(ds.class_names) != ds.n_outputs:
        raise DataError(f"{where}: {ds.n_outputs} classes but {len(ds.class_names)} class names")
    if y.size and (y.min() < 0 or y.max() >= ds.n_outputs):
        raise DataError(
            f"{where}: y_{split} labels must lie in [0, {ds.n_outputs}), found "
            f"[{y.min()}, {y.max()}]"
        )


def stratified_indices(y: np.ndarray, n: int, *, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of `n` rows of the labels `y` (n_rows,), equally many per class.

    Class counts differ by at most 1, unless a class has too few rows: it then gives all it
    has and the others share the rest. Which classes get the +1 is drawn from `rng`.
    """
    classes, counts = np.unique(y, return_counts=True)
    quota = _balanced_quota(counts, n, rng=rng)
    picks = [
        rng.choice(np.flatnonzero(y == c), size=q, replace=False)
        for c, q in zip(classes, quota, strict=True)
    ]
    return np.sort(np.concatenate(picks))


def _balanced_quota(counts: np.ndarray, n: int, *, rng: np.random.Generator) -> np.ndarray:
    """Per-class sample sizes summing to n (<= counts.sum()), as equal as `counts` allows."""
    quota = np.zeros_like(counts)
    remaining = n
    while remaining > 0:
        open_ = np.flatnonzero(counts > quota)  # classes with rows left
        share = remaining // len(open_)
        if share == 0:  # fewer rows left than open classes: one more for some of them
            quota[rng.choice(open_, size=remaining, replace=False)] += 1
            break
        add = np.minimum(counts[open_] - quota[open_], share)
        quota[open_] += add
        remaining -= int(add.sum())
    return quota


def random_indices(n_rows: int, n: int, *, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of `n` of `n_rows` rows drawn without replacement."""
    return np.sort(rng.choice(n_rows, size=n, replace=False))


def apply_subsets(
    ds: Dataset, subset: int | None, test_subset: int | None, *, seed: int
) -> Dataset:
    """Keep `subset` training and `test_subset` test rows (None: all), seeded and deterministic.

    Classification subsets are stratified (equal class counts, within 1); regression subsets
    are uniform at random. Train and test draw from separate streams of `seed`, so changing
    one size never changes the other subset.
    """
    if subset is None and test_subset is None:
        return ds
    x_train, y_train = _subset(ds, "train", ds.x_train, ds.y_train, subset, [seed, 0])
    x_test, y_test = _subset(ds, "test", ds.x_test, ds.y_test, test_subset, [seed, 1])
    note = f"; subset {len(y_train)} train / {len(y_test)} test ({_how(ds)}, seed {seed})"
    return dataclasses.replace(
        ds, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, source=ds.source + note
    )


def _how(ds: Dataset) -> str:
    return "stratified by class" if ds.task == "classification" else "random"


def _subset(
    ds: Dataset, split: str, x: np.ndarray, y: np.ndarray, n: int | None, seed: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    if n is None:
        return x, y
    key = "data.subset" if split == "train" else "data.test_subset"
    if not 1 <= n <= len(y):
        raise ConfigError(
            f"config key {key!r}: asked for {n} {split} examples, but {ds.title} has "
            f"{len(y)}; use a value from 1 to {len(y)}, or leave it unset to use all"
        )
    rng = np.random.default_rng(seed)
    if ds.task == "classification":
        idx = stratified_indices(y, n, rng=rng)
    else:
        idx = random_indices(len(y), n, rng=rng)
    return x[idx], y[idx]
