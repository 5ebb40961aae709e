"""Training a *stack* of K parameter sets: engines, stacked losses, the chunk rule.

Engines share one interface (`Engine`) so the training loop (`landscape.core.loop`) has one
code path; every evaluation (the loop's logging included) goes through `objective.Objective`:

- `StackedEngine`: K parameter sets stacked along dim 0, evaluated with
  `torch.func.vmap(torch.func.functional_call)`; the template module's own tensors are never
  read for parameters and never written.
- `ModuleEngine`: one live `nn.Module` (K = 1), the plain PyTorch way; the per-seed loop.
- `landscape.core.flat_engine.FlatEngine`: K flat parameter vectors of a `FlatModel` (restarts from
  stored points).

All take training minibatches shaped (K, B, *input_shape) and return (K, B, n_outputs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn
from torch.func import functional_call, vmap

from landscape.core.layout import Layout

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# Up to this many classes the shifted formula below beats log_softmax (whose CPU kernel
# vectorizes along the class dimension): 2-5x on 10 classes; on 97-100 classes log_softmax
# is 0.8-1.2x of it, so it keeps them (bench/cross_entropy.py prints both).
SHIFTED_MAX_CLASSES = 32
EXP_FLOOR = -87.0  # exp of it, 1.6e-38, is still a normal float32 (see shifted_cross_entropy)


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy per stack member, nats: logits (K, B, C), labels (K, B) -> (K,).

    Without autograd and for up to SHIFTED_MAX_CLASSES classes, -log softmax(z)_y =
    (m - z_y) + log sum_c exp(z_c - m) with m = max_c z_c: the arithmetic of
    `nn.functional.cross_entropy` without writing the (K, B, C) log-probabilities (log_softmax
    was 15% of a batched 2D surface on 10 classes). With autograd, log_softmax. Subtracting m
    before the log keeps a confident example's tiny loss (a trained point's train loss is a
    mean of them), which logsumexp(z) - z_y rounds away to the ulp of m.

    >>> z = torch.tensor([[[2.0, 0.0], [0.0, 1000.0]]])  # K=1, B=2, C=2
    >>> cross_entropy(z, torch.tensor([[0, 1]]))  # (log(1 + e^-2) + 0) / 2
    tensor([0.0635])
    """
    k, b, c = logits.shape
    # Only where no gradient is taken (surfaces, the losses of stored points): training
    # amplifies the two formulas' rounding differences (the quick preset's overfit run ended
    # 1.7% away in its weights after 20 epochs), and stored numbers must not move.
    if c <= SHIFTED_MAX_CLASSES and not torch.is_grad_enabled():
        return shifted_cross_entropy(logits, y)
    per = nn.functional.cross_entropy(logits.reshape(k * b, c), y.reshape(k * b), reduction="none")
    return per.reshape(k, b).mean(dim=1)


def shifted_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """`cross_entropy`'s formula for few classes, (m - z_y) + log sum exp(z - m), at any C.

    m is a constant of the formula (any m gives the same value), so it is detached: the
    gradient is softmax(z) - onehot(y), as through log_softmax.
    """
    m = logits.detach().amax(dim=-1, keepdim=True)  # (K, B, 1)
    picked = logits.gather(-1, y.unsqueeze(-1)).squeeze(-1) - m.squeeze(-1)  # (K, B): z_y - m
    shifted = logits - m
    # A CPU's exp takes 10-16 ns instead of 0.3 per number below float32's smallest normal
    # exp(-87.3) (a confident logit stack has many): there, exp(max(s, -87)) < 1.7e-38, and
    # the sum it joins holds exp(0) = 1 (the maximum's), so every such term rounds away as
    # before. (On a GPU the clamp would be one more pass for nothing.)
    cpu = shifted.device.type == "cpu"
    if shifted.requires_grad:
        spread = shifted.clamp_min(EXP_FLOOR) if cpu else shifted
        log_sum = spread.exp().sum(dim=-1).log()  # (K, B)
    else:  # no graph: in place, no further (K, B, C) tensors
        if cpu:
            shifted.clamp_min_(EXP_FLOOR)
        log_sum = shifted.exp_().sum(dim=-1).log()
    return (log_sum - picked).mean(dim=1)


def mse(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error per stack member: (K, B, D), (K, B, D) -> (K,)."""
    return ((pred - y) ** 2).flatten(start_dim=1).mean(dim=1)


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of argmax hits per stack member, in [0, 1]: (K, B, C), (K, B) -> (K,).

    Logits stored class-major (a (K, B, C) view of (K, C, B) storage, as `dense` writes
    them) take `first_argmax`: the CPU's argmax over a strided class dimension ran 7.6 ms on
    51 x 1,297 x 10 logits against 1.4 ms for it."""
    if logits.dim() == 3 and logits.stride(-1) != 1 and logits.shape[-1] > 1:
        return (first_argmax(logits) == y).float().mean(dim=1)
    return (logits.argmax(dim=-1) == y).float().mean(dim=1)


def first_argmax(logits: torch.Tensor) -> torch.Tensor:
    """`logits.argmax(dim=-1)` by vectorizable reductions: the first index that holds the
    maximum, a NaN counting as the maximum (the first NaN wins), as argmax's. (..., C) -> (...)
    int64.

    >>> nan = float("nan")
    >>> first_argmax(torch.tensor([[1.0, 3.0, 3.0], [2.0, nan, nan], [-2.0, -2.0, -5.0]]))
    tensor([1, 1, 0])
    """
    c = logits.shape[-1]
    top = logits.amax(dim=-1, keepdim=True)
    hit = logits == top
    if bool(top.isnan().any()):  # amax propagates NaN: only then can a NaN be the argmax
        hit |= logits.isnan()
    rank = torch.arange(
        c, 0, -1, device=logits.device, dtype=torch.uint8 if c < 256 else torch.int32
    )
    return c - (hit * rank).amax(dim=-1).long()  # the largest rank among the hits: the first


def loss_function(name: str) -> LossFn:
    return cross_entropy if name == "cross_entropy" else mse


class StackedEngine:
    """K parameter sets of one architecture, trained and evaluated together under vmap."""

    def __init__(self, template: nn.Module, modules: list[nn.Module], device: torch.device):
        self.template = template.to(device)
        self.layout = Layout.of_parameters(template)
        self.buffer_layout = Layout.of_buffers(template)
        self.params = {
            n: torch.stack([dict(m.named_parameters())[n].detach() for m in modules])
            .to(device)
            .requires_grad_()
            for n in self.layout.names
        }
        self.buffers = {
            n: torch.stack([dict(m.named_buffers())[n] for m in modules]).to(device)
            for n in self.buffer_layout.names
        }
        self._call = vmap(self._one, randomness="different")

    @property
    def k(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def template_module(self) -> nn.Module:
        """The architecture (its own parameters are never used)."""
        return self.template

    def refresh(self) -> None:
        """Before an evaluation: nothing to do (running statistics are the buffers')."""

    def _one(self, params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.template, (params, buffers), (x,))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A training step's forward: (K, B, *input_shape) -> (K, B, n_outputs), BatchNorm on
        each batch's statistics (updating the running ones)."""
        self.template.train(True)
        return self._call(self.params, self.buffers, x)

    def eval_points(self) -> torch.Tensor:
        """(K, P) where the loop's logging evaluates: the parameters themselves."""
        return self.flat_params()

    def eval_buffers(self) -> torch.Tensor | None:
        """(K, P_b) the statistics an evaluation normalizes with; None without buffers."""
        return self.flat_buffers() if self.buffers else None

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def flat_params(self) -> torch.Tensor:
        """(K, P) float32 copy of the current parameters."""
        return self.layout.flatten(self.params, batch_dims=1)

    def flat_buffers(self) -> torch.Tensor:
        """(K, P_buffers) float32 copy of the running statistics; (K, 0) when there are none."""
        if not self.buffers:
            return torch.zeros(self.k, 0)
        return self.buffer_layout.flatten(self.buffers, batch_dims=1)


class ModuleEngine:
    """One live module (K = 1): the plain per-seed PyTorch loop."""

    def __init__(self, module: nn.Module, device: torch.device):
        self.module = module.to(device)
        self.layout = Layout.of_parameters(module)
        self.buffer_layout = Layout.of_buffers(module)
        self.k = 1

    def template_module(self) -> nn.Module:
        return self.module

    def refresh(self) -> None:
        """Before an evaluation: nothing to do."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A training step's forward of the one module: (1, B, ...) -> (1, B, n_outputs)."""
        self.module.train(True)
        return self.module(x[0]).unsqueeze(0)

    def eval_points(self) -> torch.Tensor:
        return self.flat_params()

    def eval_buffers(self) -> torch.Tensor | None:
        return self.flat_buffers() if self.buffer_layout.entries else None

    def parameters(self) -> list[torch.Tensor]:
        return list(self.module.parameters())

    def flat_params(self) -> torch.Tensor:
        return self.layout.flatten(dict(self.module.named_parameters())).unsqueeze(0)

    def flat_buffers(self) -> torch.Tensor:
        if not self.buffer_layout.entries:
            return torch.zeros(1, 0)
        return self.buffer_layout.flatten(dict(self.module.named_buffers())).unsqueeze(0)


class Engine(Protocol):
    """K parameter sets the training loop steps (`forward`, `parameters`) and logs: the loop
    evaluates `eval_points` with `eval_buffers` through `objective.Objective`, the one evaluator
    (`landscape.core.loop`)."""

    layout: Layout
    buffer_layout: Layout

    @property
    def k(self) -> int: ...

    def template_module(self) -> nn.Module: ...

    def refresh(self) -> None: ...

    def forward(self, x: torch.Tensor) -> torch.Tensor: ...

    def eval_points(self) -> torch.Tensor: ...

    def eval_buffers(self) -> torch.Tensor | None: ...

    def parameters(self) -> list[torch.Tensor]: ...

    def flat_params(self) -> torch.Tensor: ...

    def flat_buffers(self) -> torch.Tensor: ...


def activation_numel(template: nn.Module, example: torch.Tensor, *, views: bool = True) -> int:
    """Numbers produced by all leaf layers for one example: a proxy for activation memory.

    `views=False` leaves out outputs that share their input's storage (Flatten, an eval-mode
    Dropout): the numbers a forward actually computes and writes.
    """
    total = 0

    def hook(_m: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        ins = [t for t in inputs if isinstance(t, torch.Tensor)]
        same = any(t.untyped_storage().data_ptr() == out.untyped_storage().data_ptr() for t in ins)
        if views or not same:
            total += out.numel()

    leaves = [m for m in template.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        was_training = template.training
        template.eval()
        with torch.no_grad():
            template(example[:1])
        template.train(was_training)
    finally:
        for h in handles:
            h.remove()
    return max(total, 1)


# Copies of the activations an evaluation holds at once, per kind: a forward alone; a gradient
# (backward keeps about two more); a gradient whose graph is kept for Hessian-vector products.
FORWARD, GRADIENT, GRADIENT_GRAPH = 1, 3, 6


def chunk_rows(k: int, act_numel: int, *, budget_bytes: int, copies: int) -> int:
    """Examples per data chunk so that K points' activations (float32), `copies` times over
    (FORWARD, GRADIENT or GRADIENT_GRAPH), fit `budget_bytes`: `objective.Objective`'s one rule."""
    return max(1, budget_bytes // (k * act_numel * 4 * copies))
