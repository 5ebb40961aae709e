"""Generated datasets: the ring image, a noisy line, and modular arithmetic tables.

Everything here is a pure function of the config: the same `DataConfig` gives bit-identical
arrays, and `source` records the parameters.

Ring pixel convention: pixel (row, col) of a resolution r image has input coordinates
(x, y) = (col / r, row / r) in [0, 1)^2 (its top-left corner; y grows downwards), and flat
index row * r + col (row-major). Its colour is decided at its centre ((col + 0.5) / r,
(row + 0.5) / r): black (0.0) when the distance from the image centre (0.5, 0.5) lies in
[0.219, 0.25] (fractions of the width), else white (1.0).

>>> img = ring_image(64)
>>> img.shape, float(img[32, 32]), float(img[32, 32 + 15])
((64, 64), 1.0, 0.0)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from landscape.config import DataConfig
from landscape.data.base import Dataset
from landscape.errors import ConfigError

RING_INNER = 0.219  # inner radius, fraction of the width
RING_OUTER = 0.25  # outer radius, fraction of the width
LINE_X_MAX = 20.0  # line: x ~ U(0, 20)
LINE_INTERCEPT = 3.0
LINE_SLOPE = 0.7
LINE_NOISE_STD = 2.0
OPERATIONS = {"add": "+", "sub": "-", "mul": "*", "div": "/"}


def ring_image(resolution: int) -> np.ndarray:
    """The ring as (resolution, resolution) float32 gray levels: 0 = black ring, 1 = white."""
    _check_resolution(resolution)
    centres = (np.arange(resolution) + 0.5) / resolution - 0.5  # pixel centre minus image centre
    radius = np.hypot(centres[None, :], centres[:, None])  # (row, col)
    black = (radius >= RING_INNER) & (radius <= RING_OUTER)
    return np.where(black, 0.0, 1.0).astype(np.float32)


def ring_coordinates(resolution: int) -> np.ndarray:
    """Inputs of every pixel, (resolution**2, 2) float32, row-major: row k is (col/r, row/r).

    Row k belongs to pixel (row, col) = divmod(k, resolution), so
    `ring_image(r).reshape(-1)[k]` is the target of `ring_coordinates(r)[k]`.
    """
    _check_resolution(resolution)
    return pixel_coordinates(np.arange(resolution * resolution), resolution)


def pixel_coordinates(index: np.ndarray, resolution: int) -> np.ndarray:
    """Flat pixel indices (n,) -> (n, 2) float32 coordinates (col / r, row / r)."""
    row, col = np.divmod(index, resolution)
    return np.stack([col / resolution, row / resolution], axis=1).astype(np.float32)


def _check_resolution(resolution: int) -> None:
    if resolution < 1:
        raise ConfigError(
            f"config key 'data.ring_resolution': expected a positive number of pixels, "
            f"found {resolution}"
        )


def load_ring(cfg: DataConfig, data_dir: Path, offline: bool) -> Dataset:
    """Ring regression: x (n, 2) pixel coordinates, y (n, 1) gray level in {0, 1}.

    `cfg.ring_points` training and `cfg.ring_test_points` test pixels are drawn together
    without replacement (seed `cfg.seed`), so the two sets are disjoint.
    """
    res, n_train, n_test = cfg.ring_resolution, cfg.ring_points, cfg.ring_test_points
    if n_train + n_test > res * res:
        raise ConfigError(
            f"config keys 'data.ring_points' + 'data.ring_test_points' = {n_train + n_test} "
            f"pixels, but a {res}x{res} image has {res * res}; lower them or raise "
            "data.ring_resolution"
        )
    rng = np.random.default_rng(cfg.seed)
    index = rng.choice(res * res, size=n_train + n_test, replace=False)
    x = pixel_coordinates(index, res)  # (n_train + n_test, 2)
    y = ring_image(res).reshape(-1)[index][:, None]  # (n_train + n_test, 1)
    return Dataset(
        name="ring",
        title=f"ring {res}x{res}",
        task="regression",
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_test=x[n_train:],
        y_test=y[n_train:],
        n_outputs=1,
        class_names=(),
        source=(
            f"generated: ring {res}x{res}, black for radius in [{RING_INNER}, {RING_OUTER}] "
            f"x width, {n_train} train / {n_test} disjoint test pixels, seed {cfg.seed}"
        ),
    )


def load_line(cfg: DataConfig, data_dir: Path, offline: bool) -> Dataset:
    """Noisy line: x ~ U(0, 20) (n, 1), y = 3 + 0.7 x + N(0, 2^2) (n, 1), float32.

    Training points are drawn first, so their values do not depend on `cfg.line_test_points`.
    """
    rng = np.random.default_rng(cfg.seed)
    x_train, y_train = _line_points(cfg.line_points, rng=rng)
    x_test, y_test = _line_points(cfg.line_test_points, rng=rng)
    return Dataset(
        name="line",
        title="line y = 3 + 0.7x + noise",
        task="regression",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        n_outputs=1,
        class_names=(),
        source=(
            f"generated: line, x ~ U(0, {LINE_X_MAX:g}), y = {LINE_INTERCEPT:g} + "
            f"{LINE_SLOPE:g} x + N(0, {LINE_NOISE_STD:g}^2), {cfg.line_points} train / "
            f"{cfg.line_test_points} test points, seed {cfg.seed}"
        ),
    )


def _line_points(n: int, *, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(0.0, LINE_X_MAX, size=(n, 1))
    y = LINE_INTERCEPT + LINE_SLOPE * x + rng.normal(0.0, LINE_NOISE_STD, size=(n, 1))
    return x.astype(np.float32), y.astype(np.float32)


def modular_table(p: int, operation: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (a, b) in [0, p)^2 in row-major order, and its label (a op b) mod p.

    Returns a, b, label, each (N,) int64; N = p^2, or p(p - 1) for div, which leaves out
    b = 0 and uses a * b^-1 mod p (p must be prime for every b != 0 to have an inverse).
    """
    _check_modular(p, operation)
    a, b = (g.reshape(-1) for g in np.meshgrid(np.arange(p), np.arange(p), indexing="ij"))
    if operation == "div":
        a, b = a[b != 0], b[b != 0]
        inverse = np.array([0] + [pow(v, -1, p) for v in range(1, p)], dtype=np.int64)
        return a, b, (a * inverse[b]) % p
    label = {"add": a + b, "sub": a - b, "mul": a * b}[operation] % p
    return a, b, label


def _check_modular(p: int, operation: str) -> None:
    if operation not in OPERATIONS:
        raise ConfigError(
            f"config key 'data.operation': unknown value {operation!r}; allowed: "
            + ", ".join(OPERATIONS)
        )
    if p < 2:
        raise ConfigError(f"config key 'data.modulus': expected p >= 2, found {p}")
    if operation == "div" and not _is_prime(p):
        raise ConfigError(
            f"config key 'data.modulus': operation 'div' needs a prime modulus so that every "
            f"b != 0 has an inverse, found {p}; use a prime such as 97"
        )


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))


def one_hot_pairs(a: np.ndarray, b: np.ndarray, p: int) -> np.ndarray:
    """(N,) operands -> (N, 2p) float32: one-hot(a) then one-hot(b)."""
    x = np.zeros((len(a), 2 * p), dtype=np.float32)
    rows = np.arange(len(a))
    x[rows, a] = 1.0
    x[rows, p + b] = 1.0
    return x


def load_modular(cfg: DataConfig, data_dir: Path, offline: bool) -> Dataset:
    """Modular arithmetic classification: x (N, 2p) one-hot pairs, y (N,) int64 residues.

    A random fraction `cfg.train_fraction` of the pairs (seed `cfg.seed`) trains, the rest
    test. Memory is N * 2p * 4 bytes (7 MB for p = 97).
    """
    p, op = cfg.modulus, cfg.operation
    a, b, label = modular_table(p, op)
    train, test = _split_pairs(len(label), cfg.train_fraction, seed=cfg.seed)
    x = one_hot_pairs(a, b, p)
    return Dataset(
        name="modular",
        title=f"modular (a {OPERATIONS[op]} b) mod {p}",
        task="classification",
        x_train=x[train],
        y_train=label[train],
        x_test=x[test],
        y_test=label[test],
        n_outputs=p,
        class_names=tuple(str(r) for r in range(p)),
        source=(
            f"generated: modular (a {OPERATIONS[op]} b) mod {p}, {len(label)} pairs, "
            f"train fraction {cfg.train_fraction:g}, seed {cfg.seed}"
        ),
    )


def _split_pairs(n: int, fraction: float, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) indices of n rows, round(fraction * n) of them for training."""
    n_train = round(fraction * n)
    if not 1 <= n_train < n:
        raise ConfigError(
            f"config key 'data.train_fraction': {fraction:g} of {n} pairs leaves "
            f"{n_train} train and {n - n_train} test pairs; both need at least one"
        )
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[:n_train]), np.sort(perm[n_train:])
