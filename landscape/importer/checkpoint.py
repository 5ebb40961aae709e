"""`landscape import` as a library call: points trained elsewhere become a run of a train store.

The final weights (and optionally the initial point and checkpoints) are read from safetensors
files, checked against the model, and written as one run labelled e.g. `normal`, `overfit` or
any name, with no training history. The store records how to rebuild the model and the data
(`landscape.importer.sources.ImportRecord`), so `landscape analyze`, the report and the Dask
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
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from landscape._version import __version__
from landscape.config import ExperimentConfig, from_dict
from landscape.core.flat import FlatModel
from landscape.core.layout import Layout
from landscape.data import Dataset
from landscape.errors import ConfigError, ModelError
from landscape.importer.arrays import TASKS
from landscape.importer.index import check_same, existing_index, next_run_id, run_record, write
from landscape.importer.sources import (
    BUILTIN_MODELS,
    DataSource,
    ImportRecord,
    ModelSource,
    data_kind,
)
from landscape.importer.weights import Point, read_point

LABEL = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # run ids are <label>-<k>: no '-' or '.' inside


@dataclass(frozen=True)
class ImportRequest:
    """What to import: the weights, the model they belong to, the data to measure them on."""

    weights: Path  # the point to measure (safetensors)
    model: str = "mlp"  # a built-in architecture (BUILTIN_MODELS) or module:factory
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
    index = existing_index(out, append)
    record, cfg, ds = _sources(request, data_dir=data_dir, offline=offline)
    template = record.template(cfg, ds)
    if index is not None:
        cfg = check_same(out, index, record, cfg, ds, template)
    points = _read_points(request, template)
    _check_forward(template, points[-1][1], ds, record.model_name(cfg))
    run_id = next_run_id(index, request.label)
    # steps unknown without --step: the final point is 1 step after init (0 without one)
    final_step = request.step if request.step is not None else int(request.init is not None)
    steps = [*sorted(request.checkpoints), final_step]
    rec = run_record(
        run_id, cfg, template, points, steps, ds, record, step_given=request.step is not None
    )
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
    path = write(out, rec, cfg, planned, attrs)
    notes = _notes(template, points)
    labels = [name for name, _ in points]
    return ImportResult(run_id, path, int(rec.final_params.size), labels, notes)


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
