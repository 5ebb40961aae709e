"""landscape: train normal and extreme-overfit networks and study where they end up.

The public API is exactly what is listed here.
"""

from landscape._version import __version__
from landscape.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    preset_names,
    resolve_config,
)
from landscape.errors import ConfigError, DataError, LandscapeError, StoreError
from landscape.experiment import planned_runs, train_experiment
from landscape.params import Layout
from landscape.train import Event, RuntimeOptions, TrainSummary

__all__ = [
    "ConfigError",
    "DataConfig",
    "DataError",
    "Event",
    "ExperimentConfig",
    "LandscapeError",
    "Layout",
    "ModelConfig",
    "OptimConfig",
    "RuntimeOptions",
    "StoreError",
    "TrainConfig",
    "TrainSummary",
    "__version__",
    "planned_runs",
    "preset_names",
    "resolve_config",
    "train_experiment",
]
