"""landscape: train normal and extreme-overfit networks and study where they end up.

The public API is exactly what is listed here.
"""

from typing import Any

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
from landscape.core.events import Event
from landscape.core.flat import FlatModel
from landscape.core.layout import Layout
from landscape.core.objective import Objective
from landscape.errors import ConfigError, DataError, LandscapeError, ModelError, StoreError
from landscape.importer.checkpoint import ImportRequest, ImportResult, import_checkpoint
from landscape.measures.runner import AnalysisConfig, AnalyzeOptions, analyze, measure_names
from landscape.measures.runs import Experiment
from landscape.pipeline.plan import Plan, resolve_plan
from landscape.pipeline.run import RunOutcome, run_plan
from landscape.probe.probe import Probe
from landscape.probe.results import ProbeResult
from landscape.store.summary import summarize
from landscape.train.experiment import planned_runs, train_experiment
from landscape.train.trainer import RuntimeOptions, TrainSummary


def __getattr__(name: str) -> Any:
    # The report (matplotlib) loads on first use: `import landscape` stays light for the CLI.
    if name == "build_report":
        from landscape.report import build_report

        return build_report
    raise AttributeError(f"module 'landscape' has no attribute {name!r}")


__all__ = [
    "AnalysisConfig",
    "AnalyzeOptions",
    "ConfigError",
    "DataConfig",
    "DataError",
    "Event",
    "Experiment",
    "ExperimentConfig",
    "FlatModel",
    "ImportRequest",
    "ImportResult",
    "LandscapeError",
    "Layout",
    "ModelConfig",
    "ModelError",
    "Objective",
    "OptimConfig",
    "Plan",
    "Probe",
    "ProbeResult",
    "RunOutcome",
    "RuntimeOptions",
    "StoreError",
    "TrainConfig",
    "TrainSummary",
    "__version__",
    "analyze",
    "build_report",
    "import_checkpoint",
    "measure_names",
    "planned_runs",
    "preset_names",
    "resolve_config",
    "resolve_plan",
    "run_plan",
    "summarize",
    "train_experiment",
]
