"""A Hessian-vector product as the curvature kernels see it: counted, budgeted, checked.

`hvp: v (P,) -> H v (P,)` is any callable (an `Objective.hvp_operator(theta)` or an explicit
matrix in a test). `CountedHVP` counts the products, stops at a budget and checks each one's
shape and finiteness; `working_precision` says which dtype and device they run in.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from landscape.errors import ConfigError, LandscapeError

HVP = Callable[[torch.Tensor], torch.Tensor]  # v (P,) -> H v (P,), same dtype and device


class CurvatureError(LandscapeError):
    """Lanczos did not converge within its budget, or a Hessian-vector product was not finite."""


class CountedHVP:
    """`hvp` seen from numpy (float64) for ARPACK: counts calls, enforces the budget."""

    def __init__(
        self, hvp: HVP, size: int, dtype: torch.dtype, device: torch.device, budget: int | None
    ):
        self.hvp, self.size, self.dtype, self.device = hvp, size, dtype, device
        self.budget = budget
        self.calls = 0

    def torch(self, v: torch.Tensor) -> torch.Tensor:
        """H v for v (P,) in the working dtype/device; checks shape and finiteness."""
        if self.budget is not None and self.calls >= self.budget:
            raise BudgetSpent
        self.calls += 1
        hv = self.hvp(v)
        check_product(hv, self.size, self.calls)
        return hv

    def numpy(self, x: np.ndarray) -> np.ndarray:
        v = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64).reshape(-1))
        hv = self.torch(v.to(self.device, self.dtype))
        return hv.detach().to("cpu", torch.float64).numpy()


class BudgetSpent(Exception):
    """`max_products` reached inside ARPACK's loop."""


def check_product(hv: torch.Tensor, size: int, call: int) -> None:
    if not isinstance(hv, torch.Tensor) or hv.shape != (size,):
        found = tuple(hv.shape) if isinstance(hv, torch.Tensor) else type(hv).__name__
        raise ConfigError(
            f"hvp: expected a tensor of shape ({size},) for an input of shape ({size},), "
            f"found {found}; pass a callable v -> H v on flat vectors (e.g. "
            "Objective.hvp_operator(theta)) and `size` = its number of parameters"
        )
    # One float64 reduction: NaN or inf anywhere makes the sum non-finite, and no finite
    # float32 entries can overflow it; cheaper than isfinite().all() per product.
    if not math.isfinite(float(hv.sum(dtype=torch.float64))):
        raise CurvatureError(
            f"hvp: product {call} is not finite (NaN or inf); the loss or its gradient "
            "diverges at this point: check Objective.value(theta) and the gradient there"
        )


def working_precision(
    hvp: HVP, dtype: torch.dtype | None, device: torch.device | str | None
) -> tuple[torch.dtype, torch.device]:
    """dtype/device the products run in: as given, else those of `hvp.theta` (an
    `Objective.hvp_operator`), else float64 on the CPU (an explicit matrix)."""
    theta = getattr(hvp, "theta", None)
    if dtype is None:
        dtype = theta.dtype if isinstance(theta, torch.Tensor) else torch.float64
    if device is None:
        device = theta.device if isinstance(theta, torch.Tensor) else "cpu"
    return dtype, torch.device(device)
