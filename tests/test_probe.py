"""`landscape.Probe` on closed-form problems, batched data, BatchNorm, a caller's own loss, bad
input, and the caller's module left exactly as it was by every method."""

from __future__ import annotations

import copy
import gc
import weakref

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import landscape as ls
from landscape.core.flat import FlatModel
from landscape.errors import ConfigError, DataError, LandscapeError

F64 = torch.float64


# -- a quadratic: L(w) = mean((X w - y)^2), H = 2/N X^T X, grad = 2/N X^T (X w - y) -----------


def _quadratic(n: int = 40, d: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=F64)
    y = torch.randn(n, 1, generator=g, dtype=F64)
    net = nn.Linear(d, 1, bias=False).double()
    with torch.no_grad():
        net.weight.copy_(torch.randn(1, d, generator=g, dtype=F64))
    return net, x, y


def test_hessian_of_a_quadratic_is_2_over_n_xtx():
    net, x, y = _quadratic()
    r = ls.Probe(net, data=(x, y), loss="mse").hessian(k=3)
    exact = np.linalg.eigvalsh((2 / len(x) * x.T @ x).numpy())[::-1][:3]
    np.testing.assert_allclose(r.eigenvalues, exact, rtol=1e-9)
    assert (r.residuals < 1e-6).all()
    assert r.units["eigenvalues"] == "loss / parameter^2"


def test_trace_of_a_diagonal_hessian_is_exact_for_every_rademacher_sample():
    # orthogonal columns: H = 2/N X^T X is diagonal, so v^T H v = tr(H) for every v of +-1
    q, _ = torch.linalg.qr(
        torch.randn(30, 5, generator=torch.Generator().manual_seed(1), dtype=F64)
    )
    x = q * torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=F64)
    net, y = nn.Linear(5, 1, bias=False).double(), torch.zeros(30, 1, dtype=F64)
    r = ls.Probe(net, data=(x, y), loss="mse").trace(n_samples=8)
    exact = 2 / 30 * float((x**2).sum())
    np.testing.assert_allclose(r.samples, exact, rtol=1e-12)
    assert float(r.trace) == pytest.approx(exact, rel=1e-12) and float(r.std_error) < 1e-12


def test_gradient_norm_matches_the_closed_form_and_autograd():
    net, x, y = _quadratic()
    xt, yt = x[:10] * 2, y[:10]
    r = ls.Probe(net, data=(x, y), loss="mse", test=(xt, yt)).gradient_norm()
    w = net.weight.detach().T
    exact = torch.linalg.vector_norm(2 / len(x) * x.T @ (x @ w - y))
    twin = copy.deepcopy(net)
    nn.functional.mse_loss(twin(xt), yt).backward()
    assert float(r.train_grad_norm[0]) == pytest.approx(float(exact), rel=1e-12)
    assert float(r.test_grad_norm[0]) == pytest.approx(float(twin.weight.grad.norm()), rel=1e-12)


def test_interpolation_between_two_points_is_the_closed_form_loss_on_the_line():
    net, x, y = _quadratic()
    other, _, _ = _quadratic(seed=5)
    r = ls.Probe(net, data=(x, y), loss="mse").interpolate(other, alpha_points=9)
    a, b = net.weight.detach().T, other.weight.detach().T
    exact = [float(((x @ ((1 - t) * a + t * b) - y) ** 2).mean()) for t in r.alpha]
    np.testing.assert_allclose(r.train_loss, exact, rtol=1e-12)
    assert r.alpha[0] == -0.5 and r.alpha[-1] == 1.5 and np.isnan(r.train_acc).all()
    # the loss on a line is a parabola: no barrier above the chord
    assert r.attrs["barrier_train_loss"] <= 1e-12
    # its largest rise is the climb from the parabola's lowest point in [0, 1] to the end
    inside = [v for t, v in zip(r.alpha, exact, strict=True) if 0 <= t <= 1]
    climb = max(v - min(inside[: i + 1]) for i, v in enumerate(inside))
    assert r.attrs["rise_train_loss"] == pytest.approx(climb, rel=1e-12, abs=1e-15)
    assert "barrier_train_error" not in r.attrs  # regression: no error, no error barrier


# -- batches: a DataLoader gives the full-batch numbers ----------------------------------------


def _mlp(dtype=torch.float32) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 12), nn.Tanh(), nn.Linear(12, 3)).to(dtype)


def _labels(n: int, dtype=torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 5, generator=g).to(dtype), torch.randint(0, 3, (n,), generator=g)


def _three(probe: ls.Probe) -> np.ndarray:
    """Training loss, gradient norm and top Hessian eigenvalue at the probe's point."""
    loss = float(probe.objectives()["train"].value(probe.theta))
    grad = float(probe.gradient_norm().train_grad_norm[0])
    return np.array([loss, grad, float(probe.hessian(k=1, seed=3).eigenvalues[0])])


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_a_dataloader_gives_the_full_batch_loss_gradient_and_top_eigenvalue(dtype):
    net, (x, y) = _mlp(dtype), _labels(53, dtype)
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=False)  # last batch of 5
    full = _three(ls.Probe(net, data=(x, y)))
    np.testing.assert_allclose(_three(ls.Probe(net, data=loader)), full, rtol=1e-6)
    listed = [(x[i : i + 20], y[i : i + 20]) for i in range(0, 53, 20)]  # a list of batches too
    np.testing.assert_allclose(_three(ls.Probe(net, data=listed)), full, rtol=1e-6)


# -- BatchNorm, Dropout, a caller's own loss ---------------------------------------------------


def _bn_net() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def test_batchnorm_statistics_follow_bn_as_in_the_cli():
    net, (x, y) = _bn_net(), _labels(64)
    with torch.no_grad():  # running statistics that differ from this data's
        net[1].running_mean.fill_(0.3)
        net[1].running_var.fill_(2.0)

    def value(bn: str) -> float:
        probe = ls.Probe(net, data=(x, y), bn=bn, bn_batch=64, bn_samples=64)
        return float(probe.objectives()["train"].value(probe.theta))

    twin = copy.deepcopy(net)
    with torch.no_grad():
        stored = float(nn.functional.cross_entropy(twin.eval()(x), y))
        batch = float(nn.functional.cross_entropy(twin.train()(x), y))
    assert value("stored") == pytest.approx(stored, rel=1e-6)
    assert value("batch") == pytest.approx(batch, rel=1e-6)  # one batch of all 64: train mode
    recalibrated = value("recalibrate")  # the batch's moments, variance unbiased (n - 1)
    assert recalibrated == pytest.approx(batch, rel=1e-3) and recalibrated != value("stored")


def test_dropout_is_off_in_every_measure():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3)).train()
    x, y = _labels(32)
    probe = ls.Probe(net, data=(x, y))
    with torch.no_grad():
        eval_loss = float(nn.functional.cross_entropy(copy.deepcopy(net).eval()(x), y))
    assert float(probe.epsilon_sharpness().base_loss) == pytest.approx(eval_loss, rel=1e-6)


def test_a_loss_callable_gives_the_named_losses_numbers():
    net, (x, y) = _mlp(), _labels(40)
    named = ls.Probe(net, data=(x, y)).hessian(k=2)
    own = ls.Probe(net, data=(x, y), loss=lambda out, t: nn.functional.cross_entropy(out, t))
    r = own.hessian(k=2)
    np.testing.assert_allclose(r.eigenvalues, named.eigenvalues, rtol=1e-5)
    assert own.classification and r.units["eigenvalues"] == "loss / parameter^2"


class _TinyLM(nn.Module):
    """Next-token logits (B, T, V) from token ids (B, T): a head the named losses do not fit."""

    def __init__(self) -> None:
        super().__init__()
        self.embed, self.head = nn.Embedding(7, 4), nn.Linear(4, 7)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.embed(tokens)))


def test_a_language_model_loss_on_token_sequences():
    torch.manual_seed(4)
    tokens = torch.randint(0, 7, (12, 6), generator=torch.Generator().manual_seed(4))

    def next_token(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits.reshape(-1, 7), targets.reshape(-1))

    net = _TinyLM()
    probe = ls.Probe(net, data=(tokens[:, :-1], tokens[:, 1:]), loss=next_token)
    twin = copy.deepcopy(net)
    next_token(twin(tokens[:, :-1]), tokens[:, 1:]).backward()
    expected = torch.cat([p.grad.flatten() for p in twin.parameters()]).norm()
    r = probe.gradient_norm()
    assert float(r.train_grad_norm[0]) == pytest.approx(float(expected), rel=1e-5)
    assert not probe.classification and r.attrs["parameters"].count("next_token") == 1


def test_same_seed_same_numbers_and_a_generator_is_a_seed():
    net, (x, y) = _mlp(), _labels(30)
    probe = ls.Probe(net, data=(x, y))
    a, b = probe.surface2d(grid=3, seed=4), probe.surface2d(grid=3, seed=4)
    c = probe.surface2d(grid=3, generator=torch.Generator().manual_seed(4))
    np.testing.assert_array_equal(a.train_loss, b.train_loss)
    np.testing.assert_array_equal(a.direction_x, c.direction_x)
    assert not np.array_equal(a.direction_x, probe.surface2d(grid=3, seed=5).direction_x)


# -- the caller's module and tensors are never modified ------------------------------------------


METHODS = {
    "hessian": lambda p, other: p.hessian(k=2),
    "trace": lambda p, other: p.trace(n_samples=3),
    "gradient_norm": lambda p, other: p.gradient_norm(),
    "surface2d": lambda p, other: p.surface2d(grid=3),
    "interpolate": lambda p, other: p.interpolate(other, alpha_points=5),
    "epsilon_sharpness": lambda p, other: p.epsilon_sharpness(1e-3),
    "restart": lambda p, other: p.restart("sgd", init=other, alpha_points=5),
    "curve": lambda p, other: p.curve(other, epochs=2, batch_size=8, alpha_points=5),
    "objectives": lambda p, other: p.objectives()["train"].value(p.theta),
}


def _fingerprint(net: nn.Module, *tensors: torch.Tensor) -> dict:
    return {
        "state": {k: v.clone() for k, v in net.state_dict().items()},
        "requires_grad": [p.requires_grad for p in net.parameters()],
        "training": [m.training for m in net.modules()],
        "dict": sorted(net.__dict__),
        "modules_dict": [sorted(m.__dict__) for m in net.modules()],
        "hooks": [len(m._forward_hooks) for m in net.modules()],
        "tensors": [(t.data_ptr(), t.clone()) for t in tensors],
    }


def _same(a: dict, b: dict) -> bool:
    states = all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])
    tensors = all(
        p == q and torch.equal(s, t)
        for (p, s), (q, t) in zip(a["tensors"], b["tensors"], strict=True)
    )
    rest = all(a[k] == b[k] for k in ("requires_grad", "training", "dict", "modules_dict", "hooks"))
    return states and tensors and rest and a["state"].keys() == b["state"].keys()


@pytest.mark.parametrize("method", sorted(METHODS))
def test_no_method_modifies_the_callers_module_or_tensors(method):
    torch.manual_seed(3)
    layers = [nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 3)]
    net, other = nn.Sequential(*layers).train(), copy.deepcopy(nn.Sequential(*layers))
    net[0].bias.requires_grad_(False)  # a frozen parameter stays frozen
    (x, y), (xt, yt) = _labels(24), _labels(12, seed=1)
    before = _fingerprint(net, x, y, xt, yt)
    METHODS[method](ls.Probe(net, data=(x, y), test=(xt, yt), bn_samples=24), other)
    assert _same(before, _fingerprint(net, x, y, xt, yt))


def test_flat_model_keeps_its_copies_off_the_module_and_lets_it_go():
    net = _bn_net().train()
    keys = sorted(net.__dict__)
    model = FlatModel(net, bn="batch")
    assert model.template is not net and not model.template.training
    assert sorted(net.__dict__) == keys and net.training
    assert all(p.requires_grad for p in net.parameters())
    gone = weakref.ref(net)
    del net
    gc.collect()
    assert gone() is None  # the cache holds the module weakly


def test_device_moves_a_private_copy(device):
    # BatchNorm recalibrated at the point, CPU batches streamed to the device one at a time
    net, (x, y) = _bn_net(), _labels(40)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    here = ls.Probe(net, data=loader, bn_samples=40)
    there = ls.Probe(net, data=loader, bn_samples=40, device=device)
    assert there.theta.device.type == device.type and next(net.parameters()).device.type == "cpu"
    pairs = [(p.gradient_norm(), p.hessian(k=2)) for p in (there, here)]
    for ours, theirs in zip(*pairs, strict=True):
        for name in ours.names:
            np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-4)


# -- bad input: a LandscapeError that says where, what was expected, what was found -------------


def _nan_net() -> nn.Module:
    net = _mlp()
    with torch.no_grad():
        net[0].weight[0, 0] = float("nan")
    return net


X4, Y4 = _labels(4)


def _probe(model: nn.Module | None = None, data: object = (X4, Y4), **kwargs: object) -> ls.Probe:
    return ls.Probe(_mlp() if model is None else model, data=data, **kwargs)


def _shuffled() -> DataLoader:
    return DataLoader(TensorDataset(X4, Y4), shuffle=True)


BAD = [
    ("not a module", lambda: ls.Probe({"w": 1}, data=(X4, Y4)), ConfigError, "nn.Module"),
    ("x/y lengths", lambda: _probe(data=(X4, Y4[:3])), ConfigError, r"x \(4, 5\) and y \(3,\)"),
    ("float labels", lambda: _probe(data=(X4, Y4.float())), ConfigError, "integer class labels"),
    ("empty", lambda: _probe(data=(X4[:0], Y4[:0])), DataError, "at least one example"),
    ("empty loader", lambda: _probe(data=[]), DataError, "at least one example"),
    ("nan", lambda: _probe(_nan_net()), ConfigError, "NaN or inf in 0.weight"),
    ("one-shot", lambda: _probe(data=iter([(X4, Y4)])), ConfigError, "re-iterable"),
    ("shuffled", lambda: _probe(data=_shuffled()), ConfigError, "shuffle=False"),
    ("non-scalar", lambda: _probe(loss=lambda o, t: o.sum(1)), ConfigError, r"shape \(2,\)"),
    ("unknown loss", lambda: _probe(loss="hinge"), ConfigError, "cross_entropy, mse"),
    ("mse shapes", lambda: _probe(nn.Linear(5, 1), loss="mse"), ConfigError, "floating targets"),
    ("broadcast", lambda: _probe(nn.Linear(5, 1), data=(X4, X4[:, 0]), loss="mse"), ConfigError,
     "would broadcast"),
    ("inputs", lambda: _probe(data=(X4[:, :3], Y4)), ConfigError, r"inputs \(2, 3\)"),
    ("bn", lambda: _probe(_bn_net(), bn="running"), ConfigError, "stored, recalibrate, batch"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "kind", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input_raises_a_landscape_error_that_says_what_was_found(make, kind, message):
    with pytest.raises(kind, match=message) as info:
        make()
    assert isinstance(info.value, LandscapeError) and "expected" in str(info.value)


def test_bad_method_arguments_are_refused():
    probe = ls.Probe(_mlp(), data=_labels(8))
    with pytest.raises(ConfigError, match="odd"):
        probe.surface2d(grid=4)
    with pytest.raises(ConfigError, match="same architecture"):
        probe.interpolate(nn.Linear(5, 3))
    with pytest.raises(ConfigError, match="sgd, sgd-paper, adam-full"):
        probe.restart("lbfgs")
    with pytest.raises(ConfigError, match="either seed= or generator="):
        probe.hessian(seed=1, generator=torch.Generator())
    with pytest.raises(ConfigError, match=r"Probe.curve: epochs=0: expected an integer >= 1"):
        probe.curve(_mlp(), epochs=0)
    with pytest.raises(ConfigError, match=r"Probe.curve: optimizer='lbfgs': expected one of"):
        probe.curve(_mlp(), optimizer="lbfgs")
    loader = DataLoader(TensorDataset(*_labels(8)), batch_size=4)
    with pytest.raises(ConfigError, match="data as tensors"):
        ls.Probe(_mlp(), data=loader).restart()


def test_curve_joins_the_two_points_and_beats_or_equals_the_line():
    """Probe.curve: the curve's ends are the two points (its loss there is the line's), a
    trained bend does not raise the barrier above the straight line's, and one seed gives
    one curve."""
    net = _mlp()
    torch.manual_seed(1)
    other = nn.Sequential(nn.Linear(5, 12), nn.Tanh(), nn.Linear(12, 3))
    (x, y), (xt, yt) = _labels(40), _labels(20, seed=1)
    probe = ls.Probe(net, data=(x, y), test=(xt, yt))
    r = probe.curve(other, epochs=20, batch_size=10, lr=1e-2, alpha_points=9, seed=3)
    np.testing.assert_allclose(r.curve_train_loss[[0, -1]], r.line_train_loss[[0, -1]], rtol=1e-5)
    assert r.attrs["curve_barrier_train_loss"] <= r.attrs["line_barrier_train_loss"] + 1e-6
    assert r.mid_train_loss[-1] < r.mid_train_loss[0]  # the bend was trained
    again = probe.curve(other, epochs=20, batch_size=10, lr=1e-2, alpha_points=9, seed=3)
    np.testing.assert_array_equal(r.bend, again.bend)
    assert r.curve_test_loss.shape == (9,) and "train loss barrier: curve" in r.attrs["headline"]
    assert r.plot().axes  # drawn: both paths on train and test
