"""summary.json: every number the report shows, with stable keys, as strict JSON.

Each number is copied from the stores (through `landscape.store.train_store.store_info` and
`landscape.store.summary.summarize`), never recomputed differently, so a script that asserts on
summary.json asserts on the stored arrays.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from landscape.report.data import ReportData
from landscape.report.reproduce import commands, measure_command, versions
from landscape.store.summary import Scalar, describe, scalars_of

SUMMARY_SCHEMA = 1

# derived by the summary across results (not one result's scalar): shown where present
EQUAL_STEPS = {
    "quantity": "distance_l2_equal_steps",
    "label": "distance from init at equal steps (overfit at the normal run's step count)",
    "units": "L2 norm",
    "source": "distance/<run>/l2 interpolated",
}


def headline_quantities(data: ReportData) -> list[dict[str, str]]:
    """The headline table's measure rows, from the scalars the recorded specs declare: those
    marked "always" (shown even when not computed), then the ones shown where present."""
    scalars = scalars_of(data.measures)

    def row(measure: str, s: Scalar) -> dict[str, str]:
        return {
            "quantity": s.quantity,
            "label": s.label,
            "units": s.units,
            "source": s.where(measure),
        }

    rows = [row(m, s) for m, s in scalars if s.headline == "always"]
    if EQUAL_STEPS["quantity"] in data.quantities:
        rows.append(EQUAL_STEPS)
    present = [(m, s) for m, s in scalars if s.headline == "present"]
    return rows + [row(m, s) for m, s in present if s.quantity in data.quantities]


def strict(value: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays unwrapped, NaN and ±inf as None."""
    if isinstance(value, Mapping):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict(v) for v in value]
    if isinstance(value, np.ndarray):
        return strict(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def dumps(summary: Mapping[str, Any]) -> str:
    """Strict JSON text (allow_nan=False: a NaN that slipped through is a bug, not a number)."""
    return json.dumps(strict(summary), indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def build_summary(data: ReportData, *, report_dir: Path) -> dict[str, Any]:
    """The summary dict without `claims` and `figures` (filled in by the caller)."""
    return strict(
        {
            "schema": SUMMARY_SCHEMA,
            "train_store": data.train_path,
            "analysis_store": data.analysis_path,
            "experiment": experiment(data),
            "runs": data.runs,
            "headline": headline(data),
            "quantities": data.quantities | final_quantities(data) | history_quantities(data),
            "restarts": restarts(data),
            "measures": measure_status(data),
            "not_computed": {
                m: measure_command(data, m)
                for m, status in measure_status(data).items()
                if status == "not computed"
            },
            "skipped": data.skipped,
            "commands": commands(data, report_dir),
            "versions": versions(data),
            "warnings": data.warnings,
        }
    )


def experiment(data: ReportData) -> dict[str, Any]:
    cfg, index = data.config, data.train_index
    first = next(iter(data.run_data.values()), None)
    attrs = first.attrs if first else {}
    train = cfg.get("train", {})
    if data.imported is not None:
        return _imported_experiment(data, attrs)
    return {
        "dataset": data.dataset,
        "dataset_title": index.get("dataset_title"),
        "dataset_fingerprint": index.get("dataset_fingerprint"),
        "model": cfg.get("model", {}).get("name"),
        "widths": cfg.get("model", {}).get("widths"),
        "init": cfg.get("model", {}).get("init"),
        "optimizer": cfg.get("optim", {}).get("name"),
        "lr": cfg.get("optim", {}).get("lr"),
        "batch_size": cfg.get("optim", {}).get("batch_size"),
        "weight_decay": cfg.get("optim", {}).get("weight_decay"),
        "epochs": train.get("epochs"),
        "steps": train.get("steps"),
        "mode": train.get("mode"),
        "runs_per_mode": train.get("runs"),
        "n_params": attrs.get("n_params"),
        "n_train": attrs.get("n_train_clean"),
        "n_test": attrs.get("n_test"),
        "task": attrs.get("task"),
        "loss": attrs.get("loss"),
        "config": cfg,
        "analysis_config": json.loads(data.analysis_attrs.get("config", "{}")),
    }


def _imported_experiment(data: ReportData, attrs: dict[str, Any]) -> dict[str, Any]:
    """Imported points were trained elsewhere: no optimizer or epochs to show, the model is the
    user's factory (or a built-in one) as recorded."""
    index = data.train_index
    return {
        "dataset": data.dataset,
        "dataset_title": index.get("dataset_title"),
        "dataset_fingerprint": index.get("dataset_fingerprint"),
        "model": attrs.get("model"),
        "imported": data.imported,
        "runs_per_mode": None,
        "n_params": attrs.get("n_params"),
        "n_train": attrs.get("n_train_clean"),
        "n_test": attrs.get("n_test"),
        "task": attrs.get("task"),
        "loss": attrs.get("loss"),
        "config": {"imported": data.imported},
        "analysis_config": json.loads(data.analysis_attrs.get("config", "{}")),
    }


FINAL = ("train_acc", "test_acc", "corrupt_acc", "train_loss", "test_loss")
CROSSING = 0.99  # "reached ~100%": the first logged step with accuracy >= this


def final_quantities(data: ReportData) -> dict[str, Any]:
    """final_<name>: the runs' final history values per mode, in the `quantities` format."""
    out = {}
    for name in FINAL:
        row = _run_row(data, name, "")
        groups = {m: row[m] for m in ("normal", "overfit") if row[m]}
        if groups:
            out[f"final_{name}"] = groups | {
                "ratio_overfit_over_normal": row["ratio_overfit_over_normal"]
            }
    return out


def first_step(steps: np.ndarray, values: np.ndarray, level: float) -> float | None:
    """The first logged step where values >= level; None if never (NaN-safe)."""
    hit = np.flatnonzero(np.nan_to_num(values, nan=-np.inf) >= level)
    return float(steps[hit[0]]) if hit.size else None


def history_quantities(data: ReportData) -> dict[str, Any]:
    """Steps until train and test accuracy first reach 0.99 (grokking's delay), per mode.

    A run that never gets there is counted in `never` and left out of the statistics; the
    ratio test/train is per run, then described over runs.
    """
    out: dict[str, Any] = {}
    for mode in ("normal", "overfit"):
        runs = [r for r in data.run_data.values() if r.mode == mode and "test_acc" in r.history]
        if not runs:
            continue
        cross = {
            split: [
                first_step(r.history["step"], r.history[f"{split}_acc"], CROSSING) for r in runs
            ]
            for split in ("train", "test")
        }
        pairs = zip(cross["train"], cross["test"], strict=True)
        ratios = [t / max(a, 1.0) for a, t in pairs if a is not None and t is not None]
        for name, values in (
            ("steps_to_train_acc_099", cross["train"]),
            ("steps_to_test_acc_099", cross["test"]),
            ("test_over_train_steps_099", ratios),
        ):
            reached = [v for v in values if v is not None]
            never = len(runs) - len(reached)
            out.setdefault(name, {})[mode] = describe(reached) | {"never": never}
    return out


def _final(data: ReportData, mode: str, name: str) -> dict[str, Any]:
    values = [
        r["final"][name]
        for r in data.runs
        if r["mode"] == mode and r["final"] and r["final"].get(name) is not None
    ]
    return describe(values)


def headline(data: ReportData) -> list[dict[str, Any]]:
    """Rows of the normal-vs-overfit table at the top of the page."""
    rows = [
        _run_row(data, "train_acc", "final accuracy, clean train set"),
        _run_row(data, "test_acc", "final accuracy, test set"),
        _run_row(data, "corrupt_acc", "final accuracy, corrupted test labels"),
        _run_row(data, "train_loss", "final loss, clean train set", _loss_units(data)),
        _run_row(data, "test_loss", "final loss, test set", _loss_units(data)),
    ]
    rows = [r for r in rows if r["normal"] or r["overfit"]]  # e.g. no accuracy for regression
    for row in headline_quantities(data):
        groups = data.quantities.get(row["quantity"], {})
        rows.append(
            row
            | {
                "normal": groups.get("normal"),
                "overfit": groups.get("overfit"),
                "ratio_overfit_over_normal": groups.get("ratio_overfit_over_normal"),
            }
        )
    rows += _restart_rows(data)
    return rows


def _loss_units(data: ReportData) -> str:
    first = next(iter(data.run_data.values()), None)
    return first.units.get("train_loss", "") if first else ""


def _run_row(data: ReportData, name: str, label: str, units: str = "fraction") -> dict[str, Any]:
    normal, overfit = _final(data, "normal", name), _final(data, "overfit", name)
    ratio = None
    if normal["mean"] and overfit["mean"] is not None:
        ratio = overfit["mean"] / normal["mean"]
    return {
        "quantity": f"final_{name}",
        "label": label,
        "units": units,
        "normal": normal if normal["n"] else None,
        "overfit": overfit if overfit["n"] else None,
        "ratio_overfit_over_normal": ratio,
        "source": f"<run>/history/{name} at the final step",
    }


def _restart_rows(data: ReportData) -> list[dict[str, Any]]:
    """Test accuracy after restarting SGD from each overfit point, one row per recipe."""
    groups = data.quantities.get("restart_test_acc", {})
    return [
        {
            "quantity": f"restart_test_acc.{group}",
            "label": f"test accuracy after restart ({group.split('+', 1)[1]})",
            "units": "fraction",
            "normal": None,
            "overfit": stats,
            "ratio_overfit_over_normal": None,
            "source": "restart/<recipe>.<run>/test_acc[-1]",
        }
        for group, stats in sorted(groups.items())
        if group.startswith("overfit+")
    ]


def restarts(data: ReportData) -> dict[str, Any]:
    """Per recipe: test accuracy before and after, train accuracy after, distance moved."""
    by_recipe: dict[str, list[dict[str, Any]]] = {}
    for result in data.measure("restart").values():
        by_recipe.setdefault(str(result["attrs"].get("recipe")), []).append(result)
    return {recipe: _restart_stats(results) for recipe, results in sorted(by_recipe.items())}


def _restart_stats(results: list[dict[str, Any]]) -> dict[str, Any]:
    def last(name: str, at: int = -1) -> dict[str, Any]:
        return describe([float(np.asarray(r[name])[at]) for r in results])

    return {
        "runs": sorted(str(r["attrs"].get("run")) for r in results),
        "settings": results[0]["attrs"].get("recipe_settings"),
        "steps": int(np.asarray(results[0]["step"])[-1]),
        "test_acc_before": last("test_acc", 0),
        "test_acc_after": last("test_acc"),
        "train_acc_after": last("train_acc"),
        "distance_moved": last("dist_moved"),
    }


def measure_status(data: ReportData) -> dict[str, str]:
    """computed; skipped (every key: the store lacks what it needs, see `skipped`); not computed."""

    def status(m: str) -> str:
        if data.measure(m):
            return "computed"
        return "skipped" if m in data.skipped else "not computed"

    return {m: status(m) for m in data.measures}
