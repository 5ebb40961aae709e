"""Restarts: on full-rank least squares every recipe walks to the unique minimum."""

import numpy as np
import pytest
import torch
from torch import nn

from landscape.core.flat import FlatModel, Objective
from landscape.errors import ConfigError
from landscape.measures.restart import RECIPES, Recipe, recipe, restart


@pytest.fixture
def least_squares(device):
    """The objective on the device under test; the minimum (and every start) on the CPU."""
    g = torch.Generator().manual_seed(0)
    n, d = 200, 4
    x = torch.randn(n, d, generator=g)
    w = torch.tensor([1.0, -2.0, 0.5, 3.0])
    y = (x @ w + 0.7 + 0.1 * torch.randn(n, generator=g)).unsqueeze(1)
    model = FlatModel(nn.Linear(d, 1).to(device))
    obj = Objective(model, x.to(device), y.to(device), loss="mse", classification=False)
    xa = torch.cat([x, torch.ones(n, 1)], dim=1).double()
    minimum = torch.linalg.lstsq(xa, y.double()).solution[:, 0].float()
    return obj, minimum


@pytest.mark.parametrize(
    "r",
    [
        Recipe("sgd", lr=0.1, batch_size=0, steps=400),
        Recipe("sgd", lr=0.05, batch_size=20, epochs=60),
        Recipe("adam", lr=0.05, batch_size=0, steps=1500),
    ],
)
def test_restart_reaches_the_least_squares_minimum(least_squares, r):
    obj, minimum = least_squares
    start = torch.tensor([5.0, 5.0, -5.0, 0.0, 2.0])
    before = start.clone()
    res = restart(obj, obj, start, torch.zeros(5), r, generator=torch.Generator().manual_seed(1))
    assert torch.equal(start, before) and res.end.device.type == "cpu"
    tol = 1e-3 if r.batch_size == 0 else 0.05  # minibatch SGD hovers around the minimum
    torch.testing.assert_close(res.end, minimum, atol=tol, rtol=0)
    assert res.steps[0] == 0 and res.dist_moved[0] == 0
    np.testing.assert_allclose(res.dist_moved[-1], float((res.end - start).norm()), rtol=1e-5)
    assert res.grad_norm[-1] < res.grad_norm[0] and res.diverged_step == -1


def test_recipes_ours_and_the_authors():
    assert RECIPES["sgd"] == Recipe("sgd", lr=0.1, batch_size=64, epochs=20)  # ours (CPU)
    assert RECIPES["sgd-paper"] == Recipe("sgd", lr=0.5, batch_size=64, steps=20_000)
    assert RECIPES["adam-full"] == Recipe("adam", lr=1e-3, batch_size=0, steps=300)
    with pytest.raises(ConfigError, match="known: sgd, sgd-paper, adam-full"):
        recipe("lbfgs")


def test_a_diverging_restart_is_flagged(least_squares):
    obj, _ = least_squares
    res = restart(
        obj,
        obj,
        torch.zeros(5),
        torch.zeros(5),
        Recipe("sgd", lr=50.0, batch_size=0, steps=200),
        generator=torch.Generator().manual_seed(0),
    )
    assert res.diverged_step > 0 and res.steps[-1] <= res.diverged_step
