"""`landscape import` as a library call: points trained elsewhere become a run of a train store.

The final weights (and optionally the initial point and checkpoints) are read from safetensors
files, checked against the model, and written as one run labelled e.g. `normal`, `overfit` or
any name, with no training history. The store records how to rebuild the model and the data
(`landscape.import_sources.ImportRecord`), so `landscape analyze`, the report and the Dask
executor treat it like any train store; measures that need what an import lacks (an initial
point, checkpoints) are skipped with the reason.

Everything is checked before anything is written; a failure leaves no file behind, and an
existing store is never overwritten (`append=True` adds a run to a store of imported points
with the same model and data).

Example::

    request = ImportRequest(weights=Path("final.safetensors"), model="mypkg.nets:make_resnet",
                            model_args={"width": 64}, dataset="cifar10", label="overfit")
    result = import_checkpoint(request, Path("runs/mine.h5"), data_dir=Path("data"))
    result.run_id  # 'overfit-000'
"""

from __future__ import annotations

import dataclasses
import json
import platform
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import nn

from landscape import store
from landscape._version import __version__
from landscape.config import ExperimentConfig, from_dict
from landscape.data import Dataset
from landscape.errors import ConfigError, ModelError, StoreError
from landscape.flat import FlatModel
from landscape.import_arrays import TASKS
from landscape.import_sources import (
    BUILTIN_MODELS,
    DataSource,
    ImportRecord,
    ModelSource,
    data_kind,
    stored_record,
)
from landscape.params import Layout
from landscape.train import loss_units
from landscape.weights import Point, read_point

LABEL = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # run ids are <label>-<k>: no '-' or '.' inside


@dataclass(frozen=True)
class ImportRequest:
    """What to import: the weights, the model they belong to, the data to measure them on."""

    weights: Path  # the point to measure (safetensors)
    model: str = "mlp"  # a built-in architecture (mlp, lenet, resnet) or module:factory
    model_args: dict[str, Any] = field(default_factory=dict)  # factory kwargs / model.* keys
    init: Path | None = None  # the initial point, for distances from init
    checkpoints: dict[int, Path] = field(default_factory=dict)  # step -> file, along the path
    step: int | None = None  # optimizer steps at `weights`; needed with checkpoints
    dataset: str | None = None  # a built-in dataset ...
    data: str | None = None  # ... or an .npz/.h5 file or module:function
    subset: int | None = None  # keep this many training rows (stratified, seed 0)
    test_subset: int | None = None
    task: str = "auto"  # auto: integer targets classify, floating ones regress
    label: str = "normal"  # the run's mode: normal, overfit or any name

    def check(self) -> None:
        """ConfigError for a combination no file needs to be read to refuse."""
        if not LABEL.fullmatch(self.label):
            raise ConfigError(
                f"--label {self.label!r}: expected letters, digits and _ starting with a "
                "letter (e.g. normal, overfit, sam_0); it names the runs <label>-000, ..."
            )
        if (self.dataset is None) == (self.data is None):
            raise ConfigError(
                "import: expected exactly one of --dataset NAME (built-in) and --data FILE|"
                "module:function; give one"
            )
        if self.task not in TASKS:
            raise ConfigError(f"--task {self.task!r}: unknown; allowed: {', '.join(TASKS)}")
        if self.checkpoints and self.step is None:
            raise ConfigError(
                "--checkpoint needs --step: the optimizer steps at --weights, so the checkpoints "
                "can be placed before it"
            )
        late = [s for s in self.checkpoints if s < 0 or (self.step is not None and s >= self.step)]
        if late or (self.step is not None and self.step < 0):
            raise ConfigError(
                f"--checkpoint steps must lie in [0, --step {self.step}), found {sorted(late)}; "
                "the final weights are the last point of the path"
            )

    def command(self, out: Path, *, append: bool = False) -> str:
        """The `landscape import` line that makes this import (shown in the report)."""
        parts = ["landscape", "import", "--model", self.model]
        for key, value in self.model_args.items():
            parts += ["--model-arg", f"{key}={_arg_text(value)}"]
        parts += ["--weights", str(self.weights)]
        if self.init is not None:
            parts += ["--init", str(self.init)]
        for step, path in sorted(self.checkpoints.items()):
            parts += ["--checkpoint", f"{step}={path}"]
        optional = {
            "--step": self.step,
            "--dataset": self.dataset,
            "--data": self.data,
            "--subset": self.subset,
            "--test-subset": self.test_subset,
        }
        parts += [p for flag, v in optional.items() if v is not None for p in (flag, str(v))]
        parts += ["--task", self.task] if self.task != "auto" else []
        parts += ["--label", self.label, "-o", str(out)] + (["--append"] if append else [])
        return shlex.join(parts)


def _arg_text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool | list | tuple) else str(value)


@dataclass(frozen=True)
class ImportResult:
    run_id: str  # e.g. overfit-000
    run_path: Path  # its run file
    n_params: int
    points: list[str]  # "init", "checkpoint 1000", "final" in path order
    notes: list[str]  # e.g. which BatchNorm statistics the files lacked


def import_checkpoint(
    request: ImportRequest,
    out: Path,
    *,
    data_dir: Path | None = None,
    offline: bool = False,
    append: bool = False,
) -> ImportResult:
    """Check everything, then write the imported point as one run of the train store `out`.

    Raises ConfigError (bad options), ModelError (a factory or weights file that cannot be
    loaded or does not match), DataError (data that cannot be read) or StoreError (`out`
    exists without `append`, or holds other points); nothing is written then.
    """
    request.check()
    out = Path(out)
    index = _existing(out, append)
    record, cfg, ds = _sources(request, data_dir=data_dir, offline=offline)
    template = record.template(cfg, ds)
    if index is not None:
        cfg = _check_same(out, index, record, cfg, ds, template)
    points = _read_points(request, template)
    _check_forward(template, points[-1][1], ds, record.model_name(cfg))
    run_id = _next_run_id(index, request.label)
    rec = _run_record(run_id, request, cfg, template, points, ds, record)
    commands = json.loads(index.get("import_commands", "[]")) if index else []
    attrs = {
        "dataset": ds.name,
        "dataset_title": ds.title,
        "dataset_fingerprint": ds.fingerprint,
        "landscape_version": __version__,
        "imported": record.to_json(),
        "import_commands": json.dumps([*commands, request.command(out, append=append)]),
    }
    planned = [*(index["planned_runs"] if index else []), run_id]
    path = _write(out, rec, cfg, planned, attrs)
    notes = _notes(template, points)
    labels = [name for name, _ in points]
    return ImportResult(run_id, path, int(rec.final_params.size), labels, notes)


def _existing(out: Path, append: bool) -> dict[str, Any] | None:
    """The index of the store to append to; None for a new store."""
    if out.exists() and not append:
        raise StoreError(
            f"output {out}: exists; landscape import never overwrites a store: choose a new "
            "-o path, or pass --append to add this point to it as another run"
        )
    if not out.exists():
        return None
    index = store.read_index(out)
    if not index.get("imported"):
        raise StoreError(
            f"output {out}: a store written by `landscape train`; imported points go to a store "
            "of their own: choose a new -o path"
        )
    return index


def _sources(
    request: ImportRequest, *, data_dir: Path | None, offline: bool
) -> tuple[ImportRecord, ExperimentConfig, Dataset]:
    """The record, the config (data, built-in model, loss) and the dataset of the import."""
    builtin = request.model in BUILTIN_MODELS
    if not builtin and ":" not in request.model:
        raise ConfigError(
            f"--model {request.model!r}: expected a built-in architecture "
            f"({', '.join(BUILTIN_MODELS)}) or an import path module:factory"
        )
    cwd = str(Path.cwd())
    model = None if builtin else ModelSource(request.model, dict(request.model_args), cwd)
    data = DataSource("dataset", task=request.task)
    if request.data is not None:
        kind = data_kind(request.data)
        ref = str(Path(request.data).resolve()) if kind == "file" else request.data
        data = DataSource(kind, ref, request.task, cwd if kind == "function" else "")
    section: dict[str, Any] = {"subset": request.subset, "test_subset": request.test_subset}
    section |= {"name": request.dataset} if request.dataset else {}
    args = _builtin_args(request) if builtin else {}
    ds = data.load(
        _config(section, args, request.label, "auto").data, data_dir=data_dir, offline=offline
    )
    record = ImportRecord(dataclasses.replace(data, task=ds.task), model)  # the task resolved
    loss = "cross_entropy" if ds.task == "classification" else "mse"
    return record, _config(section, args, request.label, loss), ds


def _builtin_args(request: ImportRequest) -> dict[str, Any]:
    args = {"name": request.model, **request.model_args}
    widths = args.get("widths")
    if isinstance(widths, int):
        args["widths"] = [widths]
    elif isinstance(widths, str):  # --model-arg widths=64,32
        args["widths"] = [int(w) for w in widths.split(",") if w.strip().isdigit()]
    return args


def _config(data: dict, model: dict, label: str, loss: str) -> ExperimentConfig:
    """The store's config: the data and built-in model sections are real; the rest (optimizer,
    epochs) describes no training and keeps its defaults."""
    mode = label if label in ("normal", "overfit") else "both"
    return from_dict(
        {"data": data, "model": model, "train": {"runs": 1, "mode": mode, "loss": loss}}
    )


def _check_same(
    out: Path,
    index: dict[str, Any],
    record: ImportRecord,
    cfg: ExperimentConfig,
    ds: Dataset,
    template: nn.Module,
) -> ExperimentConfig:
    """Appending: the same model, arguments, data and parameter layout as the stored runs."""
    stored_cfg, now = json.loads(index["config"]), json.loads(cfg.to_json())  # tuples as lists
    stored = stored_record(index)
    ours = {
        "imported": json.loads(record.to_json()),
        "data": now["data"],
        "model": now["model"],
        "dataset_fingerprint": ds.fingerprint,
    }
    theirs = {
        "imported": json.loads(stored.to_json()) if stored else None,
        "data": stored_cfg["data"],
        "model": stored_cfg["model"],
        "dataset_fingerprint": index.get("dataset_fingerprint"),
    }
    diffs = [f"{k}: stored {theirs[k]!r}, now {ours[k]!r}" for k in ours if ours[k] != theirs[k]]
    stored_layout = Layout.from_arrays(store.read_run(out, index["planned_runs"][0])["layout"])
    if not diffs and stored_layout != Layout.of_parameters(template):
        diffs.append("the parameter layout of the model differs from the stored runs'")
    if diffs:
        raise StoreError(
            f"output {out}: holds points of another model or data ({'; '.join(diffs)}); "
            "--append needs the same --model, --model-arg and data: choose a new -o path"
        )
    return from_dict(stored_cfg)


def _read_points(request: ImportRequest, template: nn.Module) -> list[tuple[str, Point]]:
    """(name, Point) in path order: init, checkpoints by step, final."""
    points = []
    if request.init is not None:
        points.append(("init", read_point(request.init, template, what="--init")))
    for step, path in sorted(request.checkpoints.items()):
        what = f"--checkpoint {step}"
        points.append((f"checkpoint {step}", read_point(path, template, what=what)))
    points.append(("final", read_point(request.weights, template, what="--weights")))
    return points


def _check_forward(template: nn.Module, point: Point, ds: Dataset, name: str) -> None:
    """The model runs on two training inputs at the imported weights and its outputs fit the
    targets: (batch, classes >= labels) for classification, (batch, target columns) else."""
    buffers = torch.from_numpy(point.buffers) if point.buffers.size else None
    x = torch.from_numpy(ds.x_train[:2])
    try:
        with torch.no_grad():
            out = FlatModel(template, buffers).forward(torch.from_numpy(point.params), x)
    except Exception as e:  # the user's forward pass
        raise ModelError(
            f"--model {name}: its forward pass on 2 training inputs of shape {tuple(x.shape)} "
            f"raised {type(e).__name__}: {e}; the data's inputs must be what the model expects"
        ) from None
    classes = ds.task == "classification"
    width_ok = out.ndim == 2 and (
        out.shape[1] >= max(ds.n_outputs, 2) if classes else out.shape[1] == ds.n_outputs
    )
    if out.ndim != 2 or len(out) != len(x) or not width_ok:
        wanted = f">= {max(ds.n_outputs, 2)} class scores" if classes else f"{ds.n_outputs} values"
        raise ModelError(
            f"--model {name}: expected outputs (batch, {wanted}) per input for the {ds.task} "
            f"targets of {ds.title}, found shape {tuple(out.shape)}; the model's last layer must "
            "match the data (or pass --task)"
        )
    if not bool(torch.isfinite(out).all()):
        raise ModelError(
            f"--model {name}: outputs NaN or inf at the imported weights on the first training "
            "inputs; check that the data is preprocessed as in training"
        )


def _next_run_id(index: dict[str, Any] | None, label: str) -> str:
    taken = [r for r in (index or {}).get("planned_runs", []) if r.rsplit("-", 1)[0] == label]
    return f"{label}-{len(taken):03d}"


def _run_record(
    run_id: str,
    request: ImportRequest,
    cfg: ExperimentConfig,
    template: nn.Module,
    points: list[tuple[str, Point]],
    ds: Dataset,
    record: ImportRecord,
) -> store.RunRecord:
    init = points[0][1] if points[0][0] == "init" else None
    path = [p for name, p in points if name != "init"]  # checkpoints, then the final point
    final_step = request.step if request.step is not None else int(init is not None)
    steps = [*sorted(request.checkpoints), final_step]
    empty = np.zeros(0, dtype=np.float32)
    return store.RunRecord(
        run_id=run_id,
        mode=request.label,
        index=int(run_id.rsplit("-", 1)[1]),
        seed=-1,  # not known: the point was trained elsewhere
        status="complete",
        diverged_step=-1,
        config_json=cfg.to_json(),
        layout=Layout.of_parameters(template).to_arrays(),
        buffer_layout=Layout.of_buffers(template).to_arrays(),
        init_params=init.params if init else empty,
        init_buffers=init.buffers if init else empty,
        checkpoint_steps=np.array(steps, dtype=np.int64),
        checkpoint_epochs=np.full(len(steps), np.nan),
        checkpoint_params=np.stack([p.params for p in path]),
        checkpoint_buffers=np.stack([p.buffers for p in path]),
        final_step=final_step,
        final_epoch=float("nan"),  # unknown
        final_params=path[-1].params,
        final_buffers=path[-1].buffers,
        history={"step": np.zeros(0, dtype=np.int64)},  # none: trained elsewhere
        corrupt_targets=None,
        attrs=_run_attrs(request, cfg, ds, record, points, path[-1].params.size),
    )


def _run_attrs(
    request: ImportRequest,
    cfg: ExperimentConfig,
    ds: Dataset,
    record: ImportRecord,
    points: list[tuple[str, Point]],
    n_params: int,
) -> dict[str, Any]:
    sources = {
        name: {"file": p.file, "sha256": p.sha256, "buffers_from_file": p.buffers_from_file}
        for name, p in points
    }
    return {
        "dataset": ds.name,
        "dataset_title": ds.title,
        "dataset_fingerprint": ds.fingerprint,
        "dataset_source": ds.source,
        "task": ds.task,
        "loss": cfg.train.loss,
        "n_train_clean": len(ds.x_train),
        "n_train": len(ds.x_train),
        "n_test": len(ds.x_test),
        "copies": 0,
        "n_params": n_params,
        "model": record.model_name(cfg),
        "imported_points": json.dumps(sources),
        "final_step_given": request.step is not None,
        "landscape_version": __version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "h5py_version": h5py.__version__,
        "python_version": platform.python_version(),
    }


def _write(
    out: Path, rec: store.RunRecord, cfg: ExperimentConfig, planned: list[str], attrs: dict
) -> Path:
    """The run file, then the index, each atomically; on any failure neither is left behind."""
    path = store.run_file(out, rec.run_id)
    if path.exists():
        raise StoreError(
            f"output {out}: its run folder already holds {path.name} (left by an earlier "
            f"import?); remove {store.runs_dir(out)} or choose a new -o path"
        )
    created = not store.runs_dir(out).exists()
    try:
        store.write_run(out, rec, loss_units=loss_units(cfg.train.loss))
        store.write_index(out, config_json=cfg.to_json(), planned=planned, attrs=attrs)
    except BaseException:
        path.unlink(missing_ok=True)
        if created:
            shutil.rmtree(store.runs_dir(out), ignore_errors=True)
        raise
    return path


def _notes(template: nn.Module, points: list[tuple[str, Point]]) -> list[str]:
    wanted = Layout.of_buffers(template).names
    notes = []
    for name, p in points:
        lacking = [b for b in wanted if b not in p.buffers_from_file]
        if lacking:
            notes.append(
                f"{name}: the file has no {', '.join(lacking)}: the module's initial values are "
                "stored (analysis recalibrates BatchNorm statistics by default: --bn)"
            )
    return notes
