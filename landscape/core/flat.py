"""A network as f(theta, x) for flat parameter vectors (`FlatModel`), with a choice of
BatchNorm statistics; `landscape.core.objective.Objective` evaluates it on a dataset.

Nothing here writes `p.data` or touches a caller's module:
the template's own parameters are never read, and everything FlatModel needs of it (an
eval-mode copy, layouts, BatchNorm variants) is kept in a private cache, not on the module.

>>> import torch
>>> from torch import nn
>>> model = FlatModel(nn.Linear(2, 1))
>>> theta = torch.tensor([1.0, 2.0, 0.5])  # weight (1, 2), then bias (1,)
>>> model.forward(theta, torch.tensor([[1.0, 1.0]]))
tensor([[3.5000]])
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.func import functional_call, vmap

from landscape.core.batched import (
    activation_numel,
)
from landscape.core.dense import DensePlan, dense_plan
from landscape.core.private_copy import derived, norm_layers, private_copy

BN_MODES = ("stored", "recalibrate", "batch")


@contextlib.contextmanager
def _composable_attention() -> Iterator[None]:
    """Attention through plain tensor ops, so that vmap and grad compose with it.

    nn.TransformerEncoderLayer's inference fast path and the fused (flash) attention kernels
    have no vmap batching rule: under `forward_stack` torch falls back to a slow per-point loop
    and warns. The math kernel computes the same attention with ordinary ops. The flags are
    process-wide: they are restored on exit.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel([SDPBackend.MATH]):
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


class FlatModel:
    """`template` evaluated at flat parameter vectors (P,), with a choice of BatchNorm statistics.

    `bn` says which statistics BatchNorm layers normalize with at a point theta:
    - 'stored': the fixed running statistics `buffers` (P_b,) (e.g. a run's stored final
      buffers; None keeps the template's own);
    - 'recalibrate': re-estimated at theta from `calibration` inputs (N, ...), as
      mode-connectivity work does: the cumulative average of per-batch means and variances over
      fixed batches of `bn_batch` inputs; see `recalibrate`;
    - 'batch': each evaluation batch's own statistics (batches of exactly `bn_batch` examples,
      so results do not depend on memory chunking).
    Models without BatchNorm ignore `bn`.
    """

    def __init__(
        self,
        template: nn.Module,
        buffers: torch.Tensor | None = None,
        *,
        bn: str = "stored",
        calibration: torch.Tensor | None = None,
        bn_batch: int = 256,
    ):
        if bn not in BN_MODES:
            raise ValueError(f"bn {bn!r}: expected one of {', '.join(BN_MODES)}")
        self._private = private_copy(template)
        self.template = self._private.module  # a private eval-mode copy; never the caller's
        self.layout, self.buffer_layout = self._private.layouts
        self.has_bn = bool(norm_layers(self.template))
        self.bn = bn if self.has_bn else "stored"
        if self.bn == "recalibrate" and (calibration is None or len(calibration) < 2):
            raise ValueError("bn='recalibrate' needs calibration inputs (at least 2 examples)")
        self.calibration, self.bn_batch = calibration, max(2, bn_batch)
        own = (
            self.buffer_layout.flatten(dict(template.named_buffers()))
            if self.buffer_layout.entries
            else None
        )
        self.buffers = own if buffers is None else buffers
        if self.has_bn:  # built here, not lazily: a copy cannot be made inside a transform
            derived(self._private, "batch")
            derived(self._private, "calibrate")
        # a chain of Linear layers and activations: `dense`'s fused forward can evaluate it
        self.dense: DensePlan | None = (
            None if self.has_bn else dense_plan(self.template, self.layout)
        )

    @property
    def size(self) -> int:
        """Number of parameters P."""
        return self.layout.size

    def derived(self, kind: str) -> nn.Module:
        """The private copy with BatchNorm in train mode: 'batch' or 'calibrate'."""
        return derived(self._private, kind)

    def activation_numel(self, x: torch.Tensor, *, views: bool = True) -> int:
        """Numbers all leaf layers produce for one example of x (B, ...): a memory proxy.
        `views=False`: without outputs that are views of their input (see batched's)."""
        cache, key = self._private.activations, (*x.shape[1:], views)
        if key not in cache:
            cache[key] = activation_numel(self.template, x[:1], views=views) if len(x) else 1
        return cache[key]

    def _buffers(self, device: torch.device, buffers: torch.Tensor | None) -> dict:
        b = self.buffers if buffers is None else buffers
        return {} if b is None else self.buffer_layout.unflatten(b.to(device))

    def forward(
        self, theta: torch.Tensor, x: torch.Tensor, buffers: torch.Tensor | None = None
    ) -> torch.Tensor:
        """theta (P,), x (B, *input_shape) -> outputs (B, n_outputs).

        `buffers` (P_b,) overrides the model's statistics (e.g. recalibrated at theta).
        """
        params = self.layout.unflatten(theta)
        with _composable_attention():
            if self.bn == "batch":
                return functional_call(self.derived("batch"), params, (x,))
            return functional_call(self.template, (params, self._buffers(x.device, buffers)), (x,))

    def forward_stack(
        self, thetas: torch.Tensor, x: torch.Tensor, buffers: torch.Tensor | None = None
    ) -> torch.Tensor:
        """thetas (K, P), x (B, ...) shared by all K -> (K, B, n_outputs).

        `buffers` (K, P_b): per-point statistics (from `point_buffers`); None: the model's.
        """
        if buffers is None:
            return vmap(self.forward, in_dims=(0, None))(thetas, x)
        return vmap(self.forward, in_dims=(0, None, 0))(thetas, x, buffers)

    def train_forward(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The forward pass of a training step: BatchNorm on the batch's own statistics."""
        if not self.has_bn:
            return self.forward(theta, x)
        params = self.layout.unflatten(theta)
        with _composable_attention():
            return functional_call(self.derived("batch"), params, (x,))

    def point_buffers(self, thetas: torch.Tensor) -> torch.Tensor | None:
        """Per-point statistics (K, P_b) for `bn='recalibrate'`; None for the other modes."""
        if self.bn != "recalibrate":
            return None
        assert self.calibration is not None  # checked in __init__
        return recalibrate(self, thetas, self.calibration, batch_size=self.bn_batch)


def recalibrate(
    model: FlatModel, thetas: torch.Tensor, x: torch.Tensor, *, batch_size: int = 256
) -> torch.Tensor:
    """BatchNorm statistics re-estimated at each of thetas (K, P): (K, P_b), float32.

    Each layer's running mean and (unbiased) variance become the average, over the batches of
    `x` taken in order (`batch_size` each; a last batch of fewer than 2 is dropped), of that
    batch's mean and variance of the layer's input at theta: PyTorch's cumulative average
    (momentum=None), done by setting momentum = 1/i at batch i because vmap cannot branch on
    the batch counter. The result depends only on x and theta, never on earlier statistics.
    """
    calib = model.derived("calibrate")
    layers = norm_layers(calib)
    k, device = len(thetas), thetas.device
    stats = {n: _fresh(n, b, layers, calib).to(device).expand(k, *b.shape).clone()
             for n, b in calib.named_buffers()}  # fmt: skip

    def one(params: dict, buffers: dict, xb: torch.Tensor) -> torch.Tensor:
        with _composable_attention():
            return functional_call(calib, (params, buffers), (xb,))

    params = model.layout.unflatten(thetas)
    starts = [s for s in range(0, len(x), batch_size) if len(x) - s >= 2]
    with torch.no_grad():
        for i, start in enumerate(starts, 1):
            for layer in layers:
                layer.momentum = 1.0 / i
            vmap(one, in_dims=(0, 0, None))(params, stats, x[start : start + batch_size].to(device))
    return model.buffer_layout.flatten(stats, batch_dims=1).float()


def _fresh(name: str, buffer: torch.Tensor, norms: list, module: nn.Module) -> torch.Tensor:
    """A buffer's value before recalibration: BatchNorm's running statistics start at
    mean 0 and variance 1; any other buffer (a positional table, a mask) keeps its value."""
    owner = module.get_submodule(name.rpartition(".")[0]) if "." in name else module
    if owner not in norms:
        return buffer
    return torch.ones_like(buffer) if name.endswith("running_var") else torch.zeros_like(buffer)
