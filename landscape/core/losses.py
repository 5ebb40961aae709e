"""Which loss a dataset is trained and measured with, and its units."""

from __future__ import annotations

from typing import TYPE_CHECKING

from landscape.errors import ConfigError

if TYPE_CHECKING:
    from landscape.config import ExperimentConfig
    from landscape.data import Dataset


def loss_units(loss: str) -> str:
    """Units of a loss value: nats for cross-entropy, squared error otherwise."""
    return "nats" if loss == "cross_entropy" else "squared error"


def loss_name(cfg: ExperimentConfig, ds: Dataset) -> str:
    """The loss to use: the configured one, or the task's natural one for `auto`."""
    natural = "cross_entropy" if ds.task == "classification" else "mse"
    if cfg.train.loss == "auto":
        return natural
    if cfg.train.loss == "cross_entropy" and ds.task != "classification":
        raise ConfigError(
            f"config key 'train.loss': cross_entropy needs a classification dataset, but "
            f"{ds.name!r} is a regression task; use train.loss = 'mse' or 'auto'"
        )
    return cfg.train.loss
