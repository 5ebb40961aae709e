"""A quadratic Bezier curve between two flat points, as an `Engine` the training loop steps.

Garipov et al. (2018) join two minima a and b by the curve

    phi(t) = (1 - t)^2 a + 2 t (1 - t) theta + t^2 b,    t in [0, 1],

and train its bend theta on the training set by minimizing the expected loss over t ~ U(0, 1),
one t drawn per minibatch step. On flat parameter vectors this is the model evaluated at a
point that depends on theta: no layer has to be rewritten (their code rewrites each layer type).

>>> a, b, bend = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 0.0]), torch.tensor([0.0, 2.0])
>>> bezier(a, bend, b, torch.tensor([0.0, 0.5, 1.0]))
tensor([[ 1.,  0.],
        [ 0.,  1.],
        [-1.,  0.]])
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import vmap

from landscape.core.flat import FlatModel

MIDPOINT = 0.5  # where an evaluation (the loop's logging) looks at the curve


def bezier(a: torch.Tensor, bend: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """phi(t) (n, P) for every t (n,) on the curve from a (P,) through the bend (P,) to b (P,).

    t = 0 gives a and t = 1 gives b bit for bit (their coefficients are exactly 1 and 0).
    """
    t = t.to(a)[:, None]
    return (1 - t) ** 2 * a + 2 * t * (1 - t) * bend + t**2 * b


class CurveEngine:
    """K curves (a_k, bend_k, b_k) of a `FlatModel` as one stack with the `Engine` interface.

    The loop steps the bends `theta` (K, P), a private copy of `bends`; the ends a, b (K, P)
    stay fixed. A training forward draws one t ~ U(0, 1) per curve from that curve's own
    generator (`generators[k]`, so K curves together give the numbers of each alone) and
    evaluates the model at phi_k(t) with each minibatch's own BatchNorm statistics. An
    evaluation (the loop's logging: its train loss, accuracy and gradient norm) is at the
    curve's midpoint phi(1/2) = (a + 2 theta + b) / 4, with the model's `bn` mode: `buffers`
    (K, P_b) for 'stored', statistics re-estimated at the midpoint by `refresh` for
    'recalibrate'. `flat_params` are the bends, so the loop's `dist_init` is how far each bend
    moved from where it started.
    """

    def __init__(
        self,
        model: FlatModel,
        a: torch.Tensor,
        b: torch.Tensor,
        bends: torch.Tensor,
        *,
        generators: list[torch.Generator],
        buffers: torch.Tensor | None = None,
    ):
        if not a.shape == b.shape == bends.shape or len(generators) != len(bends):
            raise ValueError(
                f"CurveEngine: expected a, b, bends of one shape (K, P) and K generators, found "
                f"{tuple(a.shape)}, {tuple(b.shape)}, {tuple(bends.shape)} and {len(generators)}"
            )
        self.model = model
        self.layout, self.buffer_layout = model.layout, model.buffer_layout
        device = bends.device
        self.a, self.b = a.detach().float().to(device), b.detach().float().to(device)
        self.theta = bends.detach().clone().float().requires_grad_()
        self.generators = generators
        self.stored = None if buffers is None or buffers.numel() == 0 else buffers.to(device)
        self.eval_buffers = self.stored

    @property
    def k(self) -> int:
        return self.theta.shape[0]

    def template_module(self) -> nn.Module:
        return self.model.template

    def points(self, t: torch.Tensor) -> torch.Tensor:
        """phi_k(t_k) (K, P) for one t per curve, t (K,); differentiable in the bends."""
        t = t.to(self.theta)[:, None]
        return (1 - t) ** 2 * self.a + 2 * t * (1 - t) * self.theta + t**2 * self.b

    def draw_t(self) -> torch.Tensor:
        """(K,) one t ~ U(0, 1) per curve, each from its own generator (on the CPU)."""
        return torch.cat([torch.rand(1, generator=g) for g in self.generators])

    def midpoints(self) -> torch.Tensor:
        return self.points(torch.full((self.k,), MIDPOINT))

    def refresh(self) -> None:
        """Statistics at the midpoints under bn='recalibrate' (else the stored ones)."""
        fresh = self.model.point_buffers(self.midpoints().detach())
        self.eval_buffers = self.stored if fresh is None else fresh

    def forward(self, x: torch.Tensor, *, train: bool) -> torch.Tensor:
        """x (K, B, ...), one batch per curve -> (K, B, n_outputs): at phi(t) with a fresh
        t ~ U(0, 1) per curve when `train`, else at the midpoint phi(1/2)."""
        if train:
            return vmap(self.model.train_forward)(self.points(self.draw_t()), x)
        mid = self.midpoints()
        if self.eval_buffers is None:
            return vmap(self.model.forward)(mid, x)
        return vmap(self.model.forward)(mid, x, self.eval_buffers)

    def parameters(self) -> list[torch.Tensor]:
        return [self.theta]

    def flat_params(self) -> torch.Tensor:
        """(K, P) copy of the bends."""
        return self.theta.detach().clone()

    def flat_buffers(self) -> torch.Tensor:
        if self.eval_buffers is None:
            return torch.zeros(self.k, 0)
        return self.eval_buffers.detach().clone()
