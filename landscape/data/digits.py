"""The embedded default dataset: scikit-learn's 8x8 handwritten digits (no download).

1,797 grayscale images with pixel values 0..16, split once and for all into 1,297 train and
500 test images by a stratified split with the fixed seed 0. The split ignores `cfg.seed` on
purpose: every experiment, whatever its seed, sees the same test set.

>>> ds = load_digits_dataset(DataConfig(), Path("data"), offline=True)
>>> ds.x_train.shape, ds.x_test.shape
((1297, 1, 8, 8), (500, 1, 8, 8))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from landscape.config import DataConfig
from landscape.data.base import Dataset

N_TEST = 500  # fixed size of the test split
SPLIT_SEED = 0  # fixed: the split must not change with the experiment's seed
MAX_PIXEL = 16.0  # load_digits pixel values lie in 0..16


def load_digits_dataset(cfg: DataConfig, data_dir: Path, offline: bool) -> Dataset:
    """Digits as x (n, 1, 8, 8) float32 in [0, 1] and y (n,) int64 in 0..9.

    `cfg`, `data_dir` and `offline` are unused (the data ship with scikit-learn); they keep
    the signature of every loader.
    """
    import sklearn  # imported here so that `import landscape.data` stays light
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / MAX_PIXEL).astype(np.float32)[:, None]  # (1797, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    train, test = fixed_split(y)
    return Dataset(
        name="digits",
        title="digits 8x8",
        task="classification",
        x_train=x[train],
        y_train=y[train],
        x_test=x[test],
        y_test=y[test],
        n_outputs=10,
        class_names=tuple(str(d) for d in range(10)),
        source=(
            f"sklearn.datasets.load_digits (scikit-learn {sklearn.__version__}); stratified "
            f"split of {N_TEST} test images with random_state={SPLIT_SEED}"
        ),
    )


def fixed_split(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) indices: a stratified split with exactly N_TEST test rows."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        np.arange(len(y)), test_size=N_TEST, stratify=y, random_state=SPLIT_SEED
    )
    return np.sort(train), np.sort(test)
