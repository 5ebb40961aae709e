"""Gradient norms of the full-batch loss: is a point (near) critical?"""

from __future__ import annotations

import torch

from landscape.flat import Objective


def gradient_norms(objective: Objective, points: torch.Tensor) -> torch.Tensor:
    """(n,) L2 norm of dL/dtheta at each point (n, P); L is the objective's mean loss.

    NaN for a point whose gradient is not finite (a diverged point), never hidden.
    """
    out = torch.empty(len(points), dtype=torch.float64)
    for i, theta in enumerate(points):
        g = objective.gradient(theta)
        out[i] = g.double().norm() if torch.isfinite(g).all() else float("nan")
    return out
