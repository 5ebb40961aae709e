"""The prediction measure: ring image scores and the line's gap to least squares."""

import numpy as np
import pytest

from landscape.config import resolve_config
from landscape.data.synthetic import ring_image
from landscape.measures.prediction import line_scores, ols_line, ring_scores
from landscape.measures.runner import AnalysisConfig, analyze
from landscape.store.analysis_store import read_result
from landscape.train.experiment import train_experiment


def test_the_true_ring_scores_iou_one_and_one_component():
    target = ring_image(64)
    s = ring_scores(target[None], target)
    assert s["iou"][0] == 1.0 and s["image_mse"][0] == 0.0 and s["components"][0] == 1


def test_memorized_points_give_one_blob_each():
    target = ring_image(64)
    dots = np.ones((64, 64), dtype=np.float32)
    dots[::8, ::8] = 0.0  # 64 isolated black pixels
    s = ring_scores(dots[None], target)
    assert s["components"][0] == 64 and s["iou"][0] < 0.1
    white = ring_scores(np.ones((1, 64, 64)), target)
    assert white["iou"][0] == 0.0 and white["components"][0] == 0


def test_ols_recovers_an_exact_line_and_the_gap_is_measured_on_the_grid():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    assert ols_line(x, 3 + 0.7 * x) == pytest.approx((3.0, 0.7))
    grid = np.linspace(0, 3, 4)
    curves = np.stack([3 + 0.7 * grid, 3 + 0.7 * grid + np.array([0, 0.5, -1.0, 0])])
    s = line_scores(curves, grid, x, 3 + 0.7 * x)
    np.testing.assert_allclose(s["max_abs_vs_ols"], [0.0, 1.0], atol=1e-12)
    assert s["ols_train_mse"] == pytest.approx(0.0, abs=1e-20)


def _store(tmp_path, data: dict, widths: list[int]):
    cfg = resolve_config(
        preset="quick",
        overrides={
            "data": data,
            "model": {"widths": widths},
            "optim": {"lr": 0.01, "batch_size": 64},
            "train": {"mode": "normal", "runs": 1, "epochs": 5, "checkpoints": 3},
        },
    )
    path = tmp_path / "s.h5"
    train_experiment(cfg, path)
    out = tmp_path / "a.h5"
    analyze(path, out, AnalysisConfig(measures=("prediction",), prediction_resolution=32))
    return read_result(out, "prediction", "normal-000")


def test_ring_prediction_is_stored_with_scores(tmp_path):
    data = {"name": "ring", "ring_resolution": 64, "ring_points": 400, "ring_test_points": 100}
    r = _store(tmp_path, data, [16, 16])
    assert r["output"].shape == (len(r["step"]), 32, 32)
    np.testing.assert_array_equal(r["target"], ring_image(32))
    np.testing.assert_allclose(r["iou"], ring_scores(r["output"], r["target"])["iou"])
    assert r["attrs"]["train_size"] == 400 and r["attrs"]["black_train_points"] > 0


def test_line_prediction_measures_the_gap_to_least_squares(tmp_path):
    r = _store(tmp_path, {"name": "line"}, [16])
    a, b = np.polyfit(r["train_x"].astype(np.float64), r["train_y"].astype(np.float64), 1)[::-1]
    np.testing.assert_allclose(r["ols"], a + b * r["x"], rtol=1e-6)
    gap = np.abs(r["output"] - r["ols"][None]).max(axis=1)
    np.testing.assert_allclose(r["max_abs_vs_ols"], gap)
    assert r["attrs"]["ols_slope"] == pytest.approx(b)


def test_classification_datasets_have_no_prediction_results(tmp_path):
    from tests.helpers import tiny_config

    path = tmp_path / "d.h5"
    train_experiment(tiny_config(runs=1, epochs=1, mode="normal"), path)
    done = analyze(path, tmp_path / "a.h5", AnalysisConfig(measures=("prediction",)))
    assert done.computed == []
