"""Where an imported point's model and data come from, recorded so analysis can rebuild both.

A model is a built-in architecture (`landscape.models`) or the user's own factory named by an
import path `module:function`, found the way `python -m` finds code: the current directory
goes first on `sys.path` while the module is imported (and only then). Data is a built-in
dataset, an array file (`.npz` read with `allow_pickle=False`, or `.h5`) holding `x_train,
y_train, x_test, y_test`, or a function `module:function` returning those four.

A train store of imported points keeps an `ImportRecord` (JSON, index attribute `imported`):
the factory, its keyword arguments and the folder it was imported from, and the data source,
so `landscape analyze` (here or on a Dask worker sharing the filesystem) imports the same code
and reads the same arrays; the dataset fingerprint and the parameter layout are checked again.
Analyzing such a store therefore runs the code it names: trust it as you would that code.

>>> parse_model_args(["width=64", "dropout=0.1", "bias=true", "name=wide"])
{'width': 64, 'dropout': 0.1, 'bias': True, 'name': 'wide'}
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from landscape.config import DataConfig, ExperimentConfig, parse_assignment
from landscape.config_checks import CHOICES
from landscape.data import Dataset, load_dataset
from landscape.data.base import apply_subsets
from landscape.errors import ConfigError, DataError, LandscapeError, ModelError
from landscape.importer.arrays import arrays_dataset, read_arrays_file
from landscape.models import build_model

BUILTIN_MODELS = CHOICES["model.name"]  # ours and the authors' (lenet-paper, resnet-paper)


def parse_model_args(items: Sequence[str]) -> dict[str, Any]:
    """`KEY=VALUE` strings as keyword arguments: ints, floats, booleans (true/True), TOML lists,
    and anything else as a string."""
    out: dict[str, Any] = {}
    for text in items:
        key, sep, raw = (t.strip() for t in text.partition("="))
        if not sep or not key.isidentifier():
            raise ConfigError(
                f"--model-arg {text!r}: expected KEY=VALUE with KEY a Python name, e.g. width=64"
            )
        if key in out:
            raise ConfigError(f"--model-arg {key!r} given twice; give each key once")
        value = parse_assignment(f"a.v={raw}")["a"]["v"]
        out[key] = (
            {"True": True, "False": False}.get(value, value) if isinstance(value, str) else value
        )
    return out


@contextlib.contextmanager
def _on_sys_path(folders: Sequence[str]) -> Iterator[None]:
    added = [f for f in dict.fromkeys(folders) if f not in sys.path]
    sys.path[:0] = added
    importlib.invalidate_caches()  # a module written after start-up must be found
    try:
        yield
    finally:
        for f in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(f)


def resolve(
    path: str, *, what: str, folders: Sequence[str], error: type[LandscapeError]
) -> Callable[..., Any]:
    """The callable named by `module:attr` (attr may be dotted), imported with `folders` first
    on sys.path. Raises ConfigError for a malformed path, `error` for one that does not resolve.
    """
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ConfigError(
            f"{what} {path!r}: expected an import path module:function, e.g. mypkg.nets:make_net"
        )
    folders = list(dict.fromkeys(folders))
    with _on_sys_path(folders):
        module = _import(module_name, path, what, folders, error)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = _own_callables(module)
            raise error(
                f"{what} {path!r}: module {module_name} ({getattr(module, '__file__', '?')}) has "
                f"no attribute {attr!r}; its callables: {', '.join(names) or 'none'}; fix the name"
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise error(f"{what} {path!r}: expected a callable, found {type(obj).__name__}")
    return obj


def _own_callables(module: Any) -> list[str]:
    """Public callables defined in `module` itself (not the ones it imports)."""
    return sorted(
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and callable(v) and getattr(v, "__module__", "") == module.__name__
    )


def _import(
    name: str, path: str, what: str, folders: Sequence[str], error: type[LandscapeError]
) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and (name == e.name or name.startswith(e.name + ".")):
            raise error(
                f"{what} {path!r}: no module named {e.name!r} in {', '.join(folders)} or the "
                "installed packages; expected a module importable like `python -m` does; fix: "
                f"run from the folder that holds {name.split('.')[0]}, or check the spelling"
            ) from None
        raise error(
            f"{what} {path!r}: importing {name} failed: it needs module {e.name!r}, which is "
            "not installed; install it"
        ) from None
    except Exception as e:  # the user's module ran and raised: say what, never a traceback
        raise error(
            f"{what} {path!r}: importing {name} raised {type(e).__name__}: {e}; fix the module "
            f"so that `python -c 'import {name}'` works from {folders[0]}"
        ) from None


# -- the model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSource:
    """A user's factory `module:function`, called with `kwargs`, found from `folder`."""

    factory: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    folder: str = ""  # absolute: the current directory at import time

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{self.factory}({args})"

    def build(self) -> nn.Module:
        """A fresh float32 module from the factory; its own random draws are seeded (0) and the
        caller's global RNG is left untouched."""
        folders = [f for f in (self.folder, str(Path.cwd())) if f]
        fn = resolve(self.factory, what="--model", folders=folders, error=ModelError)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            try:
                module = fn(**self.kwargs)
            except Exception as e:  # the user's code: report it as input, not as a crash
                raise ModelError(
                    f"--model {self.describe()}: the factory raised {type(e).__name__}: {e}; "
                    "fix the factory or the --model-arg values"
                ) from None
        if not isinstance(module, nn.Module):
            raise ModelError(
                f"--model {self.describe()}: expected the factory to return a torch.nn.Module, "
                f"found {type(module).__name__}; return the network itself"
            )
        return module.float()


# -- the data ------------------------------------------------------------------------------


def data_kind(text: str) -> str:
    """'file' for an .npz/.h5 path, 'function' for module:function."""
    if text.endswith((".npz", ".h5", ".hdf5")):
        return "file"
    if ":" in text and not Path(text).exists():
        return "function"
    raise ConfigError(
        f"--data {text!r}: expected an array file (.npz or .h5) or an import path "
        "module:function returning x_train, y_train, x_test, y_test"
    )


@dataclass(frozen=True)
class DataSource:
    """A built-in dataset (kind 'dataset', the config's [data]), an array file or a function."""

    kind: str  # dataset | file | function
    ref: str = ""  # file: absolute path; function: module:function
    task: str = "auto"  # auto | classification | regression
    folder: str = ""  # function: the current directory at import time

    def describe(self, cfg: DataConfig) -> str:
        return cfg.name if self.kind == "dataset" else self.ref

    def load(self, cfg: DataConfig, *, data_dir: Path | None, offline: bool) -> Dataset:
        """The dataset, subsets applied as `cfg` says (the same call at import and analysis)."""
        if self.kind == "dataset":
            ds = load_dataset(cfg, data_dir=data_dir, offline=offline)
            if self.task not in ("auto", ds.task):
                raise ConfigError(
                    f"--task {self.task}: dataset {cfg.name} is a {ds.task} task; drop --task"
                )
            return ds
        arrays = read_arrays_file(Path(self.ref)) if self.kind == "file" else self._call()
        ds = arrays_dataset(arrays, name=self.ref, task=self.task, source=self.ref)
        return apply_subsets(ds, cfg.subset, cfg.test_subset, seed=cfg.seed)

    def _call(self) -> Any:
        folders = [f for f in (self.folder, str(Path.cwd())) if f]
        fn = resolve(self.ref, what="--data", folders=folders, error=DataError)
        try:
            return fn()
        except Exception as e:  # the user's code
            raise DataError(
                f"--data {self.ref}: the function raised {type(e).__name__}: {e}; fix it so that "
                "it returns x_train, y_train, x_test, y_test"
            ) from None


# -- what a store records ------------------------------------------------------------------


@dataclass(frozen=True)
class ImportRecord:
    """How an imported store's model and data are rebuilt; `model` None: a built-in one."""

    data: DataSource
    model: ModelSource | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ImportRecord:
        d = json.loads(text)
        model = ModelSource(**d["model"]) if d.get("model") else None
        return cls(data=DataSource(**d["data"]), model=model)

    def dataset(self, cfg: DataConfig, *, data_dir: Path | None, offline: bool) -> Dataset:
        return self.data.load(cfg, data_dir=data_dir, offline=offline)

    def template(self, cfg: ExperimentConfig, ds: Dataset) -> nn.Module:
        """A fresh module of the imported architecture (its own parameters are never used)."""
        if self.model is None:
            return build_model(cfg.model, input_shape=ds.input_shape, n_outputs=ds.n_outputs)
        return self.model.build()

    def model_name(self, cfg: ExperimentConfig) -> str:
        return cfg.model.name if self.model is None else self.model.describe()


def stored_record(index: dict[str, Any]) -> ImportRecord | None:
    """The ImportRecord of a train store's index; None for a store `landscape train` wrote."""
    raw = index.get("imported")
    return ImportRecord.from_json(raw) if raw else None
