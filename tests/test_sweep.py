"""Sweeps: variants at equal epochs and equal steps, and one page across them."""

import json

import pytest
from click.testing import CliRunner

from cli.main import main
from landscape.config import from_dict, total_steps
from landscape.errors import ConfigError
from landscape.pipeline.plan import resolve_plan
from landscape.pipeline.sweep import Sweep, parse_sweep, variants

BASE = {
    "data": {"name": "ring", "ring_resolution": 32, "ring_points": 400},
    "optim": {"batch_size": 100},
    "train": {"mode": "normal", "epochs": 10},
}


def rows(cfg):
    return cfg.data.ring_points


def test_equal_steps_are_the_reference_steps_and_equal_epochs_are_equal():
    sweep = Sweep("data.ring_points", (400, 150, 50), ("epochs", "steps"))
    vs = variants(from_dict(BASE), sweep, rows)
    got = {v.label: (v.steps, v.epochs) for v in vs}
    # 400 rows at batch 100: 4 steps an epoch, 40 steps in 10 epochs: the reference
    assert got == {
        "ring_points-400-equal-epochs": (40, 10.0),
        "ring_points-150-equal-epochs": (20, 10.0),  # ceil(150/100) = 2 steps an epoch
        "ring_points-150-equal-steps": (40, 20.0),
        "ring_points-50-equal-epochs": (10, 10.0),  # one (partial) batch an epoch
        "ring_points-50-equal-steps": (40, 40.0),
    }
    for v in vs:  # what the trainer will run is what the variant says
        assert total_steps(v.experiment, v.train_size)[1] == v.steps
        assert v.experiment.data.ring_points == v.value


def test_a_steps_only_sweep_keeps_the_base_steps():
    base = from_dict({**BASE, "train": {"mode": "normal", "steps": 30}})
    vs = variants(base, Sweep("optim.weight_decay", (1.0, 0.0), ("steps",)), rows)
    assert [(v.label, v.steps) for v in vs] == [
        ("weight_decay-1-equal-steps", 30),
        ("weight_decay-0-equal-steps", 30),
    ]
    with pytest.raises(ConfigError, match=r"budget 'epochs' needs train\.epochs"):
        variants(base, Sweep("optim.weight_decay", (1.0, 0.0), ("epochs",)), rows)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"key": "ring_points", "values": [1]}, "key must be 'section.name'"),
        ({"key": "data.ring_points", "values": []}, "non-empty list of distinct"),
        ({"key": "data.ring_points", "values": [5, 5]}, "non-empty list of distinct"),
        ({"key": "data.ring_points", "values": [5], "budgets": ["time"]}, "allowed epochs"),
        ({"values": [5]}, "needs `key` and `values`"),
        ({"key": "data.ring_points", "values": [5], "colour": 1}, "needs `key` and `values`"),
    ],
)
def test_bad_sweep_tables_say_what_is_wrong(section, message):
    with pytest.raises(ConfigError, match=message):
        parse_sweep(section, "preset 'x'")


def test_an_unknown_swept_key_is_refused_before_training():
    plan = resolve_plan(preset="ring-sweep-small", overrides={"sweep": {"key": "data.pixels"}})
    with pytest.raises(ConfigError, match="pixels"):
        variants(plan.experiment, plan.sweep, rows)


def test_sweep_presets_resolve():
    for name in ("ring-sweep-small", "ring-sweep"):
        plan = resolve_plan(preset=name)
        assert plan.sweep is not None and plan.sweep.values[0] == 5000
        labels = {v.label for v in variants(plan.experiment, plan.sweep, rows)}
        for claim in plan.claims:  # every claim names a variant the sweep trains
            assert claim["metric"].split(".")[1] in labels, claim


def test_run_a_tiny_ring_sweep_end_to_end(tmp_path):
    """Two sizes at equal epochs and equal steps: three variants, each with its own report,
    and one page whose table and claims read the variants' summaries."""
    out = tmp_path / "sweep"
    args = [
        "run", "ring-sweep-small", "--runs", "1", "--store", tmp_path / "s.h5", "-o", out,
        "--set", "sweep.values=[300, 100]", "--set", "train.epochs=3",
        "--set", "data.ring_resolution=32", "--set", "data.ring_test_points=64",
        "--set", "model.widths=[8, 8]", "--set", "analyze.prediction_resolution=16",
        "--set", "optim.batch_size=100",
    ]  # fmt: skip
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    sweep = json.loads((out / "sweep.json").read_text())
    assert list(sweep["variants"]) == [
        "ring_points-300-equal-epochs",
        "ring_points-100-equal-epochs",
        "ring_points-100-equal-steps",
    ]
    steps = {k: v["steps"] for k, v in sweep["variants"].items()}
    assert steps == {
        "ring_points-300-equal-epochs": 9,
        "ring_points-100-equal-epochs": 3,
        "ring_points-100-equal-steps": 9,
    }
    for label, v in sweep["variants"].items():
        report = json.loads((out / label / "summary.json").read_text())
        assert v["quantities"]["ring_iou"] == report["quantities"]["ring_iou"]
        assert (out / v["report"]).exists()
    # claims about 5000/2500/625/312 pixels: variants this sweep did not train
    assert {c["status"] for c in sweep["claims"]} == {"not computed"}
    assert sweep["figures"] == ["sweep_quantities.png", "sweep_curves.png", "sweep_ring.png"]
    # the reproduce line carries every override, quoted for a shell
    assert "--set 'sweep.values=[300, 100]'" in sweep["commands"]["run"]
    html = (out / "sweep.html").read_text()
    assert "ring_points-100-equal-steps" in html and "://" not in html
    assert html.count("data:image/png;base64,") == 3
