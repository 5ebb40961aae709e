"""A curve between two minima (Garipov et al. 2018) on a loss with a known curved valley.

The loss (||w||^2 - 1)^2 on w in R^2 is zero on the unit circle. Between the minima
a = (cos 60°, sin 60°) and b = (cos 60°, -sin 60°) the straight line cuts the chord, whose
midpoint (1/2, 0) has ||w||^2 = 1/4: the line's barrier is (1/4 - 1)^2 = 0.5625 exactly. A
quadratic Bezier curve bent outward follows the circle closely: by symmetry its best bend is
(c, 0), with c the minimizer of the expected loss over t ~ U(0, 1), found below by quadrature.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from landscape.core.bezier import CurveEngine, bezier
from landscape.core.flat import FlatModel
from landscape.core.objective import Objective
from landscape.measures.curve import CurveRecipe, curve_values, train_curves
from landscape.measures.slices import default_alphas

ANGLE = math.pi / 3
A = torch.tensor([math.cos(ANGLE), math.sin(ANGLE)])
B = torch.tensor([math.cos(ANGLE), -math.sin(ANGLE)])
LINE_BARRIER = (math.cos(ANGLE) ** 2 - 1) ** 2  # at the chord's midpoint (cos 60°, 0)


class Ring(nn.Module):
    """||w||^2 - 1 for every example: its mse against 0 is the loss (||w||^2 - 1)^2."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] * 0 + (self.w.pow(2).sum() - 1)


@pytest.fixture
def ring(device):
    x, y = torch.zeros(64, 1, device=device), torch.zeros(64, 1, device=device)
    return Objective(FlatModel(Ring().to(device)), x, y, loss="mse", classification=False)


def _best_bend_x() -> float:
    """argmin over c of the mean over t in [0, 1] of the loss at phi(t) with bend (c, 0)."""
    t = torch.linspace(0, 1, 4001, dtype=torch.float64)[:, None]
    cs = torch.linspace(1.0, 2.0, 2001, dtype=torch.float64)[None, :]
    x = ((1 - t) ** 2 + t**2) * math.cos(ANGLE) + 2 * t * (1 - t) * cs
    y = (1 - 2 * t) * math.sin(ANGLE)
    expected = ((x**2 + y**2 - 1) ** 2).mean(dim=0)
    return float(cs[0, expected.argmin()])


SGD = CurveRecipe("sgd", lr=0.02, batch_size=16, epochs=50)


def _fit(obj, r=SGD, seeds=((0, 1),)):
    a, b = A.expand(len(seeds), 2), B.expand(len(seeds), 2)
    gens = [torch.Generator().manual_seed(s) for s, _ in seeds]
    t_gens = [torch.Generator().manual_seed(s) for _, s in seeds]
    return train_curves(obj, a, b, r, generators=gens, t_generators=t_gens)


@pytest.mark.parametrize("r", [CurveRecipe("sgd", 0.02, 16, 50), CurveRecipe("adam", 0.01, 16, 50)])
def test_the_trained_curve_follows_the_valley_the_line_cuts(ring, r):
    fit = _fit(ring, r)[0]
    ts = default_alphas(41, 0.0, 1.0)
    values, attrs = curve_values({"train": ring}, A, B, fit.bend, ts)
    assert attrs["line_barrier_train_loss"] == pytest.approx(LINE_BARRIER, rel=1e-6)
    assert float(values["line_train_loss"].max()) == pytest.approx(LINE_BARRIER, rel=1e-6)
    curve_max = float(values["curve_train_loss"].max())
    assert curve_max < 0.02 * LINE_BARRIER  # 0.0026 for the best quadratic Bezier
    assert attrs["curve_barrier_train_loss"] == pytest.approx(curve_max, abs=1e-7)  # ends: 0
    torch.testing.assert_close(fit.bend, torch.tensor([_best_bend_x(), 0.0]), atol=0.06, rtol=0)
    assert fit.diverged_step == -1 and fit.bend_moved[0] == 0


def test_the_logged_loss_is_the_curves_midpoint(ring):
    """The loop's logging evaluates at phi(1/2); the bend starts at (a + b) / 2, so step 0 is
    the line's midpoint and its loss is the line's barrier."""
    fit = _fit(ring)[0]
    assert fit.steps[0] == 0 and fit.mid_train_loss[0] == pytest.approx(LINE_BARRIER, rel=1e-6)
    mid = bezier(A, fit.bend, B, torch.tensor([0.5]))
    assert fit.mid_train_loss[-1] == pytest.approx(float(ring.value(mid[0])), rel=1e-5)
    assert np.all(np.isnan(fit.mid_train_acc))  # regression: no accuracy


def test_a_stack_of_curves_gives_each_curves_numbers(ring):
    together = _fit(ring, seeds=((0, 1), (2, 3)))
    for fit, seeds in zip(together, ((0, 1), (2, 3)), strict=True):
        alone = _fit(ring, seeds=(seeds,))[0]
        torch.testing.assert_close(fit.bend, alone.bend, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(fit.mid_train_loss, alone.mid_train_loss, rtol=1e-5)
    assert not torch.equal(together[0].bend, together[1].bend)  # their own t and orders


def test_the_curve_ends_at_the_two_points_and_the_engine_trains_only_the_bend(ring):
    ts = torch.tensor([0.0, 1.0], dtype=torch.float64)
    bend = torch.tensor([0.3, -2.0])
    ends = bezier(A, bend, B, ts)
    assert torch.equal(ends[0], A) and torch.equal(ends[1], B)
    engine = CurveEngine(ring.model, A[None], B[None], bend[None],
                         generators=[torch.Generator().manual_seed(0)])  # fmt: skip
    assert [p.shape for p in engine.parameters()] == [(1, 2)]
    torch.testing.assert_close(engine.midpoints()[0], (A + 2 * bend + B) / 4)


def test_analyze_trains_every_seeds_curve_as_one_stack(tmp_path, monkeypatch):
    """`landscape analyze` on the tiny store: both seeds' curves train together, with the
    numbers of each alone, and the summary names the barriers."""
    from landscape.measures import runner
    from landscape.measures.runner import AnalysisConfig, analyze
    from landscape.store.analysis_read import read_result
    from landscape.store.summary import summarize
    from landscape.train.experiment import train_experiment
    from tests.helpers import tiny_config

    path = tmp_path / "tiny.h5"
    train_experiment(tiny_config(), path)
    cfg = AnalysisConfig(measures=("curve",), alpha_points=9, curve_epochs=5)
    together = analyze(path, tmp_path / "together.h5", cfg)
    monkeypatch.setattr(runner, "batches", lambda todo: [(m, (k,)) for m, k in todo])
    alone = analyze(path, tmp_path / "alone.h5", cfg)
    keys = ["normal-overfit.000", "normal-overfit.001"]
    assert sorted(together.computed) == sorted(alone.computed) == [f"curve/{k}" for k in keys]
    for key in keys:
        a = read_result(tmp_path / "together.h5", "curve", key)
        b = read_result(tmp_path / "alone.h5", "curve", key)
        assert (a["attrs"]["batch_size"], b["attrs"]["batch_size"]) == (2, 1)
        for name in set(a) - {"attrs"}:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-5, err_msg=name)
        assert a["alpha"][0] == 0 and a["alpha"][-1] == 1 and len(a["alpha"]) == 9
        # t = 0 and 1 are the stored points: the curve and the line agree there
        for q in ("curve_train_loss", "curve_test_acc"):
            line = q.replace("curve", "line")
            np.testing.assert_allclose(a[q][[0, -1]], a[line][[0, -1]], rtol=1e-6)
        assert a["attrs"]["curve_barrier_train_loss"] >= 0
    summary = summarize(tmp_path / "together.h5")
    for q in ("curve_train_loss_barrier", "curve_line_train_loss_barrier"):
        assert summary[q]["pairs"]["n"] == 2


def test_batchnorm_is_recalibrated_along_the_curve_and_at_the_logged_midpoint():
    """With bn='recalibrate' every evaluated point of the curve, the loop's midpoint too, gets
    statistics re-estimated at that point (not the stored ones of an endpoint)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(96, 4, generator=g), torch.randint(0, 3, (96,), generator=g)
    recal = FlatModel(net, bn="recalibrate", calibration=x, bn_batch=32)
    obj = Objective(recal, x, y, loss="cross_entropy", classification=True)
    stored = Objective(FlatModel(net), x, y, loss="cross_entropy", classification=True)
    a, b = torch.randn(2, recal.size, generator=g)
    fit = train_curves(obj, a[None], b[None], CurveRecipe("adam", 0.01, 32, 3),
                       generators=[torch.Generator().manual_seed(2)],
                       t_generators=[torch.Generator().manual_seed(3)])[0]  # fmt: skip
    mid = bezier(a, fit.bend, b, torch.tensor([0.5]))
    assert fit.mid_train_loss[-1] == pytest.approx(float(obj.value(mid[0])), rel=1e-5)
    assert fit.mid_train_loss[-1] != pytest.approx(float(stored.value(mid[0])), rel=1e-3)
    ts = default_alphas(5, 0.0, 1.0)
    values, _ = curve_values({"train": obj}, a, b, fit.bend, ts)
    points = bezier(a, fit.bend, b, ts)
    for t, loss in zip(points, values["curve_train_loss"], strict=True):
        assert float(loss) == pytest.approx(float(obj.value(t)), rel=1e-5)
