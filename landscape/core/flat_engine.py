"""K flat points of a `FlatModel` as one stack that the training loop (`landscape.core.loop`)
steps: restarts from stored points (`landscape.measures.restart`) and, through `CurveEngine`,
the bends of Bezier curves (`landscape.core.bezier`)."""

from __future__ import annotations

import torch
from torch import nn
from torch.func import vmap

from landscape.core.flat import FlatModel


class FlatEngine:
    """K flat points of a `FlatModel` as one stack with the training loop's `Engine` interface.

    The loop steps the (K, P) tensor `theta` itself (a private copy of the given points, never
    the caller's). A training forward uses each minibatch's own BatchNorm statistics
    (`FlatModel.train_forward`); the loop's evaluation (through `Objective`) uses the model's
    `bn` mode, with `buffers` (K, P_b)
    the per-point statistics for 'stored' (e.g. each run's final ones; None: the model's) and
    statistics re-estimated at each point by `refresh` for 'recalibrate'.
    """

    def __init__(self, model: FlatModel, thetas: torch.Tensor, buffers: torch.Tensor | None = None):
        self.model = model
        self.layout, self.buffer_layout = model.layout, model.buffer_layout
        self.theta = thetas.detach().clone().float().requires_grad_()
        self.stored = None if buffers is None or buffers.numel() == 0 else buffers.to(thetas.device)
        self._eval_buffers = self.stored

    @property
    def k(self) -> int:
        return self.theta.shape[0]

    def template_module(self) -> nn.Module:
        return self.model.template

    def train_points(self) -> torch.Tensor:
        """(K, P) where a training step evaluates the model: the points themselves."""
        return self.theta

    def eval_points(self) -> torch.Tensor:
        """(K, P) where an evaluation (the loop's logging) looks: the points themselves."""
        return self.theta

    def refresh(self) -> None:
        """Statistics at the evaluation points under bn='recalibrate' (else the stored ones)."""
        fresh = self.model.point_buffers(self.eval_points().detach())
        self._eval_buffers = self.stored if fresh is None else fresh

    def eval_buffers(self) -> torch.Tensor | None:
        """(K, P_b) the statistics of the last `refresh`; None: the model's own."""
        return self._eval_buffers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A training step's forward: x (K, B, ...), one batch per point -> (K, B, n_outputs)."""
        return vmap(self.model.train_forward)(self.train_points(), x)

    def parameters(self) -> list[torch.Tensor]:
        return [self.theta]

    def flat_params(self) -> torch.Tensor:
        return self.theta.detach().clone()

    def flat_buffers(self) -> torch.Tensor:
        if self._eval_buffers is None:
            return torch.zeros(self.k, 0)
        return self._eval_buffers.detach().clone()
