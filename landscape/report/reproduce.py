"""How to reproduce a report: the commands that rebuild its stores, the versions that made
them, and the stored config as TOML. Read from the stores only (summary.json's "commands",
"versions" and the page's last section)."""

from __future__ import annotations

import json
import platform
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from landscape._version import __version__
from landscape.report.data import ReportData
from landscape.store.analysis_store import PROBE_SOURCE


def commands(data: ReportData, report_dir: Path) -> dict[str, str]:
    """Commands that rebuild the stores and this report (train from the stored config)."""
    train = str(data.train_path or "TRAIN.h5")
    analysis = str(data.analysis_path or Path(train).with_suffix(".analysis.h5"))
    if data.analysis_attrs.get("source") == PROBE_SOURCE:  # no train store: Probe made it
        return {"report": f"landscape report {_q(analysis)} -o {_q(report_dir)}"}
    config = report_dir / "config.toml"
    first = {"train": f"landscape train -p quick -c {_q(config)} -o {_q(train)}"}
    if data.imported is not None:  # the import lines recorded in the store, in order
        first = {"import": "\n".join(json.loads(data.train_index.get("import_commands", "[]")))}
    return first | {
        "analyze": _analyze_command(data, train, analysis),
        "report": f"landscape report {_q(analysis)} -o {_q(report_dir)}",
    }


def _analyze_command(data: ReportData, train: str, analysis: str) -> str:
    """`landscape analyze` with every setting the analysis recorded, as flags."""
    cfg = json.loads(data.analysis_attrs.get("config", "{}"))
    flags = []
    for name, value in cfg.items():
        if name == "measures":
            flags.append(("--only", ",".join(value) or None))
        elif value is not None:
            text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            flags.append(("--" + name.replace("_", "-"), text))
    text = " ".join(f"{flag} {_q(str(v))}" for flag, v in flags if v is not None)
    return f"landscape analyze {_q(train)} -o {_q(analysis)}" + (f" {text}" if text else "")


def measure_command(data: ReportData, measure: str) -> str:
    """The command that computes one missing measure."""
    train = str(data.train_path or "TRAIN.h5")
    analysis = str(data.analysis_path or Path(train).with_suffix(".analysis.h5"))
    return f"landscape analyze {_q(train)} -o {_q(analysis)} --only {measure}"


def _q(text: str | Path) -> str:
    return shlex.quote(str(text))


def versions(data: ReportData) -> dict[str, Any]:
    first = next(iter(data.run_data.values()), None)
    attrs = first.attrs if first else {}
    import matplotlib  # the report's own versions, read where they are already imported

    return {
        "trained_with": {
            k.removesuffix("_version"): attrs.get(k)
            for k in (
                "landscape_version",
                "torch_version",
                "numpy_version",
                "h5py_version",
                "python_version",
            )
        },
        "analyzed_with": data.analysis_attrs.get("landscape_version"),
        "reported_with": {
            "landscape": __version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "h5py": h5py.__version__,
            "matplotlib": matplotlib.__version__,
        },
    }


def config_toml(config: Mapping[str, Any]) -> str:
    """The stored config as TOML for `landscape train -c`; null keys are left to the preset."""
    lines = ["# the resolved config of the train store; keys that were null are omitted"]
    for section, values in config.items():
        lines.append(f"\n[{section}]")
        for key, value in values.items():
            if value is not None:
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    return repr(value)
