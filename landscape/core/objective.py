"""The one evaluator: the mean loss of a `FlatModel` on one dataset, L(theta).

Every measure, the training loop's logging and the Python API reach a model through
`Objective`: loss and accuracy of a stack of K flat vectors (chunked over both points and data
to stay under a memory budget), their gradients, the network's outputs, and Hessian-vector
products at one point.

>>> import torch
>>> from torch import nn
>>> from landscape.core.flat import FlatModel
>>> x, y = torch.tensor([[1.0], [2.0]]), torch.tensor([[2.0], [4.0]])
>>> obj = Objective(FlatModel(nn.Linear(1, 1)), x, y, loss="mse", classification=False)
>>> obj.evaluate(torch.tensor([[2.0, 0.0], [0.0, 0.0]])).loss  # y = 2x fits; 0 misses by (4+16)/2
tensor([ 0., 10.])
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from landscape.core.batched import (
    FORWARD,
    GRADIENT,
    GRADIENT_GRAPH,
    LossFn,
    accuracy,
    chunk_rows,
    loss_function,
)
from landscape.core.flat import FlatModel
from landscape.errors import ConfigError

STACK_PATHS = ("auto", "vmap", "loop", "dense")
# On a CPU, one point's forward over the whole dataset is already a good GEMM for MKL, and
# vmap's (K, B, width) activations (38 MB for a 21-point row of the digits MLP 64-512-10)
# stream through memory in separate bias, activation and loss passes that a point's own
# forward keeps in cache (addmm fuses the bias). Below this many activation numbers per point
# (examples x activation_numel without views) a forward is short enough that its per-call overhead
# dominates, and vmap's one call for K points wins. bench/surface.py prints both paths.
LOOP_MIN_NUMEL = 2**18
# A point's activations per data chunk on the loop path, at most: a LeNet's on 1,000 MNIST
# images (60 MB) ran 1.5x faster in chunks of 256 (15 MB) that stay near the cache.
LOOP_CHUNK_BYTES = 16 * 2**20
# On a CPU, a plain MLP template (`dense.dense_plan`) evaluated without a gradient takes the
# fused forward of `landscape.core.dense` whatever its size: on nets from 2-16-2 on 64
# examples to 64-2048-10 on 1,297 it ran 1.4-5x faster than vmap for a 51-point row and
# 1.0-1.9x faster for one point (bench/dense_path.py; bench/SURFACE.md).
# Float32 copies of the outputs an evaluation on the dense path holds per point and example:
# the outputs, the loss's shifted logits, its and the accuracy's masks and the next chunk's.
DENSE_OUTPUT_COPIES = 4
# Points per evaluation chunk on the dense path: at most this many bytes of their outputs. A
# whole 51 x 51 plane of the quick MLP (MNIST MLP) in chunks of 51 or 128 points ran at
# 0.80-0.84 (0.69) ms per point, of 256-2,601 points at 0.85-0.90 (0.73-0.82): the losses'
# passes over the (K, B, C) outputs fall out of cache (1 thread, bench/SURFACE.md).
DENSE_STACK_BYTES = 8 * 2**20


def stack_path(
    device: torch.device, point_numel: int, path: str = "auto", *, dense: bool = False
) -> str:
    """How `Objective.evaluate` runs K points: 'vmap' (one stacked call), 'loop' (one
    forward per point) or 'dense' (`dense.DensePlan.forward`: a plain MLP's fused forward,
    without autograd). 'auto': vmap on accelerators; on a CPU, dense for a `dense` template
    (one `dense.dense_plan` accepts), else loop from LOOP_MIN_NUMEL activation numbers per
    point, else vmap. The values do not depend on the path beyond float rounding."""
    if path != "auto":
        return path
    if device.type != "cpu":
        return "vmap"
    if dense:
        return "dense"
    return "loop" if point_numel >= LOOP_MIN_NUMEL else "vmap"


@dataclass(frozen=True)
class Evaluation:
    loss: torch.Tensor  # (K,) mean loss over the dataset (nats for cross-entropy)
    acc: torch.Tensor  # (K,) accuracy in [0, 1]; NaN for regression
    grad: torch.Tensor | None = None  # (K, P) gradient of the mean loss, when asked for
    # the objective's other target sets on the same inputs: name -> ((K,) loss, (K,) accuracy)
    others: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)


class Objective:
    """The mean loss of a `FlatModel` on one dataset (x, y): L(theta).

    The one evaluator of the toolkit: the training loop's logging, every measure and the
    Python API evaluate through it. `budget_bytes` bounds the activations held at once; stacks
    and data are chunked to fit by one rule (`batched.chunk_rows`). Results do not depend on
    the chunking (chunks are weighted by their size). `other_targets` are further target sets
    (N, ...) for the same inputs, e.g. an overfit run's corrupted test labels: `evaluate`
    scores them from the same forward pass.
    """

    def __init__(
        self,
        model: FlatModel,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        loss: str | LossFn,
        classification: bool,
        budget_bytes: int = 256 * 2**20,
        path: str = "auto",
        other_targets: dict[str, torch.Tensor] | None = None,
    ):
        if path not in STACK_PATHS:
            raise ConfigError(
                f"Objective: path {path!r}: expected one of {', '.join(STACK_PATHS)}; 'auto' "
                "chooses by device and model size (see stack_path)"
            )
        self.model, self.x, self.y = model, x, y
        self.others = dict(other_targets or {})
        for name, t in self.others.items():
            if len(t) != len(y):
                raise ConfigError(
                    f"Objective: other target set {name!r} has {len(t)} rows, the inputs "
                    f"{len(y)}; give one target per input (the same order as x)"
                )
        # a name (cross_entropy, mse) or a stacked loss: outputs (K, B, ...), y (K, B, ...) -> (K,)
        self.loss_name = loss if isinstance(loss, str) else getattr(loss, "__name__", "custom")
        self._loss = loss_function(loss) if isinstance(loss, str) else loss
        self._named_loss = isinstance(loss, str)  # a stacked loss of the caller's may view()
        self.loss_fn: LossFn = self._loss  # (K, B, ...) outputs, (K, B, ...) targets -> (K,)
        self.classification = classification
        self.budget = budget_bytes
        self.act = model.activation_numel(x)
        if path == "dense" and model.dense is None:
            raise ConfigError(
                "Objective: path 'dense' needs a plain MLP template (nn.Sequential or "
                "landscape.models.MLP of Flatten, Linear and elementwise activations), found "
                f"{type(model.template).__name__}; use path='auto'"
            )
        self._path = path  # resolved on first use: a subclass may set up `n` after this
        self._grad_path = "vmap" if path == "vmap" else "loop" if path == "loop" else "auto"

    @property
    def path(self) -> str:
        """'vmap', 'loop' or 'dense': how `evaluate` runs K points (see `stack_path`)."""
        if self._path == "auto":
            dense = self.model.dense is not None
            self._path = stack_path(self.x.device, self._point_numel(), dense=dense)
        return self._path

    @property
    def grad_path(self) -> str:
        """'vmap' or 'loop': how `evaluate(gradient=True)` runs K points (the dense forward
        keeps no graph: its rule without it)."""
        if self._grad_path == "auto":
            self._grad_path = stack_path(self.x.device, self._point_numel())
        return self._grad_path

    def _point_numel(self) -> int:
        return self.model.activation_numel(self.x, views=False) * self.n  # Flatten's view: free

    @property
    def n(self) -> int:
        return self.x.shape[0]

    def _rows(self, k: int, copies: int) -> int:
        if self.model.bn == "batch":  # each batch's statistics: fixed batches, whatever the budget
            return self.model.bn_batch
        return chunk_rows(k, self.act, budget_bytes=self.budget, copies=copies)

    def _data_chunks(self, rows: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, float]]:
        for xb, ys, w in self._target_chunks(rows):
            yield xb, ys[0], w

    def _target_chunks(self, rows: int) -> Iterator[tuple[torch.Tensor, list[torch.Tensor], float]]:
        """(inputs, [targets, *other targets], weight) per chunk of `rows` examples."""
        targets = [self.y, *self.others.values()]
        for start in range(0, self.n, rows):
            stop = min(start + rows, self.n)
            yield self.x[start:stop], [t[start:stop] for t in targets], (stop - start) / self.n

    def evaluate(
        self, thetas: torch.Tensor, buffers: torch.Tensor | None = None, *, gradient: bool = False
    ) -> Evaluation:
        """Loss and accuracy of every row of thetas (K, P) on the whole dataset, and of the
        other target sets; with `gradient`, each row's full-batch gradient too (K, P).

        `buffers` (K, P_b): each point's BatchNorm statistics (e.g. runs' stored ones, held
        fixed); None: the model's `bn` mode decides (its statistics, or recalibrated at each
        point).
        """
        thetas = thetas.to(self.x.device)
        self._check_buffers(thetas, buffers)
        copies = GRADIENT if gradient else FORWARD
        per_point = self.act * 4 * min(self.n, 256) * copies
        k_chunk = max(1, min(len(thetas), self.budget // per_point))
        plan = self.model.dense
        if not gradient and self.path == "dense" and plan is not None:  # outputs near the cache
            k_chunk = min(
                k_chunk, max(1, DENSE_STACK_BYTES // (4 * self.n * plan.layers[-1].n_out))
            )
        parts = []
        for start in range(0, len(thetas), k_chunk):
            sl = slice(start, start + k_chunk)
            part_buffers = None if buffers is None else buffers[sl].to(self.x.device)
            parts.append(self._evaluate_chunk(thetas[sl], part_buffers, gradient))
        return _joined(parts)

    def _check_buffers(self, thetas: torch.Tensor, buffers: torch.Tensor | None) -> None:
        size = self.model.buffer_layout.size
        if buffers is not None and tuple(buffers.shape) != (len(thetas), size):
            raise ConfigError(
                f"Objective.evaluate: buffers must be one row of {size} statistics per point, "
                f"({len(thetas)}, {size}), found {tuple(buffers.shape)}; pass None to use the "
                "model's own"
            )

    def _groups(self, k: int, path: str) -> list[slice]:
        """The K points' groups per forward: one each on the loop path, else all together."""
        return [slice(j, j + 1) for j in range(k)] if path == "loop" else [slice(0, k)]

    def _evaluate_chunk(
        self, thetas: torch.Tensor, buffers: torch.Tensor | None, gradient: bool
    ) -> Evaluation:
        k, names = len(thetas), ["", *self.others]
        loss = {t: torch.zeros(k, device=self.x.device, dtype=thetas.dtype) for t in names}
        acc = {t: torch.zeros_like(loss[t]) for t in names}
        grads = torch.zeros_like(thetas) if gradient else None
        if buffers is None:
            buffers = self.model.point_buffers(thetas)
        path = self.grad_path if gradient else self.path
        groups = self._groups(k, path)
        rows = self._eval_rows(k, GRADIENT if gradient else FORWARD, path)
        with torch.set_grad_enabled(gradient):
            for xb, ys, w in self._target_chunks(rows):
                for g in groups:  # data outside, points inside: one pass over a streamed source
                    points = thetas[g].detach().requires_grad_(gradient)
                    own = None if buffers is None else buffers[g]
                    out = self._forward_points(points, xb, own, path)
                    for i, (name, yb) in enumerate(zip(names, ys, strict=True)):
                        yk = yb.unsqueeze(0).expand(len(out), *yb.shape)
                        value = self._loss(out, yk)
                        if grads is not None and i == 0:
                            (part,) = torch.autograd.grad((value * w).sum(), points)
                            grads[g] += part
                        loss[name][g] += value.detach() * w
                        if self.classification:
                            acc[name][g] += accuracy(out.detach(), yk) * w
        if not self.classification:
            for a in acc.values():
                a.fill_(float("nan"))
        others = {t: (loss[t], acc[t]) for t in self.others}
        return Evaluation(loss[""], acc[""], grads, others)

    def outputs(self, thetas: torch.Tensor, buffers: torch.Tensor | None = None) -> torch.Tensor:
        """The network's outputs (K, N, ...) at every row of thetas (K, P) on the objective's
        inputs (what a regression net draws), by `evaluate`'s path and data chunks."""
        thetas = thetas.to(self.x.device)
        self._check_buffers(thetas, buffers)
        buffers = self.model.point_buffers(thetas) if buffers is None else buffers.to(thetas)
        path = self.path
        groups = self._groups(len(thetas), path)
        chunks = []
        with torch.no_grad():
            for xb, _, _ in self._target_chunks(self._eval_rows(len(thetas), FORWARD, path)):
                outs = [
                    self._forward_points(
                        thetas[g], xb, None if buffers is None else buffers[g], path
                    )
                    for g in groups
                ]
                chunks.append(torch.cat(outs))
        return torch.cat(chunks, dim=1)

    def _eval_rows(self, k: int, copies: int, path: str) -> int:
        """Examples per data chunk of an evaluation of k points by `path` (on the loop path,
        one point's activations at a time, in chunks of at most LOOP_CHUNK_BYTES; on the dense
        path, the k points' outputs and the loss's copies of them, DENSE_OUTPUT_COPIES, and the
        inputs with their ones column: it blocks rows for the cache itself)."""
        plan = self.model.dense
        if path == "dense" and plan is not None:
            per_example = k * plan.layers[-1].n_out * DENSE_OUTPUT_COPIES + plan.layers[0].n_in + 1
            return max(1, self.budget // (4 * per_example))
        if path != "loop" or self.model.bn == "batch":  # bn='batch': fixed batches
            return self._rows(k, copies)
        return min(self._rows(1, copies), max(1, LOOP_CHUNK_BYTES // (4 * self.act)))

    def _forward_points(
        self, thetas: torch.Tensor, xb: torch.Tensor, buffers: torch.Tensor | None, path: str
    ) -> torch.Tensor:
        """thetas (K, P) -> outputs (K, B, ...): on the dense path (no gradient), the fused
        forward; else one plain forward when K = 1 (no vmap), or vmap."""
        plan = self.model.dense
        if (
            path == "dense"
            and plan is not None
            and not torch.is_grad_enabled()
            and (buffers is None or buffers.shape[-1] == 0)
            and plan.accepts(thetas, xb)
        ):
            out = plan.forward(thetas, xb)  # class-major: the named losses take the view
            return out if self._named_loss else out.contiguous()
        if len(thetas) == 1:
            return self.model.forward(thetas[0], xb, None if buffers is None else buffers[0])[None]
        return self.model.forward_stack(thetas, xb, buffers)

    def _chunk_loss(
        self,
        theta: torch.Tensor,
        xb: torch.Tensor,
        yb: torch.Tensor,
        buffers: torch.Tensor | None = None,
    ) -> torch.Tensor:
        out = self.model.forward(theta, xb, buffers).unsqueeze(0)
        return self._loss(out, yb.unsqueeze(0))[0]

    def _point_buffers(self, theta: torch.Tensor) -> torch.Tensor | None:
        """Statistics at theta (P_b,) under bn='recalibrate' (held fixed for derivatives)."""
        b = self.model.point_buffers(theta.detach().unsqueeze(0))
        return None if b is None else b[0]

    def value(self, theta: torch.Tensor) -> torch.Tensor:
        """L(theta), a scalar (no graph kept)."""
        return self.evaluate(theta.unsqueeze(0)).loss[0]

    def gradient(self, theta: torch.Tensor) -> torch.Tensor:
        """dL/dtheta (P,), full batch, accumulated over data chunks."""
        grad = self.evaluate(theta.unsqueeze(0), gradient=True).grad
        assert grad is not None  # asked for
        return grad[0]

    def hvp_operator(self, theta: torch.Tensor) -> HessianVectorProduct:
        """Hessian-vector products at `theta` (see `HessianVectorProduct`)."""
        return HessianVectorProduct(self, theta.to(self.x.device))


class HessianVectorProduct:
    """v -> H(theta) v for the full-batch loss, the gradient's graph built once at theta.

    The gradient of each data chunk is taken with `create_graph=True` and its graph kept, so
    each product is one backward pass through it (H is symmetric, so the vector-Jacobian
    product of the gradient is H v). On the quick preset's 38k-parameter MLP (1,297 examples,
    2 cores) this took 7.4 ms per product against 8.6 ms for a `torch.func.vjp` linearization
    (identical products), and about half the time of rebuilding the double backward per product.
    """

    def __init__(self, objective: Objective, theta: torch.Tensor):
        self.objective = objective
        self.theta = theta.detach().clone().requires_grad_()
        self.grads: list[tuple[torch.Tensor, float]] = []
        self.gradient = torch.zeros_like(theta)
        buffers = objective._point_buffers(self.theta)
        for xb, yb, w in objective._data_chunks(objective._rows(1, GRADIENT_GRAPH)):
            with torch.enable_grad():
                loss = objective._chunk_loss(self.theta, xb, yb, buffers)
                (g,) = torch.autograd.grad(loss, self.theta, create_graph=True)
            self.gradient += g.detach() * w
            self.grads.append((g, w))
        self.calls = 0

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        """H v for v (P,) on the objective's device and dtype."""
        self.calls += 1
        out = torch.zeros_like(self.gradient)
        for g, w in self.grads:
            (hv,) = torch.autograd.grad(g, self.theta, v, retain_graph=True)
            out += hv * w
        return out


def _joined(parts: list[Evaluation]) -> Evaluation:
    """The evaluations of consecutive chunks of a stack as one."""
    if len(parts) == 1:
        return parts[0]
    grads = [p.grad for p in parts if p.grad is not None]
    others = {
        t: (torch.cat([p.others[t][0] for p in parts]), torch.cat([p.others[t][1] for p in parts]))
        for t in parts[0].others
    }
    return Evaluation(
        torch.cat([p.loss for p in parts]),
        torch.cat([p.acc for p in parts]),
        torch.cat(grads) if grads else None,
        others,
    )
