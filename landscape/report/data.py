"""Read a train store and its analysis store into plain numpy arrays and dicts.

Nothing here draws or evaluates a model: the report reads what `landscape train` and
`landscape analyze` stored. Only h5py and numpy are used (no torch), so a report can be made on
a machine without the training stack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from landscape.errors import StoreError
from landscape.store import analysis_read as aread
from landscape.store import analysis_store as astore
from landscape.store import train_read as tread
from landscape.store import train_store as store
from landscape.store.h5read import open_h5
from landscape.store.summary import summarize

# Flat parameter vectors stored with some results: large and never drawn.
_SKIPPED_ARRAYS = frozenset({"direction_x", "direction_y", "end_params"})


@dataclass
class RunData:
    """One run's identity and training history; history arrays are (m,) over `history/step`."""

    run_id: str
    mode: str  # normal | overfit
    seed: int
    attrs: dict[str, Any]
    history: dict[str, np.ndarray]
    units: dict[str, str]  # history name -> units attribute, e.g. "nats"


@dataclass
class ReportData:
    """Everything a report shows, read once from the stores."""

    train_path: Path | None
    analysis_path: Path | None
    train_index: dict[str, Any]  # attributes of the train index (config JSON, dataset, ...)
    analysis_attrs: dict[str, Any]  # attributes of the analysis index ({} without one)
    runs: list[dict[str, Any]]  # landscape.store.train_store.store_info rows
    run_data: dict[str, RunData]  # completed runs only
    results: dict[str, dict[str, dict[str, Any]]]  # measure -> key -> arrays and "attrs"
    quantities: dict[str, Any]  # landscape.store.summary.summarize
    warnings: list[str] = field(default_factory=list)

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.train_index.get("config", "{}"))

    @property
    def dataset(self) -> str:
        if self.imported is not None:  # the user's file or function: the index names it
            return str(self.train_index.get("dataset", ""))
        return str(self.config.get("data", {}).get("name", self.train_index.get("dataset", "")))

    @property
    def imported(self) -> dict[str, Any] | None:
        """How an imported store's model and data are rebuilt (`landscape import`); None for a
        store `landscape train` wrote."""
        raw = self.train_index.get("imported")
        return json.loads(raw) if raw else None

    @property
    def skipped(self) -> dict[str, dict[str, str]]:
        """{measure: {key: reason}} the analysis could not compute on this store."""
        raw = self.analysis_attrs.get("skipped")
        return json.loads(raw) if raw else {}

    @property
    def measures(self) -> dict[str, dict[str, Any]]:
        """The measure specs the analysis recorded (name -> description, scalars, figures, ...),
        in the order `landscape analyze` computes them; {} without an analysis store."""
        raw = self.analysis_attrs.get("measures")
        return json.loads(raw) if raw else {}

    def measure(self, name: str) -> dict[str, dict[str, Any]]:
        """Results of one measure by key; {} when not computed."""
        return self.results.get(name, {})


def load(path: Path, *, train_path: Path | None = None) -> ReportData:
    """Read an analysis store (and the train store it names), or a train store alone.

    Raises StoreError when `path` is missing, not HDF5, not a landscape store, or of another
    schema version; a measure that was not computed is simply absent from `results`.
    """
    path = Path(path)
    kind = _kind(path)
    if kind == store.KIND_TRAIN:
        return _load_train_only(path)
    attrs = _analysis_attrs(path)
    if train_path is None and attrs.get("source") == astore.PROBE_SOURCE:
        data = _without_train_store()  # a user's own model measured by landscape.Probe
    else:
        train = Path(train_path) if train_path is not None else _recorded_train_store(path, attrs)
        data = _load_train_only(train)
        data.warnings += _checksum_warnings(train, attrs)
    data.analysis_path = path
    data.analysis_attrs = attrs
    data.results, damaged = _read_results(path, attrs)
    data.warnings += damaged
    data.quantities = summarize(path, results=data.results)  # each result read once
    return data


def _kind(path: Path) -> str:
    """The store's `landscape_kind`, with a message that says what a report expects."""
    expected = "an analysis store written by `landscape analyze` (or a train store)"
    if not path.exists() and not path.is_symlink():
        raise StoreError(
            f"report input {path}: no such file; expected {expected}; run "
            f"`landscape analyze TRAIN.h5 -o {path}` first"
        )
    try:
        with open_h5(path, what="report input") as r:
            kind = r.attr("landscape_kind", str, default="")
    except StoreError as e:
        raise StoreError(
            f"{e}; expected {expected}: re-running `landscape analyze TRAIN.h5 -o {path}` "
            "writes a new analysis index (the computed results in its .d/ folder are kept)"
        ) from None
    if kind not in (store.KIND_TRAIN, astore.KIND_ANALYSIS):
        raise StoreError(
            f"report input {path}: expected {expected} (attribute landscape_kind = "
            f"{astore.KIND_ANALYSIS!r} or {store.KIND_TRAIN!r}), found {kind!r}; pass the "
            "index file (e.g. runs/quick.analysis.h5), not a result or run file"
        )
    return kind


def _analysis_attrs(path: Path) -> dict[str, Any]:
    attrs = aread.read_index(path)
    schema = attrs.get("schema", -1)
    if schema != astore.ANALYSIS_SCHEMA:
        raise StoreError(
            f"analysis store {path}: schema version {schema}, this landscape reads version "
            f"{astore.ANALYSIS_SCHEMA}; re-run `landscape analyze` with this version to rewrite "
            "it, or report with the version that wrote it"
        )
    return attrs


def _recorded_train_store(path: Path, attrs: dict[str, Any]) -> Path:
    """The train store the analysis names, or one of that name beside it (a moved folder)."""
    recorded = attrs.get("train_store")
    if not recorded:
        raise StoreError(
            f"analysis store {path}: expected attribute train_store naming the train store, "
            "found none; pass the train store explicitly (train_path=...)"
        )
    candidates = [Path(recorded), path.parent / Path(recorded).name]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise StoreError(
        f"analysis store {path}: the train store it was computed from, {recorded}, is not there "
        f"(nor beside it as {candidates[1]}); move it back or pass its path (train_path=...)"
    )


def _checksum_warnings(train: Path, attrs: dict[str, Any]) -> list[str]:
    """A train store changed since the analysis (e.g. more runs trained) is worth saying."""
    recorded = attrs.get("train_store_sha256")
    if not recorded or store.file_checksum(train) == recorded:
        return []
    return [
        f"the train store {train} changed since the analysis was computed (sha256 differs): "
        "re-run `landscape analyze` to bring the analysis up to date"
    ]


def _without_train_store() -> ReportData:
    """No runs and no training history: the results alone (of a model trained elsewhere)."""
    return ReportData(None, None, {}, {}, runs=[], run_data={}, results={}, quantities={})


def _load_train_only(train: Path) -> ReportData:
    index = tread.read_index(train)
    runs = tread.store_info(train)["runs"]
    warnings = [
        f"run {r['id']} is damaged and left out of this report: {r['problem']}"
        for r in runs
        if r["status"] == "damaged"
    ]
    run_data = {}
    for r in runs:
        if r["complete"]:
            try:
                run_data[r["id"]] = _run_data(train, r)
            except StoreError as e:  # damaged since it was listed
                warnings.append(f"run {r['id']} is damaged and left out of this report: {e}")
    return ReportData(
        train_path=train,
        analysis_path=None,
        train_index=index,
        analysis_attrs={},
        runs=runs,
        run_data=run_data,
        results={},
        quantities={},
        warnings=warnings,
    )


def _run_data(train: Path, row: dict[str, Any]) -> RunData:
    """History and attributes only: parameter vectors are large and never drawn."""
    got = tread.read_history(train, row["id"])
    return RunData(row["id"], row["mode"], int(row["seed"]), got["attrs"], got["history"],
                   got["units"])  # fmt: skip


def _read_results(path: Path, attrs: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Every readable result (arrays the report draws), and a warning per damaged one."""
    specs = json.loads(attrs.get("measures") or "{}")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    warnings = []
    for measure, key in astore.completed(path):
        try:
            result = aread.read_result(
                path, measure, key, spec=specs.get(measure), skip=_SKIPPED_ARRAYS
            )
        except StoreError as e:
            warnings.append(f"result {measure}/{key} is damaged and left out of this report: {e}")
            continue
        out.setdefault(measure, {})[key] = result
    return out, warnings
