"""The dense path: a plain MLP's fused forward against the generic functional_call forward."""

import itertools
import math

import pytest
import torch
from torch import nn

from landscape.core import dense, objective
from landscape.core.batched import accuracy, cross_entropy, first_argmax, shifted_cross_entropy
from landscape.core.dense import dense_plan
from landscape.core.flat import FlatModel
from landscape.core.objective import Objective
from landscape.models import MLP
from landscape.probe.data import as_source

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky": lambda: nn.LeakyReLU(0.2),
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": lambda: nn.ELU(0.7),
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "gelu-tanh": lambda: nn.GELU(approximate="tanh"),
}


def mlp(sizes, act=nn.ReLU, bias=True, flatten=True):
    layers = [nn.Flatten()] if flatten else []
    for a, b in itertools.pairwise(sizes[:-1]):
        layers += [nn.Linear(a, b, bias=bias), act()]
    layers.append(nn.Linear(sizes[-2], sizes[-1], bias=bias))
    return nn.Sequential(*layers)


def points(net, k, seed=0, scale=0.5):
    theta = torch.cat([p.detach().flatten() for p in net.parameters()])
    noise = torch.randn(
        k, len(theta), generator=torch.Generator().manual_seed(seed), dtype=theta.dtype
    )
    return theta + scale * noise


def generic(net, thetas, x):
    """Each point's forward through functional_call: the reference (K, B, C)."""
    model = FlatModel(net)
    return torch.stack([model.forward(t, x) for t in thetas])


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few rows and groups of a few points: every branch with little data."""
    monkeypatch.setattr(dense, "DENSE_BLOCK_BYTES", 4 * 48)
    monkeypatch.setattr(dense, "DENSE_GROUP_WIDTH", 24)


# --- which templates the plan takes ---------------------------------------------------------


def test_plan_reads_the_layers_places_from_the_layout():
    net = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(6, 4), nn.Tanh()), nn.Linear(4, 3))
    plan = dense_plan(net)
    assert plan is not None and plan.flatten
    # names 1.0.weight (24), 1.0.bias (4), 2.weight (12), 2.bias (3)
    assert [(la.weight, la.bias, la.n_in, la.n_out) for la in plan.layers] == [
        (0, 24, 6, 4),
        (28, 40, 4, 3),
    ]
    assert [len(la.activations) for la in plan.layers] == [1, 0]
    assert dense_plan(MLP(64, (32, 16), 10, "leaky_relu")) is not None
    lone = dense_plan(nn.Linear(4, 2, bias=False))  # a lone Linear: its forward is known too
    assert lone is not None and [(la.weight, la.bias) for la in lone.layers] == [(0, None)]


class OwnForward(nn.Sequential):  # a subclass may do anything in forward
    def forward(self, x):
        return super().forward(x) * 2


class LinearPlus(nn.Linear):
    pass


def _shared():
    layer = nn.Linear(4, 4)
    return nn.Sequential(layer, nn.ReLU(), layer)  # named_parameters lists it once


def _hooked():
    net = mlp([4, 8, 2])
    net[1].register_forward_hook(lambda m, i, o: o * 2)
    return net


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2)),
        lambda: nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2)),
        lambda: nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2)),
        lambda: nn.Sequential(nn.Linear(4, 8), nn.Softmax(dim=1)),
        lambda: nn.Sequential(nn.ReLU(), nn.Linear(4, 2)),  # an activation before any Linear
        lambda: nn.Sequential(nn.Linear(4, 8), nn.Flatten(), nn.Linear(8, 2)),
        lambda: nn.Sequential(nn.Flatten(0), nn.Linear(4, 2)),
        lambda: nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5).train(), nn.Linear(8, 2)),
        lambda: OwnForward(nn.Linear(4, 2)),
        lambda: nn.Sequential(LinearPlus(4, 2)),
        _shared,
        _hooked,
        lambda: nn.Sequential(),
    ],
)
def test_plan_refuses_anything_but_a_plain_chain(make):
    assert dense_plan(make()) is None


def test_an_eval_mode_dropout_and_identity_are_skipped():
    net = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Identity(), nn.ReLU(), nn.Linear(8, 2))
    assert dense_plan(net) is None  # in training mode
    plan = dense_plan(net.eval())
    assert plan is not None and len(plan.layers) == 2


# --- the forward against functional_call -----------------------------------------------------


@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("bias", [True, False])
def test_dense_forward_matches_functional_call(act, bias, small_blocks):
    torch.manual_seed(0)
    net = mlp([6, 12, 7, 3], ACTIVATIONS[act], bias=bias)
    x = torch.randn(37, 2, 3, generator=torch.Generator().manual_seed(1))  # flattened: 6
    thetas = points(net, 5)
    plan = dense_plan(net)
    assert plan is not None and plan.accepts(thetas, x)
    out = plan.forward(thetas, x)
    ref = generic(net, thetas, x)
    assert out.shape == ref.shape == (5, 37, 3)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6 * ref.abs().max().item())


@pytest.mark.parametrize("k", [1, 2, 9])  # bias added, folded; one group, several groups
@pytest.mark.parametrize("sizes", [[5, 3], [5, 9, 2], [5, 4, 4, 4, 1]])
def test_dense_forward_is_exact_in_float64(sizes, k, small_blocks):
    torch.manual_seed(2)
    net = mlp(sizes, nn.Tanh, flatten=False).double()
    x = torch.randn(23, sizes[0], dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    thetas = points(net, k)
    out = dense_plan(net).forward(thetas, x)
    torch.testing.assert_close(out, generic(net, thetas, x), rtol=1e-12, atol=1e-12)


def test_dense_forward_with_default_blocks_on_many_examples():
    torch.manual_seed(4)
    net = mlp([8, 300, 10])  # 300 wide: a block of DENSE_BLOCK_BYTES holds fewer rows than 2,000
    x = torch.randn(2000, 8, generator=torch.Generator().manual_seed(5))
    thetas = points(net, 3)
    plan = dense_plan(net)
    assert plan.block_rows(plan.group(3)) < 2000
    ref = generic(net, thetas, x)
    torch.testing.assert_close(plan.forward(thetas, x), ref, rtol=1e-5, atol=1e-5)


def test_inputs_the_plan_does_not_take():
    plan = dense_plan(mlp([6, 4, 2], flatten=False))
    thetas = points(mlp([6, 4, 2]), 2)
    assert plan.accepts(thetas, torch.zeros(3, 6))
    assert not plan.accepts(thetas, torch.zeros(3, 2, 3))  # no Flatten: a Linear on the last dim
    assert not plan.accepts(thetas, torch.zeros(3, 5))
    assert not plan.accepts(thetas, torch.zeros(3, 6, dtype=torch.float64))
    assert not plan.accepts(thetas.long(), torch.zeros(3, 6))


# --- through the Objective -------------------------------------------------------------------


def _classifier():
    torch.manual_seed(6)
    net = MLP(12, (40,), 5, "relu")
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(300, 12, generator=gen)
    y = torch.randint(0, 5, (300,), generator=gen)
    return net, x, y


@pytest.mark.parametrize("budget", [10**9, 60 * 4 * 57])  # one data chunk; chunks of 22 rows
def test_dense_path_stores_the_loop_paths_numbers(budget, small_blocks):
    net, x, y = _classifier()
    model = FlatModel(net)
    thetas = points(net, 7, scale=1.0)
    kw = {"loss": "cross_entropy", "classification": True, "budget_bytes": budget}
    fast = Objective(model, x, y, **kw)
    assert fast.path == "dense"
    got = fast.evaluate(thetas)
    ref = Objective(model, x, y, path="loop", **kw).evaluate(thetas)
    torch.testing.assert_close(got.loss, ref.loss, rtol=1e-6, atol=0)
    # the same hits; chunks of other sizes sum their fractions in another float32 order
    torch.testing.assert_close(got.acc, ref.acc, rtol=0, atol=0 if budget == 10**9 else 1e-6)
    assert got.acc.min() < got.acc.max()  # not constant


def test_dense_path_takes_regression_and_stacked_losses_of_the_callers():
    torch.manual_seed(8)
    net = mlp([3, 16, 16, 2], nn.LeakyReLU, flatten=False)
    gen = torch.Generator().manual_seed(9)
    x, y = torch.randn(50, 3, generator=gen), torch.randn(50, 2, generator=gen)
    thetas = points(net, 4)
    model = FlatModel(net)

    def viewing_mse(out, target):  # views its input: needs the contiguous outputs
        k, b, d = out.shape
        return ((out.view(k, b * d) - target.reshape(k, b * d)) ** 2).mean(dim=1)

    for loss in ("mse", viewing_mse):
        kw = {"loss": loss, "classification": False}
        got = Objective(model, x, y, **kw).evaluate(thetas)
        ref = Objective(model, x, y, path="loop", **kw).evaluate(thetas)
        torch.testing.assert_close(got.loss, ref.loss, rtol=1e-6, atol=0)
        assert torch.isnan(got.acc).all()


def test_dense_path_in_chunks_of_one_point(monkeypatch):
    net, x, y = _classifier()
    model = FlatModel(net)
    thetas = points(net, 5, scale=1.0)
    kw = {"loss": "cross_entropy", "classification": True}
    whole = Objective(model, x, y, **kw).evaluate(thetas)
    monkeypatch.setattr(objective, "DENSE_STACK_BYTES", 1)  # one point per evaluation chunk
    split = Objective(model, x, y, **kw).evaluate(thetas)
    torch.testing.assert_close(split.loss, whole.loss, rtol=1e-6, atol=0)
    assert torch.equal(split.acc, whole.acc)


def test_dense_path_gradients_take_the_generic_forward():
    net, x, y = _classifier()
    model = FlatModel(net)
    kw = {"loss": "cross_entropy", "classification": True}
    obj = Objective(model, x, y, **kw)
    thetas = points(net, 3)
    ev = obj.evaluate(thetas, gradient=True)
    ref = Objective(model, x, y, path="loop", **kw).evaluate(thetas, gradient=True)
    assert obj.path == "dense" and obj.grad_path == "vmap"
    torch.testing.assert_close(ev.grad, ref.grad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(ev.loss, obj.evaluate(thetas).loss, rtol=1e-6, atol=0)


def test_dense_path_outputs_are_each_points_forward():
    net, x, y = _classifier()
    model = FlatModel(net)
    thetas = points(net, 3)
    out = Objective(model, x, y, loss="cross_entropy", classification=True).outputs(thetas)
    assert out.shape == (3, 300, 5) and out.is_contiguous()
    for k in range(3):
        torch.testing.assert_close(out[k], model.forward(thetas[k], x), rtol=1e-5, atol=1e-5)


def test_dense_path_reads_no_module_parameters_and_writes_none():
    net, x, y = _classifier()
    model = FlatModel(net)
    thetas = points(net, 4)
    kw = {"loss": "cross_entropy", "classification": True}
    before = Objective(model, x, y, **kw).evaluate(thetas)
    own = [p.detach().clone() for p in net.parameters()]
    with torch.no_grad():  # the private copy's parameters are never what it evaluates
        for p in model.template.parameters():
            p.fill_(math.nan)
    after = Objective(model, x, y, **kw).evaluate(thetas)
    assert torch.equal(before.loss, after.loss) and torch.equal(before.acc, after.acc)
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), own, strict=True))


def test_streamed_batches_on_the_dense_path():
    net, x, y = _classifier()
    model = FlatModel(net)
    thetas = points(net, 4)
    kw = {"loss": "cross_entropy", "classification": True}
    batches = [(x[i : i + 64], y[i : i + 64]) for i in range(0, len(x), 64)]
    stream = as_source(batches, loss="cross_entropy").objective(model, **kw)
    assert stream.path == "dense"
    streamed = stream.evaluate(thetas)
    whole = Objective(model, x, y, path="loop", **kw).evaluate(thetas)
    torch.testing.assert_close(streamed.loss, whole.loss, rtol=1e-6, atol=0)
    torch.testing.assert_close(streamed.acc, whole.acc, rtol=0, atol=1e-6)


# --- the losses on class-major logits ----------------------------------------------------------


def test_first_argmax_is_argmax_with_ties_infinities_and_nans():
    nan, inf = math.nan, math.inf
    z = torch.tensor(
        [
            [1.0, nan, 3.0, nan],
            [inf, 2.0, inf, 0.0],
            [-inf, -inf, -inf, -inf],
            [1.0, 1.0, 0.0, 0.0],
            [0.0, -inf, nan, inf],
            [-0.0, 0.0, -1.0, -1.0],
        ]
    )
    assert first_argmax(z).tolist() == z.argmax(dim=-1).tolist() == [1, 0, 0, 0, 2, 0]
    ties = torch.randn(6, 50, 300, generator=torch.Generator().manual_seed(10)).round()
    assert torch.equal(first_argmax(ties), ties.argmax(dim=-1))  # 300 classes: int32 ranks


def test_accuracy_of_class_major_logits_equals_argmax_hits():
    gen = torch.Generator().manual_seed(11)
    z = torch.randn(4, 10, 200, generator=gen).round().transpose(1, 2)  # (K, B, C), ties
    y = torch.randint(0, 10, (4, 200), generator=gen)
    assert z.stride(-1) != 1
    expected = (z.contiguous().argmax(dim=-1) == y).float().mean(dim=1)
    assert torch.equal(accuracy(z, y), expected)


def test_cross_entropy_of_spread_logits_is_the_reference():
    # gaps far beyond exp's float32 range (the floor's case), in both layouts
    gen = torch.Generator().manual_seed(12)
    z = 80 * torch.randn(3, 10, 400, generator=gen)
    y = torch.randint(0, 10, (3, 400), generator=gen)
    exact = (
        nn.functional.cross_entropy(
            z.double().transpose(1, 2).reshape(-1, 10), y.reshape(-1), reduction="none"
        )
        .reshape(3, 400)
        .mean(dim=1)
    )
    for logits in (z.transpose(1, 2), z.transpose(1, 2).contiguous()):
        with torch.no_grad():
            got = cross_entropy(logits, y)
        torch.testing.assert_close(got.double(), exact, rtol=1e-6, atol=0)
        leaf = logits.clone().requires_grad_()  # the graph's formula gives the same numbers
        assert torch.equal(shifted_cross_entropy(leaf, y).detach(), got)


def test_cross_entropy_known_answers():
    z = torch.tensor([[[2.0, 0.0], [0.0, 1000.0], [0.0, -200.0]]])  # K=1, B=3
    with torch.no_grad():
        got = cross_entropy(z, torch.tensor([[0, 1, 1]]))
    # (log(1 + e^-2) + 0 + 200) / 3: the confident middle example contributes 0
    expected = (math.log1p(math.exp(-2.0)) + 200.0) / 3
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_one_point_at_a_time_gives_the_generic_forward_bit_for_bit(monkeypatch):
    # a first layer at least DENSE_GROUP_WIDTH wide: one point per group, every product as
    # F.linear makes it (the first layer's bias folded in is the same sum), in row blocks
    monkeypatch.setattr(dense, "DENSE_BLOCK_BYTES", 2**17)
    torch.manual_seed(13)
    net = mlp([64, 300, 40, 10])
    x = torch.randn(1297, 64, generator=torch.Generator().manual_seed(14))
    thetas = points(net, 3)
    plan = dense_plan(net)
    assert plan.group(3) == 1 and plan.block_rows(1) < 1297
    out = plan.forward(thetas, x)
    assert out.is_contiguous() and torch.equal(out, generic(net, thetas, x))
    # row-major outputs: the losses reduce them as the loop path's, so the evaluations agree too
    y = torch.randint(0, 10, (1297,), generator=torch.Generator().manual_seed(15))
    kw = {"loss": "cross_entropy", "classification": True}
    got = Objective(FlatModel(net), x, y, path="dense", **kw).evaluate(thetas)
    ref = Objective(FlatModel(net), x, y, path="loop", **kw).evaluate(thetas)
    assert torch.equal(got.loss, ref.loss) and torch.equal(got.acc, ref.acc)


def test_a_declared_chain_is_not_inherited_by_a_subclass_with_its_own_forward():
    # models.MLP declares DENSE_CHAIN = "net"; a subclass whose forward differs must not be
    # evaluated as that chain (it would silently drop the subclass's doubling)
    class Doubled(MLP):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * self.net(x)

    assert dense_plan(MLP(4, (3,), 2, "relu")) is not None
    assert dense_plan(Doubled(4, (3,), 2, "relu")) is None
