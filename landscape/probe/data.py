"""A probe's data: a pair of tensors, or batches streamed from a DataLoader, as an `Objective`.

`as_source(data)` checks what the caller passed and returns a `TensorData` (x, y held in
memory, chunked by `Objective` to fit its budget) or a `BatchData` (any re-iterable of (x, y)
batches, e.g. a `DataLoader`, for data that does not fit in memory). Both become the same
`Objective` the measures of `landscape analyze` evaluate, so every measure averages over the
batches exactly as over one full batch: each batch weighted by its size.

>>> x, y = torch.zeros(6, 2), torch.tensor([0, 1, 0, 1, 0, 1])
>>> as_source((x, y), loss="cross_entropy").n
6
>>> as_source([(x[:4], y[:4]), (x[4:], y[4:])], loss="cross_entropy").n
6
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch

from landscape.core.flat import FlatModel
from landscape.core.objective import Objective
from landscape.errors import ConfigError, DataError

Batch = tuple[torch.Tensor, torch.Tensor]


class TensorData:
    """x (N, ...) and y (N, ...) in memory, on the probe's device (never modified)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    @property
    def n(self) -> int:
        return len(self.x)

    def first(self) -> Batch:
        return self.x[:2], self.y[:2]

    def to(self, device: torch.device) -> TensorData:
        return TensorData(self.x.to(device), self.y.to(device))

    def calibration(self, n: int) -> torch.Tensor:
        """`n` inputs at evenly spaced indices (as `Experiment.calibration_inputs`)."""
        idx = torch.linspace(0, self.n - 1, min(n, self.n)).round().long().unique()
        return self.x[idx.to(self.x.device)]

    def objective(self, model: FlatModel, **kwargs: Any) -> Objective:
        return Objective(model, self.x, self.y, **kwargs)


class BatchData:
    """Batches (x_b, y_b) from a re-iterable source, moved to `device` one at a time."""

    def __init__(
        self, batches: Iterable[Any], n: int, device: torch.device | None = None, where: str = ""
    ):
        self.batches, self._n, self.device, self.where = batches, n, device, where or "data"

    @property
    def n(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[Batch]:
        for i, batch in enumerate(self.batches):
            x, y = _pair(batch, i, self.where)
            yield x.to(self.device or x.device), _labels(y).to(self.device or y.device)

    def first(self) -> Batch:
        return next(iter(self))

    def to(self, device: torch.device) -> BatchData:
        return BatchData(self.batches, self._n, device, self.where)

    def calibration(self, n: int) -> torch.Tensor:
        """The first `n` inputs in the source's order (a shuffled loader would change them)."""
        parts, have = [], 0
        for x, _ in self:
            parts.append(x[: n - have])
            have += len(parts[-1])
            if have >= n:
                break
        return torch.cat(parts)

    def objective(self, model: FlatModel, **kwargs: Any) -> Objective:
        return StreamObjective(model, self, **kwargs)


class StreamObjective(Objective):
    """An `Objective` whose data chunks come from `BatchData`, batch by batch.

    Every pass over the data (a loss, a gradient, the Hessian-vector products' graph) iterates
    the source once; each batch is cut into chunks of at most the rows the memory budget
    allows and weighted by (chunk size) / N, exactly as `Objective` weights its chunks of one
    tensor, so the results equal the full-batch ones up to float rounding. Under bn='batch'
    the BatchNorm batches are cut from each source batch, so they follow the source's batching.
    """

    def __init__(self, model: FlatModel, data: BatchData, **kwargs: Any):
        if kwargs.get("other_targets"):
            raise ConfigError(
                f"{data.where}: other target sets need the data in memory; pass (x, y) tensors"
            )
        x, y = data.first()  # x, y: one batch for the device, dtype and activation size
        super().__init__(model, x, y, **kwargs)
        self.data = data

    @property
    def n(self) -> int:
        return self.data.n

    def _target_chunks(self, rows: int) -> Iterator[tuple[torch.Tensor, list[torch.Tensor], float]]:
        for x, y in self.data:
            for start in range(0, len(x), rows):
                stop = min(start + rows, len(x))
                yield x[start:stop], [y[start:stop]], (stop - start) / self.n


def as_source(data: Any, *, loss: Any, where: str = "data") -> TensorData | BatchData:
    """`data` checked: a pair of tensors, or a re-iterable of (x, y) batches (a DataLoader).

    Raises `ConfigError` for anything else, a one-shot iterator, x and y of different lengths
    or integer targets missing for cross_entropy, and `DataError` for no examples at all.
    """
    if isinstance(data, tuple | list) and len(data) == 2 and _is_tensor_pair(data):
        x, y = _pair(data, None, where)
        _check_targets(y, loss, where)
        _check_count(len(x), where)
        return TensorData(x, _labels(y))
    if not isinstance(data, Iterable) or isinstance(data, torch.Tensor):
        raise ConfigError(
            f"Probe {where}: expected a pair of tensors (x, y) or a DataLoader / iterable of "
            f"(x, y) batches, found {type(data).__name__}; pass e.g. {where}=(x_train, y_train)"
        )
    if iter(data) is data:
        raise ConfigError(
            f"Probe {where}: expected a re-iterable source (every measure passes over the data "
            f"several times), found a one-shot {type(data).__name__}; pass a DataLoader or a list "
            "of (x, y) batches"
        )
    _check_not_shuffled(data, where)
    n = 0
    for i, batch in enumerate(data):
        x, y = _pair(batch, i, where)
        _check_targets(y, loss, f"{where} batch {i}")
        n += len(x)
    _check_count(n, where)
    return BatchData(data, n, where=where)


def _is_tensor_pair(data: Any) -> bool:
    return all(isinstance(t, torch.Tensor) for t in data)


def _pair(batch: Any, i: int | None, where: str = "data") -> Batch:
    """(x, y) from a batch, lengths checked; `i` is the batch's index (None: the whole data)."""
    at = f"Probe {where}" + ("" if i is None else f" batch {i}")
    if not (isinstance(batch, tuple | list) and len(batch) == 2 and _is_tensor_pair(batch)):
        found = type(batch).__name__ + (
            f" of length {len(batch)}" if hasattr(batch, "__len__") else ""
        )
        raise ConfigError(
            f"{at}: expected a pair of tensors (x, y), found {found}; make the loader yield "
            "(inputs, targets)"
        )
    x, y = batch
    if x.dim() == 0 or y.dim() == 0 or len(x) != len(y):
        raise ConfigError(
            f"{at}: expected x and y with the same number of examples (first dimension), found "
            f"x {tuple(x.shape)} and y {tuple(y.shape)}; pass targets for every input"
        )
    return x, y


def _labels(y: torch.Tensor) -> torch.Tensor:
    """Integer class labels as int64 (what cross_entropy takes); anything else unchanged."""
    if y.is_floating_point() or y.is_complex() or y.dtype in (torch.int64, torch.bool):
        return y
    return y.long()


def _check_targets(y: torch.Tensor, loss: Any, where: str) -> None:
    if loss == "cross_entropy" and (y.is_floating_point() or y.is_complex() or y.dim() != 1):
        raise ConfigError(
            f"Probe {where}: loss 'cross_entropy': expected integer class labels of shape (N,), "
            f"found {y.dtype} targets of shape {tuple(y.shape)}; pass labels as y.long(), or "
            "loss='mse' for real-valued targets"
        )
    if loss == "mse" and not y.is_floating_point():
        raise ConfigError(
            f"Probe {where}: loss 'mse': expected floating targets shaped like the model's "
            f"outputs, found {y.dtype}; pass y.float(), or loss='cross_entropy' for labels"
        )


def _check_count(n: int, where: str) -> None:
    if n == 0:
        raise DataError(
            f"Probe {where}: expected at least one example, found none; pass non-empty data"
        )


def _check_not_shuffled(data: Any, where: str) -> None:
    sampler = getattr(data, "sampler", None)
    if isinstance(sampler, torch.utils.data.RandomSampler):
        raise ConfigError(
            f"Probe {where}: expected a DataLoader that yields the same batches on every pass, "
            "found shuffle=True (every pass would sum in another order and same-seed results "
            "would differ); build it with shuffle=False"
        )
