"""The flat-parameter evaluator against closed forms (linear least squares)."""

import pytest
import torch
from torch import nn

from landscape.core.flat import FlatModel
from landscape.core.objective import LOOP_MIN_NUMEL, Objective, stack_path
from landscape.errors import ConfigError
from landscape.probe.data import as_source
from tests.foreign_nets import make_resnet


@pytest.fixture
def least_squares(device):
    """Model and data on the device under test; xa, the closed form's design matrix, too."""
    g = torch.Generator().manual_seed(0)
    n, d = 64, 5
    x = torch.randn(n, d, generator=g, dtype=torch.float64).to(device)
    y = torch.randn(n, 1, generator=g, dtype=torch.float64).to(device)
    model = FlatModel(nn.Linear(d, 1).double().to(device))
    xa = torch.cat([x, torch.ones(n, 1, dtype=torch.float64, device=device)], dim=1)
    return model, x, y, xa  # xa: weight columns, then the bias column


def objective(model, x, y, budget):
    return Objective(model, x, y, loss="mse", classification=False, budget_bytes=budget)


@pytest.mark.parametrize("budget", [10**9, 200])  # one chunk, and many small chunks
def test_loss_gradient_hessian_are_exact(least_squares, budget):
    model, x, y, xa = least_squares
    obj = objective(model, x, y, budget)
    theta = torch.linspace(-1, 1, 6, dtype=torch.float64)  # on the CPU: the objective moves it
    r = xa @ theta.to(x.device) - y[:, 0]
    torch.testing.assert_close(obj.value(theta), (r**2).mean())
    torch.testing.assert_close(obj.gradient(theta), 2 / len(x) * xa.T @ r)
    hessian = 2 / len(x) * xa.T @ xa
    v = torch.arange(6, dtype=torch.float64, device=x.device)
    torch.testing.assert_close(obj.hvp_operator(theta)(v), hessian @ v)


def test_minimum_has_zero_gradient(least_squares):
    model, x, y, xa = least_squares
    theta_star = torch.linalg.lstsq(xa, y).solution[:, 0]
    obj = objective(model, x, y, 10**9)
    assert obj.gradient(theta_star).norm() < 1e-10


def test_stack_evaluation_matches_single_points_and_keeps_inputs(least_squares):
    model, x, y, _ = least_squares
    obj = objective(model, x, y, 300)
    thetas = torch.randn(7, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    before = thetas.clone()
    stacked = obj.evaluate(thetas).loss
    single = torch.stack([obj.value(t) for t in thetas])
    torch.testing.assert_close(stacked, single)
    assert torch.equal(thetas, before) and stacked.device == x.device
    assert torch.isnan(obj.evaluate(thetas).acc).all()  # regression has no accuracy


def test_classification_accuracy_and_template_untouched(device):
    template = nn.Linear(2, 3).to(device)
    own = [p.detach().clone() for p in template.parameters()]
    model = FlatModel(template)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]], device=device)
    y = torch.tensor([0, 2], device=device)
    obj = Objective(model, x, y, loss="cross_entropy", classification=True)
    theta = torch.tensor([5.0, 0, 0, 0, 0, 5.0, 0, 0, 0])  # W[0,0] = W[2,1] = 5: x0 -> 0, x1 -> 2
    assert obj.evaluate(theta.unsqueeze(0)).acc.item() == 1.0
    for p, q in zip(template.parameters(), own, strict=True):
        assert torch.equal(p, q)


def _path_problem(net: str) -> tuple[FlatModel, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(40, 3, 8, 8, generator=gen)
    y = torch.randint(0, 4, (40,), generator=gen)
    torch.manual_seed(0)  # the layers' own initialization
    if net == "mlp":
        model = FlatModel(
            nn.Sequential(nn.Flatten(), nn.Linear(192, 16), nn.ReLU(), nn.Linear(16, 4))
        )
    elif net == "conv":
        layers = [nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 4)]
        model = FlatModel(nn.Sequential(*layers))
    else:  # BatchNorm re-estimated at every point: per-point statistics reach each forward
        model = FlatModel(make_resnet(width=4, num_classes=4), bn="recalibrate", calibration=x)
    return model, x, y


@pytest.mark.parametrize("net", ["mlp", "conv", "resnet-recalibrate"])
# in examples' activations: one chunk; points in chunks of 3 (the budget assumes 40 rows
# each); data in chunks of 20 rows (K = 1 per chunk)
@pytest.mark.parametrize("rows", [10**6, 120, 20])
def test_loop_and_vmap_paths_store_the_same_numbers(net, rows):
    model, x, y = _path_problem(net)
    budget = rows * model.activation_numel(x) * 4
    gen = torch.Generator().manual_seed(4)
    theta = torch.cat([p.detach().flatten() for p in model.template.parameters()])
    thetas = theta + 0.5 * torch.randn(6, model.size, generator=gen)
    kw = {"loss": "cross_entropy", "classification": True, "budget_bytes": budget}
    loop = Objective(model, x, y, path="loop", **kw).evaluate(thetas)
    stacked = Objective(model, x, y, path="vmap", **kw).evaluate(thetas)
    torch.testing.assert_close(loop.loss, stacked.loss, rtol=1e-6, atol=0)
    torch.testing.assert_close(loop.acc, stacked.acc, rtol=0, atol=1e-6)
    assert loop.acc.min() < loop.acc.max() or loop.loss.min() < loop.loss.max()  # not constant


class _Wrapped(nn.Module):  # a forward of its own: not a plain MLP, the generic paths run it
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def test_path_auto_loops_over_big_forwards_on_a_cpu_only():
    plain, x, y = _path_problem("mlp")  # Flatten (a view: not computed), 16, 16, 4 per example
    model = FlatModel(_Wrapped(plain.template))
    assert model.activation_numel(x) == 192 + 36 and model.activation_numel(x, views=False) == 36
    assert model.dense is None and plain.dense is not None
    obj = Objective(model, x, y, loss="cross_entropy", classification=True)
    assert obj.path == obj.grad_path == "vmap"  # 40 x 36 numbers per point
    big = Objective(model, x.repeat(200, 1, 1, 1), y.repeat(200), loss="cross_entropy",
                    classification=True)  # fmt: skip
    assert big.path == big.grad_path == "loop"  # 8,000 x 36 >= LOOP_MIN_NUMEL
    assert stack_path(torch.device("cuda"), LOOP_MIN_NUMEL * 100) == "vmap"
    with pytest.raises(ConfigError, match="path 'fast': expected one of auto, vmap, loop, dense"):
        Objective(model, x, y, loss="cross_entropy", classification=True, path="fast")


def test_path_auto_takes_the_dense_forward_for_plain_mlps_on_a_cpu_only():
    model, x, y = _path_problem("mlp")
    kw = {"loss": "cross_entropy", "classification": True}
    small, big = Objective(model, x, y, **kw), Objective(model, x.repeat(200, 1, 1, 1),
                                                         y.repeat(200), **kw)  # fmt: skip
    assert small.path == big.path == "dense"  # any size on a CPU
    assert (small.grad_path, big.grad_path) == ("vmap", "loop")  # gradients: the generic rule
    assert stack_path(torch.device("cuda"), 10**9, dense=True) == "vmap"
    assert stack_path(torch.device("cpu"), 1, dense=True) == "dense"
    with pytest.raises(ConfigError, match="path 'dense' needs a plain MLP template"):
        Objective(FlatModel(_Wrapped(model.template)), x, y, path="dense", **kw)


def test_streamed_batches_give_the_same_numbers_on_both_paths():
    # the loop path takes the data outside and the points inside: each batch is read once
    model, x, y = _path_problem("conv")
    batches = [(x[i : i + 7], y[i : i + 7]) for i in range(0, len(x), 7)]  # a last batch of 5
    passes = []

    class Loader:  # re-iterable, counting the passes over it
        def __iter__(self):
            passes.append(1)
            return iter(batches)

    source = as_source(Loader(), loss="cross_entropy")
    theta = torch.cat([p.detach().flatten() for p in model.template.parameters()])
    thetas = theta + 0.5 * torch.randn(4, model.size, generator=torch.Generator().manual_seed(6))
    kw = {"loss": "cross_entropy", "classification": True}
    whole = Objective(model, x, y, path="vmap", **kw).evaluate(thetas)
    for path in ("vmap", "loop"):
        objective = source.objective(model, path=path, **kw)
        before = len(passes)
        streamed = objective.evaluate(thetas)
        assert len(passes) == before + 1  # one pass for all 4 points
        torch.testing.assert_close(streamed.loss, whole.loss, rtol=1e-6, atol=0)
        torch.testing.assert_close(streamed.acc, whole.acc, rtol=0, atol=1e-6)


@pytest.mark.parametrize("budget", [10**9, 200])
def test_stack_gradients_are_exact_least_squares_gradients(least_squares, budget):
    # the training loop's logging asks for K gradients at once: each is 2/n X^T (X theta - y)
    model, x, y, xa = least_squares
    thetas = torch.randn(5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ev = objective(model, x, y, budget).evaluate(thetas, gradient=True)
    r = thetas.to(x.device) @ xa.T - y[:, 0]  # (K, n) residuals
    torch.testing.assert_close(ev.grad, 2 / len(x) * r @ xa)
    torch.testing.assert_close(ev.loss, (r**2).mean(dim=1))
    assert objective(model, x, y, budget).evaluate(thetas).grad is None  # only when asked


@pytest.mark.parametrize("net", ["mlp", "conv", "resnet-recalibrate"])
def test_stack_gradients_match_one_point_at_a_time_on_both_paths(net):
    model, x, y = _path_problem(net)
    theta = torch.cat([p.detach().flatten() for p in model.template.parameters()])
    thetas = theta + 0.3 * torch.randn(3, model.size, generator=torch.Generator().manual_seed(5))
    kw = {"loss": "cross_entropy", "classification": True, "budget_bytes": 20 * 4 * 10**4}
    for path in ("vmap", "loop"):
        obj = Objective(model, x, y, path=path, **kw)
        stacked = obj.evaluate(thetas, gradient=True)
        single = torch.stack([obj.gradient(t) for t in thetas])
        torch.testing.assert_close(stacked.grad, single, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(stacked.loss, obj.evaluate(thetas).loss, rtol=1e-6, atol=0)


def test_other_targets_score_the_same_forward_as_their_own_objective():
    model, x, y = _path_problem("conv")
    wrong = (y + 1) % 4  # e.g. an overfit run's corrupted test labels
    theta = torch.cat([p.detach().flatten() for p in model.template.parameters()])
    thetas = theta + 0.5 * torch.randn(4, model.size, generator=torch.Generator().manual_seed(7))
    kw = {"loss": "cross_entropy", "classification": True, "budget_bytes": 15 * 4 * 228}
    both = Objective(model, x, y, other_targets={"corrupt": wrong}, **kw).evaluate(thetas)
    alone = Objective(model, x, wrong, **kw).evaluate(thetas)
    loss, acc = both.others["corrupt"]
    torch.testing.assert_close(loss, alone.loss)
    torch.testing.assert_close(acc, alone.acc)
    torch.testing.assert_close(both.loss, Objective(model, x, y, **kw).evaluate(thetas).loss)
    assert (acc + both.acc <= 1 + 1e-6).all()  # a label cannot be both right and wrong


def test_given_buffers_override_the_models_statistics():
    # per-point BatchNorm statistics (e.g. K stacked runs' running ones) reach each forward
    net = make_resnet(width=4, num_classes=4)
    model = FlatModel(net)
    x = torch.randn(12, 3, 8, 8, generator=torch.Generator().manual_seed(8))
    y = torch.arange(12) % 4
    theta = torch.cat([p.detach().flatten() for p in net.parameters()])
    stats = model.buffers.expand(2, -1).clone()
    stats[1, : len(stats[1]) // 2] += 0.5  # the second point's statistics differ
    obj = Objective(model, x, y, loss="cross_entropy", classification=True)
    ev = obj.evaluate(theta.expand(2, -1), stats)
    for k in range(2):
        own = Objective(FlatModel(net, stats[k]), x, y, loss="cross_entropy", classification=True)
        torch.testing.assert_close(ev.loss[k], own.value(theta), rtol=1e-6, atol=0)
    assert ev.loss[0] != ev.loss[1]


@pytest.mark.parametrize("path", ["vmap", "loop"])
def test_outputs_are_each_points_forward(path):
    model, x, y = _path_problem("mlp")
    theta = torch.cat([p.detach().flatten() for p in model.template.parameters()])
    thetas = theta + torch.randn(3, model.size, generator=torch.Generator().manual_seed(9))
    obj = Objective(model, x, y, loss="cross_entropy", classification=True, path=path,
                    budget_bytes=7 * 4 * 228)  # fmt: skip
    out = obj.outputs(thetas)
    assert out.shape == (3, 40, 4)
    scale = out.abs().max()  # float32 sums in another order: rounding relative to the outputs
    for k in range(3):
        torch.testing.assert_close(out[k], model.forward(thetas[k], x), rtol=0, atol=1e-6 * scale)


def test_streamed_data_cannot_carry_other_targets():
    model, x, y = _path_problem("mlp")
    source = as_source([(x[:20], y[:20]), (x[20:], y[20:])], loss="cross_entropy")
    with pytest.raises(ConfigError, match="other target sets need the data in memory"):
        source.objective(model, loss="cross_entropy", classification=True,
                         other_targets={"corrupt": y})  # fmt: skip


def test_mismatched_other_targets_and_buffers_are_clear_errors():
    model, x, y = _path_problem("conv")
    kw = {"loss": "cross_entropy", "classification": True}
    with pytest.raises(ConfigError, match="other target set 'corrupt' has 39 rows, the inputs 40"):
        Objective(model, x, y, other_targets={"corrupt": y[:-1]}, **kw)
    net = make_resnet(width=4, num_classes=4)
    bn_model = FlatModel(net)
    theta = torch.cat([p.detach().flatten() for p in net.parameters()]).expand(2, -1)
    obj = Objective(bn_model, x, y, **kw)
    wrong = bn_model.buffers.expand(3, -1)  # three rows of statistics for two points
    with pytest.raises(ConfigError, match=r"buffers must be one row .* found \(3, "):
        obj.evaluate(theta, wrong)
    with pytest.raises(ConfigError, match="buffers must be one row"):
        obj.outputs(theta, wrong[:, :5])
