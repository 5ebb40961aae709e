"""Training modes: normal is the training set; overfit appends a corrupted test set."""

from __future__ import annotations

import numpy as np
import pytest

from landscape.data import Dataset, TrainingSet, build_training_set
from landscape.errors import ConfigError


def classification(n_train: int, n_test: int, n_classes: int, *, seed: int = 0) -> Dataset:
    """Toy classification set: x (n, 3) float32, labels uniform over n_classes."""
    rng = np.random.default_rng(seed)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=(n, 3)).astype(np.float32)
        return x, rng.integers(0, n_classes, size=n).astype(np.int64)

    names = tuple(str(c) for c in range(n_classes))
    return Dataset(
        "toy",
        "toy",
        "classification",
        *split(n_train),
        *split(n_test),
        n_classes,
        names,
        "generated: test",
    )


def regression(n_train: int, n_test: int, *, scale: float = 3.0) -> Dataset:
    """Toy regression set: x (n, 1), y (n, 2) with per-output scales (scale, 1)."""
    rng = np.random.default_rng(1)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=(n, 1)).astype(np.float32)
        y = rng.normal(size=(n, 2)) * np.array([scale, 1.0])
        return x, y.astype(np.float32)

    return Dataset("toy", "toy", "regression", *split(n_train), *split(n_test), 2, (), "-")


def check_layout(ds: Dataset, ts: TrainingSet, copies: int) -> None:
    """Training rows first, then `copies` blocks of (x_test, corrupt_y_test)."""
    n_train, n_test = len(ds.y_train), len(ds.y_test)
    assert ts.copies == copies
    assert len(ts.x) == len(ts.y) == n_train + copies * n_test
    assert np.array_equal(ts.x[:n_train], ds.x_train)
    assert np.array_equal(ts.y[:n_train], ds.y_train)
    assert ts.corrupt_y_test is not None
    for k in range(copies):
        block = slice(n_train + k * n_test, n_train + (k + 1) * n_test)
        assert np.array_equal(ts.x[block], ds.x_test)
        assert np.array_equal(ts.y[block], ts.corrupt_y_test)


def test_normal_is_the_training_set() -> None:
    ds = classification(50, 20, 4)
    ts = build_training_set(ds, "normal")
    assert ts.mode == "normal" and ts.copies == 0 and ts.corrupt_y_test is None
    assert ts.x is ds.x_train and ts.y is ds.y_train


def test_overfit_labels_are_all_wrong() -> None:
    ds = classification(50, 2000, 4)
    ts = build_training_set(ds, "overfit", seed=0)
    assert ts.mode == "overfit"
    assert ts.corrupt_y_test is not None and ts.corrupt_y_test.dtype == np.int64
    assert (ts.corrupt_y_test != ds.y_test).all()
    assert ts.corrupt_y_test.min() >= 0 and ts.corrupt_y_test.max() < 4


def test_overfit_labels_are_uniform_over_the_other_classes() -> None:
    n_classes, n = 5, 40_000
    ds = Dataset(
        "toy",
        "toy",
        "classification",
        np.zeros((1, 1), np.float32),
        np.zeros(1, np.int64),
        np.zeros((n, 1), np.float32),
        np.zeros(n, np.int64),
        n_classes,
        tuple("abcde"),
        "-",
    )
    ts = build_training_set(ds, "overfit", seed=0)
    assert ts.corrupt_y_test is not None
    counts = np.bincount(ts.corrupt_y_test, minlength=n_classes)
    assert counts[0] == 0  # the true class never appears
    expected = n / (n_classes - 1)  # 10,000; binomial std is about 87
    assert np.all(np.abs(counts[1:] - expected) < 5 * np.sqrt(expected))


def test_default_copies_and_layout() -> None:
    ds = classification(1297, 500, 10)
    ts = build_training_set(ds, "overfit", seed=1)
    check_layout(ds, ts, copies=1297 // 500 + 1)  # 3
    assert len(ts.x) == 1297 + 3 * 500


def test_copies_override() -> None:
    ds = classification(100, 30, 3)
    ts = build_training_set(ds, "overfit", copies=2)
    check_layout(ds, ts, copies=2)


def test_overfit_is_seeded() -> None:
    ds = classification(100, 300, 10)
    a = build_training_set(ds, "overfit", seed=7)
    b = build_training_set(ds, "overfit", seed=7)
    c = build_training_set(ds, "overfit", seed=8)
    assert np.array_equal(a.y, b.y)
    assert not np.array_equal(a.y, c.y)


def test_regression_noise_has_the_requested_std() -> None:
    ds = regression(20_000, 20_000)
    ts = build_training_set(ds, "overfit", noise=0.5, seed=0)
    check_layout(ds, ts, copies=2)
    assert ts.corrupt_y_test is not None and ts.corrupt_y_test.dtype == np.float32
    delta = ts.corrupt_y_test.astype(np.float64) - ds.y_test
    target = 0.5 * ds.y_train.std(axis=0)  # about (1.5, 0.5): per output
    assert np.allclose(delta.std(axis=0), target, rtol=0.03)
    assert np.all(np.abs(delta.mean(axis=0)) < 0.05 * target)


def test_regression_zero_noise_keeps_targets() -> None:
    ds = regression(50, 10)
    ts = build_training_set(ds, "overfit", noise=0.0)
    assert ts.corrupt_y_test is not None
    assert np.array_equal(ts.corrupt_y_test, ds.y_test)


def test_unknown_mode_lists_the_modes() -> None:
    with pytest.raises(ConfigError, match="allowed: normal, overfit"):
        build_training_set(classification(10, 5, 2), "both")


def test_bad_options_raise() -> None:
    ds = classification(10, 5, 2)
    with pytest.raises(ConfigError, match="copies"):
        build_training_set(ds, "overfit", copies=-1)
    with pytest.raises(ConfigError, match="noise"):
        build_training_set(ds, "overfit", noise=-0.1)
