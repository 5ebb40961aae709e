"""A user's own arrays as a `Dataset`: read from .npz/.h5 (never unpickled), checked, typed.

The four arrays are `x_train, y_train, x_test, y_test`. Inputs are used as given, cast to
float32 (no scaling). Integer (or boolean) targets make a classification task with
`max label + 1` classes; floating targets a regression task ((n,) becomes (n, 1)); `task`
overrides the inference.

>>> import numpy as np
>>> x = np.zeros((4, 3))
>>> ds = arrays_dataset({"x_train": x, "y_train": np.array([0, 1, 2, 1]), "x_test": x[:2],
...                      "y_test": np.array([1, 0])}, name="toy", task="auto", source="-")
>>> ds.task, ds.n_outputs, ds.x_train.dtype
('classification', 3, dtype('float32'))
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from landscape.data.base import Dataset
from landscape.errors import ConfigError, DataError

KEYS = ("x_train", "y_train", "x_test", "y_test")
TASKS = ("auto", "classification", "regression")


def read_arrays_file(path: Path) -> dict[str, np.ndarray]:
    """The four arrays of an .npz (allow_pickle=False) or .h5 file (datasets at the root)."""
    if not path.is_file():
        raise DataError(f"--data {path}: no such file; expected an .npz or .h5 file with {KEYS}")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                return _pick(path, {k: f[k] for k in f.files if k in KEYS}, list(f.files))
        with h5py.File(path, "r") as f:
            found = list(f.keys())
            arrays = {k: f[k][()] for k in KEYS if isinstance(f.get(k), h5py.Dataset)}
            return _pick(path, arrays, found)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        # ValueError: an object array, which would need pickle to read
        raise DataError(
            f"--data {path}: not a readable {path.suffix} file of plain numeric arrays ({e}); "
            "save it with np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)"
        ) from None


def _pick(path: Path, arrays: dict[str, np.ndarray], found: list[str]) -> dict[str, np.ndarray]:
    missing = [k for k in KEYS if k not in arrays]
    if missing:
        raise DataError(
            f"--data {path}: expected arrays {', '.join(KEYS)}; missing {', '.join(missing)}; "
            f"found {', '.join(found) or 'none'}; rename them when saving"
        )
    return arrays


def _numpy(where: str, key: str, value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, without importing torch here
        value = value.detach().cpu().numpy()
    a = np.asarray(value)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise DataError(f"{where}: {key} must be a numeric array, found dtype {a.dtype}")
    return a


def as_arrays(where: str, value: Any) -> dict[str, np.ndarray]:
    """A mapping with the four keys, or a sequence of four arrays in KEYS order."""
    if isinstance(value, Mapping):
        missing = [k for k in KEYS if k not in value]
        if missing:
            raise DataError(
                f"{where}: expected keys {', '.join(KEYS)}; missing {', '.join(missing)}; "
                f"found {', '.join(map(str, value)) or 'none'}"
            )
        items = [value[k] for k in KEYS]
    elif isinstance(value, list | tuple) and len(value) == 4:
        items = list(value)
    else:
        raise DataError(
            f"{where}: expected (x_train, y_train, x_test, y_test) or a dict with those keys, "
            f"found {type(value).__name__}"
        )
    return {k: _numpy(where, k, v) for k, v in zip(KEYS, items, strict=True)}


def infer_task(y_train: np.ndarray, y_test: np.ndarray, task: str) -> str:
    """classification for integer or boolean targets, regression for floating ones."""
    if task not in TASKS:
        raise ConfigError(f"--task {task!r}: unknown; allowed: {', '.join(TASKS)}")
    if task != "auto":
        return task
    integral = all(np.issubdtype(y.dtype, np.integer) or y.dtype == bool for y in (y_train, y_test))
    return "classification" if integral else "regression"


def arrays_dataset(value: Any, *, name: str, task: str, source: str) -> Dataset:
    """A checked `Dataset` from the four arrays (see the module docstring for the typing)."""
    where = f"--data {name}"
    a = as_arrays(where, value)
    _check_lengths(where, a)
    task = infer_task(a["y_train"], a["y_test"], task)
    if task == "classification":
        y_train, y_test = (_labels(where, k, a[k]) for k in ("y_train", "y_test"))
        n_outputs = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
        names = tuple(str(c) for c in range(n_outputs))
    else:
        y_train, y_test = (_targets(where, k, a[k]) for k in ("y_train", "y_test"))
        n_outputs, names = y_train.shape[1], ()
        if y_test.shape[1] != n_outputs:
            raise DataError(
                f"{where}: y_train has {n_outputs} target column(s), y_test {y_test.shape[1]}"
            )
    x_train, x_test = (a[k].astype(np.float32) for k in ("x_train", "x_test"))
    title = Path(name).name if "/" in name else name
    return Dataset(name, title, task, x_train, y_train, x_test, y_test, n_outputs, names, source)


def _check_lengths(where: str, a: dict[str, np.ndarray]) -> None:
    for split in ("train", "test"):
        x, y = a[f"x_{split}"], a[f"y_{split}"]
        if x.ndim < 2 or len(x) == 0 or len(x) != len(y):
            raise DataError(
                f"{where}: expected x_{split} (n, ...) with n >= 1 rows and y_{split} with the "
                f"same n; found x_{split} {x.shape} and y_{split} {y.shape}; one target per input"
            )
        if not np.isfinite(x).all():
            raise DataError(f"{where}: x_{split} holds NaN or inf values; clean the inputs")
    if a["x_train"].shape[1:] != a["x_test"].shape[1:]:
        raise DataError(
            f"{where}: train and test inputs differ in shape: {a['x_train'].shape[1:]} vs "
            f"{a['x_test'].shape[1:]}; both splits must have one input shape"
        )


def _labels(where: str, key: str, y: np.ndarray) -> np.ndarray:
    """Class indices (n,) int64; (n, 1) is squeezed; float labels must be whole numbers."""
    y = y.reshape(len(y)) if y.ndim == 2 and y.shape[1] == 1 else y
    whole = np.issubdtype(y.dtype, np.integer) or y.dtype == bool or bool(np.all(np.mod(y, 1) == 0))
    if y.ndim != 1 or not whole or (y.size and y.min() < 0):
        raise DataError(
            f"{where}: classification needs {key} as class indices 0..C-1 of shape (n,), found "
            f"{y.dtype} {y.shape}"
            + (f" with minimum {y.min()}" if y.size else "")
            + "; pass --task regression for real-valued targets"
        )
    return y.astype(np.int64)


def _targets(where: str, key: str, y: np.ndarray) -> np.ndarray:
    """Regression targets (n, k) float32; (n,) becomes (n, 1)."""
    y = y.astype(np.float32)
    if not np.isfinite(y).all():
        raise DataError(f"{where}: {key} holds NaN or inf values; clean the targets")
    return y.reshape(len(y), -1)
