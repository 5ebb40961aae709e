"""Slices and interpolation, checked against closed forms on least squares (a quadratic)."""

import math

import pytest
import torch
from torch import nn

from landscape.core.flat import FlatModel
from landscape.core.objective import Objective
from landscape.errors import ConfigError
from landscape.measures.slices import (
    barrier_height,
    default_alphas,
    error_barrier,
    grid_coordinates,
    interpolate,
    largest_rise,
    surface_1d,
    surface_2d,
    surface_2d_rows,
)


def regression(device: torch.device | str = "cpu") -> tuple[Objective, torch.Tensor]:
    """MSE of y = x w + b on 30 points (float64): L(theta) is an exact quadratic.

    The data and model live on `device`, theta on the CPU (as a stored run's points do when
    `landscape analyze` evaluates them on a GPU)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(30, 3, dtype=torch.float64, generator=gen)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64) + 0.3
    model = FlatModel(nn.Linear(3, 1).double().to(device))
    objective = Objective(model, x.to(device), y.to(device), loss="mse", classification=False)
    return objective, torch.randn(model.size, dtype=torch.float64, generator=gen)


def residuals(objective: Objective, theta: torch.Tensor) -> torch.Tensor:
    """x w + b - y (30,) for theta = [w (3,), b] on the CPU; the quadratic's building block."""
    x, y = objective.x.cpu(), objective.y.cpu()
    return (x @ theta[:3] + theta[3] - y[:, 0]).double()


def parabola(objective: Objective, theta: torch.Tensor, d: torch.Tensor, t: torch.Tensor):
    """Closed form L(theta + t d) = mean(r^2) + 2 t mean(r s) + t^2 mean(s^2), on the CPU."""
    r = residuals(objective, theta)
    s = objective.x.cpu() @ d[:3] + d[3]
    return (r**2).mean() + 2 * t * (r * s).mean() + t**2 * (s**2).mean()


def classifier(device: torch.device | str = "cpu") -> tuple[Objective, torch.Tensor]:
    """A small MLP classifier with data on `device`; theta on the CPU."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(40, 4, generator=gen)
    model = FlatModel(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).to(device))
    y = (x[:, 0] > 0).long()
    objective = Objective(
        model, x.to(device), y.to(device), loss="cross_entropy", classification=True
    )
    return objective, torch.randn(model.size, generator=gen)


class Recording:
    """Wraps an Objective and records every stack it is asked to evaluate."""

    def __init__(self, objective: Objective):
        self.objective, self.model, self.calls = objective, objective.model, []

    def evaluate(self, thetas: torch.Tensor):
        self.calls.append(thetas.clone())
        return self.objective.evaluate(thetas)


def test_grid_is_symmetric_with_zero_at_the_centre():
    grid = grid_coordinates(21, 2.0)
    assert grid.shape == (21,) and grid[10].item() == 0.0
    assert torch.equal(grid, -grid.flip(0))
    assert grid[0].item() == -2.0 and grid[-1].item() == 2.0  # span multiplies, not divides
    torch.testing.assert_close(grid.diff(), torch.full((20,), 0.2, dtype=torch.float64))


@pytest.mark.parametrize(("n", "fix"), [(20, "use n=21"), (1, "use n=3"), (2.0, "use n=3")])
def test_even_grid_raises_with_the_fix(n, fix):
    with pytest.raises(ConfigError, match=fix):
        grid_coordinates(n, 1.0)
    with pytest.raises(ConfigError, match="span"):
        grid_coordinates(5, -1.0)


def test_default_alphas_hold_zero_and_one_exactly():
    alphas = default_alphas()
    assert alphas.shape == (41,) and alphas[0].item() == -0.5 and alphas[-1].item() == 1.5
    assert alphas[10].item() == 0.0 and alphas[30].item() == 1.0
    torch.testing.assert_close(alphas.diff(), torch.full((40,), 0.05, dtype=torch.float64))
    assert (default_alphas(7, lo=0.0, hi=1.0) == torch.arange(7, dtype=torch.float64) / 6).all()
    with pytest.raises(ConfigError, match="use n=41"):
        default_alphas(40)
    with pytest.raises(ConfigError, match="hi >= 1"):
        default_alphas(41, lo=0.0, hi=0.5)


def test_surface_1d_on_a_quadratic_is_the_closed_form_parabola(device):
    objective, theta = regression(device)
    d = torch.randn(theta.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    coords = grid_coordinates(11, 1.5)
    line = surface_1d(objective, theta, d, coords)
    assert line.loss.device == objective.x.device
    torch.testing.assert_close(line.loss.cpu(), parabola(objective, theta, d, coords))
    assert torch.equal(line.xcoordinates, coords) and line.acc.isnan().all()


def test_interpolation_endpoints_equal_evaluate_and_inputs_stay(device):
    objective, a = regression(device)
    b = a + 1.0
    before = (a.clone(), b.clone())
    path = interpolate(objective, a, b, default_alphas(7, lo=-0.25, hi=1.25))
    ends = objective.evaluate(torch.stack([a, b])).loss
    torch.testing.assert_close(path.loss[[1, 5]], ends, rtol=1e-12, atol=0)
    torch.testing.assert_close(path.loss.cpu(), parabola(objective, a, b - a, path.xcoordinates))
    assert torch.equal(a, before[0]) and torch.equal(b, before[1])


def test_interpolation_puts_a_and_b_on_the_path_bit_for_bit():
    objective, a = regression()
    recording = Recording(objective)
    interpolate(recording, a, -a, torch.tensor([0.0, 0.5, 1.0]))
    (stack,) = recording.calls
    assert torch.equal(stack[0], a) and torch.equal(stack[2], -a)


def test_barrier_of_a_convex_path_is_zero():
    objective, a = regression()
    alphas = default_alphas()
    path = interpolate(objective, a, -3 * a, alphas)
    assert 0.0 <= barrier_height(alphas, path.loss) <= 1e-12


def test_barrier_is_the_bump_height():
    alphas = default_alphas()
    chord = 2.0 + alphas
    bump = 0.7 * 4 * alphas * (1 - alphas)
    losses = torch.where((alphas >= 0) & (alphas <= 1), chord + bump, torch.tensor(1e6).double())
    assert barrier_height(alphas, losses) == pytest.approx(0.7, abs=1e-12)  # outside ignored


def test_barrier_of_a_two_layer_scalar_net_is_mean_x_squared():
    """y = w2 w1 x fits y = x at (1, 1) and (-1, -1); the midpoint (0, 0) predicts 0."""
    x = torch.linspace(-1, 1, 21, dtype=torch.float64)[:, None]
    model = FlatModel(nn.Sequential(nn.Linear(1, 1, bias=False), nn.Linear(1, 1, bias=False)))
    model.template.double()
    objective = Objective(model, x, x, loss="mse", classification=False)
    alphas = default_alphas()
    ones = torch.ones(2, dtype=torch.float64)
    path = interpolate(objective, ones, -ones, alphas)
    assert barrier_height(alphas, path.loss) == pytest.approx((x**2).mean().item(), rel=1e-12)


def test_barrier_shows_nan_and_needs_both_endpoints():
    alphas = default_alphas(5, lo=-0.5, hi=1.5)
    assert math.isnan(barrier_height(alphas, torch.tensor([0.0, 1.0, math.nan, 1.0, 0.0])))
    with pytest.raises(ConfigError, match=r"alpha 1\.0 exactly"):
        barrier_height(torch.tensor([0.0, 0.5, 0.99]), torch.zeros(3))


def test_a_strictly_falling_path_has_no_rise_though_it_lies_above_its_chord():
    """The issue's init -> final path: 2.363 -> 0.115, strictly falling, concave. Its chord
    gap (Entezari's loss barrier) is (2.363 - 0.115) / 4 at alpha 0.5; its largest rise is 0."""
    alphas = default_alphas()
    losses = 2.363 - (2.363 - 0.115) * alphas**2  # falls on [0, 1], rises for alpha < 0
    assert largest_rise(alphas, losses) == 0.0
    assert barrier_height(alphas, losses) == pytest.approx((2.363 - 0.115) / 4, abs=1e-12)


def test_largest_rise_after_a_dip_is_the_climb_out_of_it():
    """cos(2 pi alpha) falls from 1 to -1 at alpha 0.5 and climbs back to 1: a rise of 2;
    the path read the other way round climbs the same 2. Values outside [0, 1] are ignored."""
    alphas = default_alphas()
    losses = torch.where(
        (alphas >= 0) & (alphas <= 1), torch.cos(2 * math.pi * alphas), torch.tensor(1e6).double()
    )
    assert largest_rise(alphas, losses) == pytest.approx(2.0, abs=1e-12)
    assert largest_rise(alphas, losses.flip(0)) == pytest.approx(2.0, abs=1e-12)


def test_largest_rise_follows_the_order_of_alpha():
    """Losses 3, 1, 2, 0.5, 1.1: climbs of 1 (1 -> 2) and 0.6 (0.5 -> 1.1), never 3 - 0.5
    (a fall); reversed, 1.1, 0.5, 2, 1, 3 climbs 2.5 (0.5 -> 3). Unsorted alphas are sorted."""
    alphas = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64)
    losses = torch.tensor([3.0, 1.0, 2.0, 0.5, 1.1], dtype=torch.float64)
    assert largest_rise(alphas, losses) == pytest.approx(1.0, abs=1e-12)
    assert largest_rise(alphas, losses.flip(0)) == pytest.approx(2.5, abs=1e-12)
    shuffled = torch.tensor([3, 0, 4, 1, 2])
    assert largest_rise(alphas[shuffled], losses[shuffled]) == pytest.approx(1.0, abs=1e-12)
    assert math.isnan(largest_rise(alphas, torch.tensor([3.0, 1.0, math.nan, 0.5, 1.1])))


def test_error_barrier_is_the_error_above_the_endpoints_mean():
    """Accuracies 0.98 and 0.90 at the ends, 0.40 at alpha 0.5: errors 0.02, 0.10 and 0.60, so
    Frankle et al.'s barrier is 0.60 - 0.06 = 0.54 (the loss barrier's chord plays no part)."""
    alphas = default_alphas(5, lo=-0.5, hi=1.5)
    accs = torch.tensor([0.0, 0.98, 0.40, 0.90, 0.0], dtype=torch.float64)  # outside ignored
    assert error_barrier(alphas, accs) == pytest.approx(0.54, abs=1e-12)


def test_error_barrier_of_a_stable_pair_is_half_the_endpoints_gap():
    """Accuracy linear from 0.9 to 0.7: the worst point is the end with error 0.3, which lies
    0.1 above the mean error 0.2 (the endpoints alone give |err(0) - err(1)| / 2)."""
    alphas = default_alphas()
    accs = 0.9 - 0.2 * alphas.clamp(0, 1)
    assert error_barrier(alphas, accs) == pytest.approx(0.1, abs=1e-12)
    assert math.isnan(error_barrier(alphas, torch.full_like(alphas, math.nan)))  # regression
    with pytest.raises(ConfigError, match="expected accs of the alphas' shape"):
        error_barrier(alphas, accs[:-1])


def test_line_attrs_names_each_quantity_and_leaves_out_the_error_of_a_regression():
    from landscape.measures.common import line_attrs

    alphas = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    loss = torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64)
    acc = torch.tensor([1.0, 0.5, 0.75], dtype=torch.float64)
    assert line_attrs(alphas, loss, acc, "test") == {
        "barrier_test_loss": 1.5,  # 2 above the chord's 0.5
        "barrier_test_error": 0.375,  # error 0.5 above the mean error 0.125
        "rise_test_loss": 1.0,  # 1 -> 2
    }
    no_acc = torch.full_like(loss, math.nan)
    assert set(line_attrs(alphas, loss, no_acc, "train")) == {
        "barrier_train_loss",
        "rise_train_loss",
    }


def test_surface_2d_on_a_quadratic_matches_the_closed_form(device):
    objective, theta = regression(device)
    gen = torch.Generator().manual_seed(3)
    d1, d2 = (torch.randn(theta.shape, dtype=torch.float64, generator=gen) for _ in range(2))
    xs, ys = grid_coordinates(5, 1.0), grid_coordinates(7, 0.5)
    surface = surface_2d(objective, theta, d1, d2, xs, ys)
    r = residuals(objective, theta)
    s1, s2 = (objective.x.cpu() @ d[:3] + d[3] for d in (d1, d2))
    residual = r + xs[:, None, None] * s1 + ys[None, :, None] * s2  # (nx, ny, 30)
    torch.testing.assert_close(surface.loss.cpu(), (residual**2).mean(dim=2))
    assert surface.loss.shape == (5, 7) and torch.equal(surface.rows, torch.arange(5))


def test_surface_2d_in_two_halves_equals_the_whole(device):
    objective, theta = classifier(device)
    gen = torch.Generator().manual_seed(4)
    d1, d2 = (torch.randn(theta.shape, generator=gen) for _ in range(2))
    xs, ys = grid_coordinates(7, 1.0), grid_coordinates(5, 1.0)
    whole = surface_2d(objective, theta, d1, d2, xs, ys)
    top = surface_2d(objective, theta, d1, d2, xs, ys, rows=slice(0, 3))
    bottom = surface_2d(objective, theta, d1, d2, xs, ys, rows=slice(3, None), rows_per_call=3)
    torch.testing.assert_close(torch.cat([top.loss, bottom.loss]), whole.loss)
    torch.testing.assert_close(torch.cat([top.acc, bottom.acc]), whole.acc)
    assert top.rows.tolist() == [0, 1, 2] and bottom.rows.tolist() == [3, 4, 5, 6]
    assert ((whole.acc >= 0) & (whole.acc <= 1)).all() and whole.loss.shape == (7, 5)


def test_centre_of_the_surface_is_theta(device):
    objective, theta = classifier(device)
    gen = torch.Generator().manual_seed(5)
    d1, d2 = (torch.randn(theta.shape, generator=gen) for _ in range(2))
    before = theta.clone()
    recording = Recording(objective)
    surface = surface_2d(
        recording, theta, d1, d2, grid_coordinates(5, 1.0), grid_coordinates(3, 1.0)
    )
    assert len(recording.calls) == 5 and recording.calls[0].shape == (3, theta.numel())
    assert torch.equal(recording.calls[2][1], theta)  # row 2, column 1: bit for bit
    torch.testing.assert_close(surface.loss[2, 1], objective.value(theta))
    assert torch.equal(theta, before)


def test_rows_iterator_resumes_and_checks_eagerly():
    objective, theta = classifier()
    gen = torch.Generator().manual_seed(6)
    d1, d2 = (torch.randn(theta.shape, generator=gen) for _ in range(2))
    xs, ys = grid_coordinates(5, 1.0), grid_coordinates(3, 1.0)
    whole = surface_2d(objective, theta, d1, d2, xs, ys)
    rows = surface_2d_rows(objective, theta, d1, d2, xs, ys, [4, 1], rows_per_call=2)
    got = {i: loss for i, loss, _ in rows}
    torch.testing.assert_close(got[4], whole.loss[4])
    torch.testing.assert_close(got[1], whole.loss[1])
    with pytest.raises(ConfigError, match=r"row indices in \[0, 5\)"):
        surface_2d_rows(objective, theta, d1, d2, xs, ys, [5])  # raised before any iteration


def test_wrong_shapes_raise_config_error():
    objective, theta = regression()
    with pytest.raises(ConfigError, match=r"shape \(4,\)"):
        surface_1d(objective, theta[:3], theta, grid_coordinates(3, 1.0))
    with pytest.raises(ConfigError, match="finite"):
        surface_1d(objective, theta, theta, torch.tensor([0.0, math.inf]))
    with pytest.raises(ConfigError, match="rows a slice"):
        surface_2d(objective, theta, theta, theta, [0.0], [0.0], rows=[0])
