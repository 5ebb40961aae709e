"""Datasets and training sets: numpy arrays in, numpy arrays out (no torch here).

`load_dataset(cfg.data)` returns a `Dataset`; `build_training_set(ds, mode)` returns what one
training mode fits. Files are looked for in `data_dir`, else `$LANDSCAPE_DATA`, else `./data`
(see data/README.md), md5-checked, and downloaded only when absent and not `offline`.

>>> from landscape.config import DataConfig
>>> ds = load_dataset(DataConfig(name="digits", subset=100))
>>> ds.title, ds.x_train.shape, ds.x_test.shape
('digits 8x8', (100, 1, 8, 8), (500, 1, 8, 8))
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from landscape.config import DataConfig
from landscape.data.base import Dataset, TrainingSet, apply_subsets, fingerprint
from landscape.data.cifar import load_cifar10
from landscape.data.digits import load_digits_dataset
from landscape.data.download import resolve_data_dir
from landscape.data.idx import load_fashion_mnist, load_mnist
from landscape.data.modes import build_training_set
from landscape.data.synthetic import (
    load_line,
    load_modular,
    load_ring,
    ring_coordinates,
    ring_image,
)
from landscape.errors import ConfigError

# name -> loader(cfg, data_dir, offline); a new dataset joins here and in config_checks.CHOICES.
LOADERS: dict[str, Callable[[DataConfig, Path, bool], Dataset]] = {
    "digits": load_digits_dataset,
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
    "ring": load_ring,
    "line": load_line,
    "modular": load_modular,
}
DATASETS: tuple[str, ...] = tuple(LOADERS)


def load_dataset(
    cfg: DataConfig, *, data_dir: Path | None = None, offline: bool = False
) -> Dataset:
    """Load dataset `cfg.name`, then keep `cfg.subset` / `cfg.test_subset` rows (seed `cfg.seed`).

    data_dir: where files are looked for and downloaded to; None means `$LANDSCAPE_DATA`,
    else `./data`. offline: never download; a missing file raises `DataError`.
    Subsets are stratified by class for classification (random for regression) and
    deterministic; asking for more rows than there are raises `ConfigError`.
    """
    if cfg.name not in LOADERS:
        raise ConfigError(
            f"config key 'data.name': unknown dataset {cfg.name!r}; allowed: {', '.join(DATASETS)}"
        )
    ds = LOADERS[cfg.name](cfg, resolve_data_dir(data_dir), offline)
    return apply_subsets(ds, cfg.subset, cfg.test_subset, seed=cfg.seed)


__all__ = [
    "DATASETS",
    "Dataset",
    "TrainingSet",
    "build_training_set",
    "fingerprint",
    "load_dataset",
    "resolve_data_dir",
    "ring_coordinates",
    "ring_image",
]
