"""BatchNorm statistics at a point: stored, recalibrated (oracle: exact batch moments), batch."""

import json

import h5py
import pytest
import torch
from torch import nn

from landscape.config import ModelConfig
from landscape.core.flat import FlatModel, recalibrate
from landscape.core.objective import Objective
from landscape.measures.runner import AnalysisConfig, analyze
from landscape.store.analysis_store import result_file
from landscape.train.experiment import train_experiment
from tests.helpers import tiny_config


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))


def _theta(model: FlatModel, seed: int) -> torch.Tensor:
    return torch.randn(model.size, generator=torch.Generator().manual_seed(seed))


def _hidden(model: FlatModel, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The BatchNorm layer's input: x W^T + b of the first Linear."""
    p = model.layout.unflatten(theta)
    return x @ p["0.weight"].T + p["0.bias"]


def test_recalibrated_statistics_are_the_average_batch_moments():
    model = FlatModel(_net())
    x = torch.randn(96, 4, generator=torch.Generator().manual_seed(1))
    thetas = torch.stack([_theta(model, 2), _theta(model, 3)])
    stats = recalibrate(model, thetas, x, batch_size=32)
    for k in range(2):
        h = _hidden(model, thetas[k], x).reshape(3, 32, 6)  # three batches of 32
        got = model.buffer_layout.unflatten(stats[k])
        torch.testing.assert_close(got["1.running_mean"], h.mean(1).mean(0))
        torch.testing.assert_close(got["1.running_var"], h.var(1, unbiased=True).mean(0))


class _Scaled(nn.Module):
    """BatchNorm beside a float buffer of another kind (a fixed scale, as a positional table)."""

    def __init__(self):
        super().__init__()
        self.net = _net()
        self.register_buffer("scale", torch.tensor([3.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * self.scale


def test_recalibration_keeps_buffers_that_are_not_batchnorm_statistics():
    model = FlatModel(_Scaled())
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
    stats = recalibrate(model, _theta(model, 2)[None], x, batch_size=32)
    assert model.buffer_layout.unflatten(stats[0])["scale"].tolist() == [3.0]


def test_recalibrated_evaluation_uses_each_points_own_statistics():
    net = _net()
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(4))
    y = torch.randint(0, 3, (64,), generator=torch.Generator().manual_seed(5))
    model = FlatModel(net, bn="recalibrate", calibration=x, bn_batch=64)
    obj = Objective(model, x, y, loss="cross_entropy", classification=True)
    thetas = torch.stack([_theta(model, 6), _theta(model, 7)])
    together = obj.evaluate(thetas).loss
    for k in range(2):
        # one batch of all 64 examples: normalizing with the recalibrated statistics equals
        # train-mode BatchNorm except for the biased (train) vs unbiased (stored) variance
        h = _hidden(model, thetas[k], x)
        z = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=True) + 1e-5)
        p = model.layout.unflatten(thetas[k])
        out = torch.relu(z * p["1.weight"] + p["1.bias"]) @ p["3.weight"].T + p["3.bias"]
        expected = nn.functional.cross_entropy(out, y)
        torch.testing.assert_close(together[k], expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(obj.evaluate(thetas[k : k + 1]).loss[0], together[k])


def test_stored_statistics_are_the_given_buffers_and_differ_from_recalibrated():
    net = _net()
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(8))
    y = torch.randint(0, 3, (64,), generator=torch.Generator().manual_seed(9))
    stored = FlatModel(net)  # fresh BatchNorm: mean 0, var 1
    theta = _theta(stored, 10)
    with torch.no_grad():
        manual = nn.functional.cross_entropy(stored.forward(theta, x), y)
    obj = Objective(stored, x, y, loss="cross_entropy", classification=True)
    torch.testing.assert_close(obj.value(theta), manual)
    recal = Objective(
        FlatModel(net, bn="recalibrate", calibration=x), x, y, loss="cross_entropy",
        classification=True,
    )  # fmt: skip
    assert abs(float(recal.value(theta)) - float(manual)) > 1e-3


def test_batch_statistics_do_not_depend_on_the_memory_budget():
    net = _net()
    x = torch.randn(100, 4, generator=torch.Generator().manual_seed(11))
    y = torch.randint(0, 3, (100,), generator=torch.Generator().manual_seed(12))
    theta = _theta(FlatModel(net), 13)
    values = [
        Objective(
            FlatModel(net, bn="batch", bn_batch=25), x, y, loss="cross_entropy",
            classification=True, budget_bytes=budget,
        ).value(theta)
        for budget in (2**10, 2**24)
    ]  # fmt: skip
    torch.testing.assert_close(values[0], values[1])
    # the mean over four batches of 25, each normalized with its own statistics
    model = FlatModel(net, bn="batch")
    parts = [
        nn.functional.cross_entropy(model.forward(theta, x[i : i + 25]), y[i : i + 25])
        for i in range(0, 100, 25)
    ]
    torch.testing.assert_close(values[0], torch.stack(parts).mean())


def test_gradient_under_recalibration_holds_the_statistics_fixed():
    net = _net()
    x = torch.randn(48, 4, generator=torch.Generator().manual_seed(14))
    y = torch.randint(0, 3, (48,), generator=torch.Generator().manual_seed(15))
    model = FlatModel(net, bn="recalibrate", calibration=x)
    obj = Objective(model, x, y, loss="cross_entropy", classification=True)
    theta = _theta(model, 16)
    buffers = model.point_buffers(theta.unsqueeze(0))[0]
    t = theta.clone().requires_grad_()
    nn.functional.cross_entropy(model.forward(t, x, buffers), y).backward()
    torch.testing.assert_close(obj.gradient(theta), t.grad)
    hvp = obj.hvp_operator(theta)
    torch.testing.assert_close(hvp.gradient, t.grad)


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="recalibrate"):
        FlatModel(_net(), bn="running")


@pytest.fixture(scope="module")
def resnet_store(tmp_path_factory):
    base = tiny_config(runs=1, epochs=1, mode="normal")
    cfg = base.__class__(
        data=base.data.__class__(name="digits", subset=128, test_subset=64),
        model=ModelConfig(name="resnet"),
        optim=base.optim,
        train=base.train,
    )
    path = tmp_path_factory.mktemp("bn") / "resnet.h5"
    train_experiment(cfg, path)
    return path


def _parameters(out, measure, key):
    with h5py.File(result_file(out, measure, key), "r") as f:
        return json.loads(f.attrs["parameters"])


def test_analyze_recalibrates_by_default_and_records_the_choice(resnet_store, tmp_path):
    out = tmp_path / "a.h5"
    analyze(resnet_store, out, AnalysisConfig(measures=("gradient",), bn_samples=64))
    params = _parameters(out, "gradient", "normal-000")
    assert params["bn"] == "recalibrate" and params["bn_samples"] == 64
    done = analyze(resnet_store, out, AnalysisConfig(measures=("gradient",), bn="stored"))
    assert done.computed == ["gradient/normal-000"]  # another choice is another result
    assert _parameters(out, "gradient", "normal-000")["bn"] == "stored"


def test_a_model_without_batchnorm_records_none(tmp_path):
    path = tmp_path / "mlp.h5"
    train_experiment(tiny_config(runs=1, epochs=1, mode="normal"), path)
    out = tmp_path / "a.h5"
    analyze(path, out, AnalysisConfig(measures=("gradient",), bn="batch"))
    assert _parameters(out, "gradient", "normal-000")["bn"] == "none"
