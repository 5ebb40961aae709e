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

from landscape.core.flat import FlatModel
from landscape.core.flat_engine import FlatEngine

MIDPOINT = 0.5  # where an evaluation (the loop's logging) looks at the curve


def bezier(a: torch.Tensor, bend: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """phi(t) (n, P) for every t (n,) on the curve from a (P,) through the bend (P,) to b (P,).

    t = 0 gives a and t = 1 gives b bit for bit (their coefficients are exactly 1 and 0).
    """
    t = t.to(a)[:, None]
    return (1 - t) ** 2 * a + 2 * t * (1 - t) * bend + t**2 * b


class CurveEngine(FlatEngine):
    """K curves (a_k, bend_k, b_k) of a `FlatModel` as one stack with the `Engine` interface.

    The loop steps the bends `theta` (K, P), a private copy of `bends`; the ends a, b (K, P)
    stay fixed. A training forward draws one t ~ U(0, 1) per curve from that curve's own
    generator (`generators[k]`, so K curves together give the numbers of each alone) and
    evaluates the model at phi_k(t) with each minibatch's own BatchNorm statistics. An
    evaluation (the loop's logging: its train loss, accuracy and gradient norm, the gradient
    of the loss at that point with respect to the point) is at the curve's midpoint
    phi(1/2) = (a + 2 theta + b) / 4, with the model's `bn` mode: `buffers`
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
        super().__init__(model, bends, buffers)
        device = bends.device
        self.a, self.b = a.detach().float().to(device), b.detach().float().to(device)
        self.generators = generators

    def points(self, t: torch.Tensor) -> torch.Tensor:
        """phi_k(t_k) (K, P) for one t per curve, t (K,); differentiable in the bends."""
        t = t.to(self.theta)[:, None]
        return (1 - t) ** 2 * self.a + 2 * t * (1 - t) * self.theta + t**2 * self.b

    def draw_t(self) -> torch.Tensor:
        """(K,) one t ~ U(0, 1) per curve, each from its own generator (on the CPU)."""
        return torch.cat([torch.rand(1, generator=g) for g in self.generators])

    def midpoints(self) -> torch.Tensor:
        return self.points(torch.full((self.k,), MIDPOINT))

    def train_points(self) -> torch.Tensor:
        """phi(t) with a fresh t ~ U(0, 1) per curve: a training step's points."""
        return self.points(self.draw_t())

    def eval_points(self) -> torch.Tensor:
        """The midpoints phi(1/2): where the loop's logging evaluates."""
        return self.midpoints()
