"""Every CPU preset, end to end with `landscape run`, as a user runs it: each claim computed.

CI runs the short presets; the longer ones are marked `slow` (`pytest -m slow` runs them:
minutes to tens of minutes each on 2 cores). A preset's claims must all be computed (pass or
fail, never "not computed"); where a claim's outcome is recorded in the README, the test
holds it there, so a change that flips a reproduced finding is seen. Same seed, same numbers
on a CPU: the outcomes are deterministic.
"""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from landscape.config import preset_names

# measured on digits, with and without weight decay: (b) fails, the rest hold
MERKULOV_DIGITS = {
    "a-overfit-train": "pass",
    "a-overfit-test": "pass",
    "b-near-critical": "fail",
    "c-farther-equal-epochs": "pass",
    "c-farther-equal-steps": "pass",
    "d-sgd-restart-generalizes": "pass",
}
# preset -> (needs ../shared/data, claims whose outcome the README records)
PRESETS = {
    "grokking-small": (
        False,
        {
            "generalizes-late": "pass",
            "generalizes": "pass",
            "weight-norm-falls": "fail",
            "no-grokking-without-decay": "pass",
            "memorizes-without-decay": "pass",
        },
    ),
    "ring-small": (False, {"draws-the-ring": "pass", "one-shape-not-points": "pass"}),
    "line": (False, {"near-ols": "pass", "not-threading": "pass"}),
    "ring-sweep-small": (
        False,
        {
            "5000-draws-the-ring": "pass",
            "2500-draws-the-ring": "pass",
            "312-not-ready": "pass",
            "312-no-memorizing": "pass",
            "625-equal-steps": "pass",
        },
    ),
    "merkulov-digits": (False, MERKULOV_DIGITS),
    "merkulov-digits-wd": (False, MERKULOV_DIGITS),
    "merkulov-mnist-mlp": (
        True,
        {**MERKULOV_DIGITS, "b-near-critical": "pass", "d-sgd-restart-generalizes": "fail"},
    ),
    "merkulov-mnist-lenet": (True, {**MERKULOV_DIGITS, "d-sgd-restart-generalizes": "fail"}),
}
SHORT = {"ring-small"}  # under a minute on 2 cores; grokking-small takes 3 (slow)


def _params():
    for name in PRESETS:
        marks = () if name in SHORT else (pytest.mark.slow,)
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(_params()))
def test_preset_runs_and_computes_every_claim(name, tmp_path, request):
    needs_data, expected = PRESETS[name]
    args = ["run", name, "--store", tmp_path / f"{name}.h5", "-o", tmp_path / "report"]
    if needs_data:
        args += ["--data-dir", request.getfixturevalue("shared_data")]
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    page = tmp_path / "report" / "sweep.json"
    summary = json.loads((page if page.exists() else tmp_path / "report" / "summary.json")
                         .read_text())  # fmt: skip
    status = {c["id"]: c["status"] for c in summary["claims"]}
    assert status and "not computed" not in status.values(), summary["claims"]
    for claim, outcome in expected.items():
        assert status[claim] == outcome, (claim, summary["claims"])


def _smoke_overrides(name):
    """Settings that shrink a preset to seconds while keeping its model, loss and claims."""
    from landscape.pipeline.plan import resolve_plan

    plan = resolve_plan(preset=name)
    data = plan.experiment.data.name
    sets = ["train.checkpoints=3", "train.log_points=4", 'analyze.measures=["distance"]']
    sets.append("train.steps=5" if plan.experiment.train.steps else "train.epochs=1")
    if data in ("mnist", "fashion-mnist", "cifar10", "digits"):
        sets += ["data.subset=200", "data.test_subset=100"]
    if data == "ring":
        sets += ["data.ring_resolution=64", "data.ring_points=300", "data.ring_test_points=64"]
        sets += ["analyze.prediction_resolution=16"]
    if plan.sweep is not None and data == "ring":
        sets.append("sweep.values=[300, 100]")
    return [a for s in sets for a in ("--set", s)], data


SMOKE_SLOW = {"merkulov-cifar10-resnet"}  # ~50 s even shrunk: JPEG decoding and BatchNorm


def _smoke_params():
    for name in preset_names():
        if name not in PRESETS:
            marks = (pytest.mark.slow,) if name in SMOKE_SLOW else ()
            yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(_smoke_params()))
def test_every_other_preset_runs_shrunk(name, tmp_path, request):
    """The GPU-scale presets (and quick), shrunk to seconds: each trains, analyzes and
    reports from a clean checkout, so a preset that no longer resolves or runs is caught."""
    sets, data = _smoke_overrides(name)
    args = ["run", name, "--runs", "1", "--store", tmp_path / "s.h5", "-o", tmp_path / "r", *sets]
    if data in ("mnist", "fashion-mnist", "cifar10"):
        shared = request.getfixturevalue("shared_data")
        # Fashion-MNIST: Debian's dataset-fashion-mnist (the loader looks there too)
        places = {
            "mnist": [shared / "mnist"],
            "cifar10": [shared / "cifar10_jpg"],
            "fashion-mnist": [shared / "fashion-mnist", Path("/usr/share/datasets/fashion-mnist")],
        }
        if not any(p.is_dir() for p in places[data]):
            pytest.skip(f"{data} is in none of {[str(p) for p in places[data]]}")
        args += ["--data-dir", shared]
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r" / ("sweep.html" if "sweep" in name or "grokking" in name
                              else "report.html")).exists()  # fmt: skip
