"""Restarts: on full-rank least squares every recipe walks to the unique minimum."""

import numpy as np
import pytest
import torch
from torch import nn

from landscape.core.flat import FlatModel
from landscape.core.objective import Objective
from landscape.errors import ConfigError
from landscape.measures.restart import RECIPES, Recipe, recipe, restart, restart_stack


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


@pytest.fixture
def digits_objectives():
    """A small classifier on a slice of digits: cross-entropy, minibatches, two splits."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = torch.tensor(d.data[:600], dtype=torch.float32) / 16, torch.tensor(d.target[:600])
    model = FlatModel(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)))
    kw = {"loss": "cross_entropy", "classification": True}
    return Objective(model, x[:400], y[:400], **kw), Objective(model, x[400:], y[400:], **kw)


@pytest.mark.parametrize(
    "r",
    [
        Recipe("sgd", lr=0.1, batch_size=64, epochs=4, momentum=0.9),
        Recipe("adam", lr=1e-2, batch_size=0, steps=60),
    ],
)
def test_restarts_as_one_stack_equal_restarts_one_at_a_time(digits_objectives, r):
    """K = 4 restarts trained together give each restart's numbers alone (to 1e-5): the same
    minibatch orders (one generator each), an elementwise optimizer, independent losses."""
    train, test = digits_objectives
    g = torch.Generator().manual_seed(0)
    starts = 0.3 * torch.randn(4, train.model.size, generator=g)
    inits = 0.3 * torch.randn(4, train.model.size, generator=g)
    gens = [torch.Generator().manual_seed(10 + k) for k in range(4)]
    stack = restart_stack(train, test, starts, inits, r, generators=gens)
    for k in range(4):
        alone = restart(train, test, starts[k], inits[k], r,
                        generator=torch.Generator().manual_seed(10 + k))  # fmt: skip
        np.testing.assert_array_equal(stack[k].steps, alone.steps)
        for field in ("train_loss", "train_acc", "test_loss", "test_acc", "grad_norm",
                      "dist_moved", "dist_init"):  # fmt: skip
            np.testing.assert_allclose(
                getattr(stack[k], field), getattr(alone, field), rtol=1e-5, atol=1e-5
            )
        torch.testing.assert_close(stack[k].end, alone.end, rtol=1e-5, atol=1e-4)
    assert stack[0].train_loss[-1] < stack[0].train_loss[0]  # it trained
    assert not torch.equal(stack[0].end, stack[1].end)


def test_one_diverging_restart_in_a_stack_leaves_the_others_alone(least_squares):
    """Restart 1 starts at an infinite coordinate, so its first loss is not finite: it stops
    at step 0 with its starting point as its end, while the restart beside it goes on to the
    least-squares minimum."""
    obj, minimum = least_squares
    starts = torch.tensor([[5.0, 5.0, -5.0, 0.0, 2.0], [float("inf"), 0.0, 0.0, 0.0, 0.0]])
    gens = [torch.Generator().manual_seed(k) for k in range(2)]
    r = Recipe("sgd", lr=0.1, batch_size=0, steps=400)
    ok, bad = restart_stack(obj, obj, starts, torch.zeros(2, 5), r, generators=gens)
    assert ok.diverged_step == -1
    torch.testing.assert_close(ok.end, minimum.cpu(), atol=1e-3, rtol=0)
    assert bad.diverged_step == 0 and list(bad.steps) == [0]
    assert torch.equal(bad.end, starts[1])  # its last point before the first bad step


def test_analyze_restarts_a_stores_overfit_runs_as_one_stack(tmp_path, monkeypatch):
    """`landscape analyze` trains the restarts of one recipe from every overfit run together
    (batch_size 2 on the tiny store), with the numbers of computing each result alone."""
    from landscape.measures import runner
    from landscape.measures.runner import AnalysisConfig, analyze
    from landscape.store.analysis_read import read_result
    from landscape.train.experiment import train_experiment
    from tests.helpers import tiny_config

    path = tmp_path / "tiny.h5"
    train_experiment(tiny_config(), path)
    cfg = AnalysisConfig(measures=("restart",), recipes=("adam-full",), alpha_points=5)
    together = analyze(path, tmp_path / "together.h5", cfg)
    monkeypatch.setattr(runner, "batches", lambda todo: [(m, (k,)) for m, k in todo])
    alone = analyze(path, tmp_path / "alone.h5", cfg)
    keys = ["adam-full.overfit-000", "adam-full.overfit-001"]
    assert sorted(together.computed) == sorted(alone.computed) == [f"restart/{k}" for k in keys]
    for key in keys:
        a = read_result(tmp_path / "together.h5", "restart", key)
        b = read_result(tmp_path / "alone.h5", "restart", key)
        assert (a["attrs"]["batch_size"], b["attrs"]["batch_size"]) == (2, 1)
        assert a["attrs"]["seed"] == b["attrs"]["seed"]
        for name in set(a) - {"attrs"}:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-4, err_msg=name)
