"""One invariance suite over every registered measure: a new measure joins the registry and is
tested here (finite output, deterministic, independent of chunking, train store untouched)."""

import numpy as np
import pytest
import torch

from landscape.measures.runner import AnalysisConfig, AnalyzeOptions, analyze, measure_names
from landscape.measures.runs import Experiment, file_checksum
from landscape.store.analysis_store import analysis_info, completed, read_result
from landscape.store.summary import recorded_measures, scalars_of, summarize
from landscape.train.experiment import train_experiment
from tests.helpers import tiny_config

SMALL = dict(
    grid=5,
    line_points=5,
    directions=2,
    alpha_points=9,
    top_k=2,
    trace_samples=8,
    density_probes=2,
    density_steps=8,
    density_points=101,
    layer_trace_samples=4,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("common") / "tiny.h5"
    train_experiment(tiny_config(runs=1), path)
    return path


@pytest.fixture(scope="module")
def line_store(tmp_path_factory):
    """For the measures of regression datasets (prediction draws the line's curve)."""
    from landscape.config import resolve_config

    overrides = {
        "data": {"name": "line"},
        "model": {"widths": [16]},
        "train": {"runs": 1, "epochs": 3, "checkpoints": 3, "mode": "normal"},
    }
    path = tmp_path_factory.mktemp("common-line") / "line.h5"
    train_experiment(resolve_config(preset="quick", overrides=overrides), path)
    return path


NEEDS_REGRESSION = {"prediction"}


def _scalars(out):
    return [(m, s.quantity) for m, s in scalars_of(recorded_measures(out))]


def _arrays(out, measure):
    return {
        key: {k: v for k, v in read_result(out, m, key).items() if k != "attrs"}
        for m, key in completed(out)
        if m == measure
    }


@pytest.mark.parametrize("measure", measure_names())
def test_measure_invariants(request, tmp_path, measure, device):
    store = request.getfixturevalue("line_store" if measure in NEEDS_REGRESSION else "store")
    before = file_checksum(store)
    cfg = AnalysisConfig(measures=(measure,), **SMALL)
    a, b, c = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "c.h5"
    on = AnalyzeOptions(device=str(device))  # the stored points are read on the CPU
    analyze(store, a, cfg, options=on)
    analyze(store, b, cfg, options=on)
    tiny = AnalyzeOptions(device=str(device), memory_budget=64 * 2**10)  # tiny chunks
    analyze(store, c, cfg, options=tiny)
    assert file_checksum(store) == before
    ra, rb, rc = _arrays(a, measure), _arrays(b, measure), _arrays(c, measure)
    assert ra, f"{measure} computed nothing on the tiny store"
    for key, arrays in ra.items():
        for name, values in arrays.items():
            assert np.isfinite(values).all(), f"{measure}/{key}/{name} not finite"
            np.testing.assert_array_equal(values, rb[key][name], err_msg=f"{measure} same seed")
            np.testing.assert_allclose(
                values,
                rc[key][name],
                rtol=2e-4,
                atol=1e-6,
                err_msg=f"{measure} depends on chunking",
            )
    _listed_everywhere(a, measure, len(ra))


def _listed_everywhere(out, measure, n_results):
    """A measure in the registry shows in `info --json`, the summary and the report's table."""
    from landscape.report.data import load
    from landscape.report.summary_json import measure_status

    assert analysis_info(out)["measures"][measure]["results"] == n_results
    assert measure_status(load(out))[measure] == "computed"
    names = {name for _m, name in _scalars(out) if _m == measure}
    # some scalars apply to some datasets only (ring scores); one at least is summarized
    assert not names or names & set(summarize(out)), f"{measure}: none of {names} summarized"


def test_hessian_bounds_every_rayleigh_quotient(store, tmp_path):
    out = tmp_path / "h.h5"
    analyze(store, out, AnalysisConfig(measures=("hessian",), top_k=3))
    r = read_result(out, "hessian", "normal-000")
    values = r["eigenvalues"]
    assert np.all(np.diff(values) <= 0) and np.all(r["residuals"] < 1e-2)
    exp = Experiment(store)
    hvp = exp.objective("train").hvp_operator(exp.run("normal-000").final)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        v = torch.randn(exp.layout.size, generator=g)
        v /= v.norm()
        assert float(v @ hvp(v)) <= values[0] * (1 + 1e-4)
