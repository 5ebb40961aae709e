"""Distances in parameter space: from the initial point, and between runs.

Merkulov & Oseledets' figures use the sum over tensors of the weight norms; the L2 distance
from init is the natural one. Both are reported, named so they cannot be confused.

>>> import torch
>>> from torch import nn
>>> from landscape.params import Layout
>>> layout = Layout.of_parameters(nn.Linear(2, 1))
>>> d = distance_from_init(torch.zeros(3), torch.tensor([[3.0, 4.0, 12.0]]), layout)
>>> d.l2.tolist(), d.frobenius_sum.tolist(), d.weight_norm_sum.tolist()
([13.0], [17.0], [17.0])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from landscape.params import Layout


@dataclass(frozen=True)
class Distances:
    l2: torch.Tensor  # (n,) ||theta - theta0||_2 over all parameters
    frobenius_sum: torch.Tensor  # (n,) sum over tensors t of ||theta_t - theta0_t||_F
    weight_norm_sum: torch.Tensor  # (n,) sum over tensors t of ||theta_t||_F (not a distance)


def per_tensor_norms(points: torch.Tensor, layout: Layout) -> torch.Tensor:
    """(n, P) -> (n, n_tensors) Frobenius norm of each tensor of each point."""
    return torch.stack(
        [points[:, e.offset : e.offset + e.numel].norm(dim=1) for e in layout.entries], dim=1
    )


def distance_from_init(init: torch.Tensor, points: torch.Tensor, layout: Layout) -> Distances:
    """The three distances of points (n, P) from init (P,), in parameter units."""
    points = points.double()
    change = points - init.double()
    return Distances(
        l2=change.norm(dim=1),
        frobenius_sum=per_tensor_norms(change, layout).sum(dim=1),
        weight_norm_sum=per_tensor_norms(points, layout).sum(dim=1),
    )


def pair_distance(a: torch.Tensor, b: torch.Tensor, layout: Layout) -> tuple[float, float]:
    """(L2 distance, sum of per-tensor Frobenius distances) between two points (P,)."""
    change = (a.double() - b.double()).unsqueeze(0)
    return float(change.norm()), float(per_tensor_norms(change, layout).sum())
