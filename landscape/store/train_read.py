"""Reading a train store, every file through the validating reader (`landscape.store.h5read`).

The layout's names and paths are defined here, beside the checks (`train_store` writes the
layout and re-exports these). A run file is checked against that layout: its attributes (kind,
schema, run id, mode, index, status, a config that matches the index's), its parameter layout
table, every array's dtype and shape against the layout (P parameters, n checkpoints, m history
points) and its parameter vectors finite. A run file that fails is *damaged* (never
"missing"): `store_info` says so with the problem, `landscape analyze` leaves it out with a
note, and `landscape train` refuses to overwrite it without `--replace-damaged`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from landscape.errors import ConfigError, StoreError
from landscape.store.h5read import H5, check_run_id, open_h5

STORE_SCHEMA = 1
KIND_TRAIN = "landscape.train"
KIND_RUN = "landscape.run"
STATUSES = ("complete", "diverged")
# history arrays `run_summary` and the report read; the others are checked when present
HISTORY_NEEDED = ("train_loss", "train_acc", "test_loss", "test_acc", "corrupt_acc")
_LAYOUT_KEYS = {"name": "T", "shape": "T", "offset": "iu", "numel": "iu", "kind": "T"}


def runs_dir(index_path: Path) -> Path:
    """Folder of the run files of index `runs/quick.h5`: `runs/quick.runs/`."""
    return index_path.with_name(index_path.stem + ".runs")


def run_file(index_path: Path, run_id: str) -> Path:
    return runs_dir(index_path) / f"{run_id}.h5"


def store_kind(path: Path) -> str:
    """The `landscape_kind` attribute of a store (train or analysis), checked to be readable."""
    with open_h5(Path(path), what="store") as r:
        return str(r.attr("landscape_kind", str, default=""))


def read_index(index_path: Path) -> dict[str, Any]:
    """The index's attributes, checked: kind, schema, config (JSON text of a config this version
    reads) and planned run ids (a JSON list of run ids)."""
    path = Path(index_path)
    if not path.exists() and not path.is_symlink():
        raise StoreError(f"store {path}: no such file; run `landscape train -o {path}` first")
    with open_h5(path, what="store") as r:
        kind = r.attr("landscape_kind", str, default=None)
        if kind != KIND_TRAIN:
            raise StoreError(
                f"store {path}: expected a landscape train store (attribute landscape_kind = "
                f"{KIND_TRAIN!r}), found {kind!r}"
            )
        schema = r.attr("schema", int)
        if schema != STORE_SCHEMA:
            raise StoreError(
                f"store {path}: schema version {schema}, this landscape reads version "
                f"{STORE_SCHEMA}; use the landscape version that wrote it or re-train"
            )
        out = r.attrs()
        planned = r.json_attr("planned_runs", list)
        config_identity(r.attr("config", str), f"store {path}, attribute 'config'")
        for name in ("dataset_fingerprint", "dataset", "preset"):
            r.attr(name, str, default="")
        r.json_attr("claims", list, default=[])
    where = f"store {path}, attribute 'planned_runs'"
    out["planned_runs"] = [check_run_id(run_id, where) for run_id in planned]
    return out


def config_identity(text: str, where: str) -> dict[str, Any]:
    """`ExperimentConfig.identity()` of a stored config; StoreError when it cannot be read."""
    from landscape.config import config_from_json  # torch-free, like this module

    try:
        return config_from_json(text).identity()
    except (ConfigError, ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
        raise StoreError(
            f"{where}: expected a config this landscape version reads, found one it cannot "
            f"({str(e)[:200]})"
        ) from None


@dataclass(frozen=True)
class RunCheck:
    """What a planned run's file holds: status complete, diverged, missing or damaged."""

    run_id: str
    status: str
    problem: str | None = None  # why it is damaged
    row: dict[str, Any] | None = None  # its `run_summary` row when readable

    @property
    def readable(self) -> bool:
        """Complete or diverged: a run the analysis can use."""
        return self.status in STATUSES


def check_run(index_path: Path, run_id: str, identity: dict[str, Any] | None = None) -> RunCheck:
    """Open and check one run file, every array read (so that a checksum that fails is found
    here, and the run reported damaged, not when a measure reads it); never raises for damage."""
    path = run_file(index_path, run_id)
    if not path.exists() and not path.is_symlink():
        return RunCheck(run_id, "missing")
    try:
        with _open_run(index_path, run_id) as r:
            facts = _inspect(r, run_id, identity)
            _read_rest(r, facts)
            return RunCheck(run_id, facts["attrs"]["status"], row=_row(run_id, facts))
    except StoreError as e:
        return RunCheck(run_id, "damaged", problem=str(e))


def check_runs(index_path: Path, index: dict[str, Any]) -> dict[str, RunCheck]:
    """`check_run` of every planned run of a store whose index `read_index` returned."""
    identity = config_identity(index["config"], f"store {index_path}, attribute 'config'")
    return {r: check_run(index_path, r, identity) for r in index["planned_runs"]}


def completed_runs(index_path: Path, planned: list[str]) -> list[str]:
    """Planned run ids whose run file is complete or diverged and passes the checks."""
    index = read_index(index_path)
    identity = config_identity(index["config"], f"store {index_path}")
    return [r for r in planned if check_run(index_path, r, identity).readable]


def _open_run(index_path: Path, run_id: str) -> Any:
    check_run_id(run_id, f"store {index_path}")
    return open_h5(run_file(index_path, run_id), what="run file", inside=Path(index_path).parent)


def read_run(index_path: Path, run_id: str) -> dict[str, Any]:
    """Attributes and arrays of one run file, checked (every parameter vector finite)."""
    with _open_run(index_path, run_id) as r:
        out = _inspect(r, run_id, None)
        _read_rest(r, out)
    del out["sizes"]
    return out


def _read_rest(r: H5, out: dict[str, Any]) -> None:
    """Read into `out` (from `_inspect`) the arrays it only checked the shapes of."""
    p, pb, n = out["sizes"]
    out["checkpoints"] = {
        "step": out["checkpoints"]["step"],
        "epoch": r.array("checkpoints/epoch", "fiu", (n,)),
        "params": r.array("checkpoints/params", "f", (n, p), finite=True),
        "buffers": r.array("checkpoints/buffers", "f", (n, pb)),
    }
    out["init"]["buffers"] = r.array("init/buffers", "f", (len(out["init"]["params"]) and pb,))
    out["final"]["buffers"] = r.array("final/buffers", "f", (pb,))
    if r.has("corrupt_targets"):
        out["corrupt_targets"] = r.array("corrupt_targets", "fiu", (None,))


def _inspect(r: H5, run_id: str, identity: dict[str, Any] | None) -> dict[str, Any]:
    """Attributes, layout tables, history and init/final parameters, checked; the other
    arrays' dtypes and shapes checked without reading them."""
    attrs = _run_attrs(r, run_id, identity)
    layout, p = _layout(r, "layout")
    buffer_layout, pb = _layout(r, "buffer_layout")
    # a point imported without its initial point stores an empty one (landscape import)
    imported = bool(r.attr("imported_points", str, default=""))
    no_init = imported and r.shape("init/params", "f", 1) == (0,)
    init = r.array("init/params", "f", (0 if no_init else p,), finite=True)
    final = r.array("final/params", "f", (p,), finite=True)
    steps = r.array("checkpoints/step", "iu", (None,))
    n = len(steps)
    for name, kind, shape in (
        ("init/buffers", "f", (0 if no_init else pb,)),
        ("final/buffers", "f", (pb,)),
        ("checkpoints/epoch", "fiu", (n,)),
        ("checkpoints/params", "f", (n, p)),
        ("checkpoints/buffers", "f", (n, pb)),
    ):
        _check_shape(r, name, kind, shape)
    return {
        "attrs": attrs,
        "layout": layout,
        "buffer_layout": buffer_layout,
        "init": {"params": init},
        "final": {"params": final},
        "final_attrs": {
            "step": r.attr("step", int, "final"),
            "epoch": r.attr("epoch", float, "final"),
        },
        "checkpoints": {"step": steps},
        "history": _history(r, imported),
        "sizes": (p, pb, n),
    }


def _run_attrs(r: H5, run_id: str, identity: dict[str, Any] | None) -> dict[str, Any]:
    mode, k = run_id.rsplit("-", 1)
    r.attr("landscape_kind", str, choices=(KIND_RUN,))
    r.attr("schema", int, choices=(STORE_SCHEMA,))
    r.attr("run_id", str, choices=(run_id,))
    r.attr("mode", str, choices=(mode,))
    r.attr("index", int, choices=(int(k),))
    r.attr("seed", int)
    r.attr("status", str, choices=STATUSES)
    r.attr("diverged_step", int)
    found = config_identity(r.attr("config", str), f"run file {r.path}, attribute 'config'")
    if identity is not None and found != identity:
        raise r.error(
            "attribute 'config'",
            "the config of the store's index",
            "another config (" + "; ".join(differences(identity, found)[:3]) + ")",
        )
    return r.attrs()


def differences(
    a: dict[str, Any],
    b: dict[str, Any],
    names: tuple[str, str] = ("index", "run"),
    prefix: str = "",
) -> list[str]:
    """'key.sub: <names[0]> va, <names[1]> vb' for every leaf where two nested dicts differ."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += differences(va, vb, names, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}: {names[0]} {va!r}, {names[1]} {vb!r}")
    return out


def _layout(r: H5, group: str) -> tuple[dict[str, np.ndarray], int]:
    """The layout table and the length P of the flat vector it describes, checked: offsets
    consecutive, each shape's product its numel."""
    size = r.shape(f"{group}/name", "T", 1)[0]
    table = {k: r.array(f"{group}/{k}", kind, (size,)) for k, kind in _LAYOUT_KEYS.items()}
    numel, offset = table["numel"].astype(np.int64), table["offset"].astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(numel)[:-1]]) if size else numel
    if (numel < 0).any() or not np.array_equal(offset, starts):
        raise r.error(f"/{group}/offset", "consecutive offsets (the cumulative numel)", "others")
    for i, (shape, count) in enumerate(zip(table["shape"], numel, strict=True)):
        dims = shape.split(",") if shape else []
        if not all(d.isdigit() for d in dims) or int(np.prod([int(d) for d in dims])) != count:
            raise r.error(
                f"/{group}/shape[{i}]", f"a shape with {count} entries", f"{shape[:40]!r}"
            )
    return table, int(numel.sum())


def _check_shape(r: H5, name: str, kind: str, shape: tuple[int, ...]) -> None:
    found = r.shape(name, kind, len(shape))
    if found != shape:
        raise r.error(name, f"shape {shape}", f"shape {found}")


def _history(r: H5, imported: bool) -> dict[str, np.ndarray]:
    steps = r.array("history/step", "iu", (None,))
    if imported and len(steps) == 0:
        return {"step": steps}  # trained elsewhere: no history
    if len(steps) == 0 or (np.diff(steps) <= 0).any():
        raise r.error("/history/step", "at least one step, increasing", f"{steps[:8]}")
    out = {"step": steps}
    for key in r.keys("history"):
        if key != "step":
            out[key] = r.array(f"history/{key}", "fiu", (len(steps),)).astype(np.float64)
    if missing := [k for k in HISTORY_NEEDED if k not in out]:
        raise r.error("/history", f"arrays {', '.join(HISTORY_NEEDED)}", f"none for {missing}")
    return out


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _row(run_id: str, facts: dict[str, Any]) -> dict[str, Any]:
    """One run's row of `landscape info --json`, from what `_inspect` read."""
    a, h = facts["attrs"], facts["history"]
    step = facts["final_attrs"]["step"]
    # the history row of the final point (for a diverged run: its last finite point)
    at = min(int(np.searchsorted(h["step"], step)), len(h["step"]) - 1)
    # an imported run has no history: its final numbers are unknown (None)
    last = {k: float(v[at]) for k, v in h.items() if k != "step"} if len(h["step"]) else {}
    return {
        "id": run_id,
        "mode": a["mode"],
        "seed": a["seed"],
        "complete": True,
        "status": a["status"],
        "problem": None,
        "steps": step,
        "diverged_step": a["diverged_step"] if a["status"] == "diverged" else None,
        "epochs": _finite_or_none(facts["final_attrs"]["epoch"]),
        "final": {
            "train_acc": _finite_or_none(last.get("train_acc")),
            "train_loss": _finite_or_none(last.get("train_loss")),
            "test_acc": _finite_or_none(last.get("test_acc")),
            "test_loss": _finite_or_none(last.get("test_loss")),
            "corrupt_acc": (
                _finite_or_none(last.get("corrupt_acc")) if a["mode"] == "overfit" else None
            ),
        },
    }


def run_summary(index_path: Path, run_id: str) -> dict[str, Any]:
    """One run's row of `landscape info --json`; StoreError when its file is damaged."""
    with _open_run(index_path, run_id) as r:
        return _row(run_id, _inspect(r, run_id, None))


def read_history(index_path: Path, run_id: str) -> dict[str, Any]:
    """A run's attributes (config left out), history arrays and their units, checked."""
    with _open_run(index_path, run_id) as r:
        facts = _inspect(r, run_id, None)
        units = {k: str(r.attr("units", str, f"history/{k}", default="")) for k in facts["history"]}
    attrs = {k: v for k, v in facts["attrs"].items() if k != "config"}
    return {"attrs": attrs, "history": facts["history"], "units": units}


def store_info(index_path: Path) -> dict[str, Any]:
    """`landscape info --json`: every planned run, complete, diverged, missing or damaged."""
    index = read_index(index_path)
    seed0 = config_identity(index["config"], f"store {index_path}")["train"]["seed"]
    runs = []
    for run_id, check in check_runs(index_path, index).items():
        if check.row is not None:
            runs.append(check.row)
            continue
        mode, k = run_id.rsplit("-", 1)
        runs.append(
            {
                "id": run_id,
                "mode": mode,
                "seed": seed0 + int(k),
                "complete": False,
                "status": check.status,
                "problem": check.problem,
                "steps": None,
                "epochs": None,
                "final": None,
            }
        )
    return {"runs": runs}


def damaged_runs(index_path: Path) -> dict[str, str]:
    """{run id: problem} of the planned runs whose file is damaged."""
    index = read_index(index_path)
    return {r: c.problem or "" for r, c in check_runs(index_path, index).items() if c.problem}


__all__ = [
    "RunCheck",
    "check_run",
    "check_runs",
    "completed_runs",
    "damaged_runs",
    "read_history",
    "read_index",
    "read_run",
    "run_summary",
    "runs_dir",
    "store_info",
    "store_kind",
]
