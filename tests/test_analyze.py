"""`landscape analyze` end to end on a tiny train store."""

import h5py
import numpy as np
import pytest

from landscape.analysis_store import analysis_info, read_result, result_file
from landscape.analyze import AnalysisConfig, analyze
from landscape.errors import ConfigError
from landscape.experiment import train_experiment
from landscape.runs import file_checksum
from landscape.store import read_run
from tests.helpers import tiny_config

CHEAP = ("distance", "pair_distance", "gradient")


@pytest.fixture(scope="module")
def train_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("analyze") / "tiny.h5"
    train_experiment(tiny_config(), path)
    return path


@pytest.fixture(scope="module")
def analysis(train_store):
    before = file_checksum(train_store)
    out = train_store.with_name("tiny.analysis.h5")
    summary = analyze(train_store, out, AnalysisConfig(measures=CHEAP))
    assert file_checksum(train_store) == before  # the train store is only read
    return out, summary


def test_distances_match_the_stored_points(train_store, analysis):
    out, _ = analysis
    run = read_run(train_store, "overfit-001")
    d = read_result(out, "distance", "overfit-001")
    assert d["l2"][0] == 0
    np.testing.assert_allclose(
        d["l2"][-1], np.linalg.norm(run["final"]["params"] - run["init"]["params"]), rtol=1e-6
    )
    assert np.all(d["frobenius_sum"] >= d["l2"] - 1e-9)  # triangle inequality over tensors
    pair = read_result(out, "pair_distance", "pair-001")
    assert pair["init_l2"] == 0  # normal and overfit runs share their initial point
    assert pair["l2"] > 0


def test_gradient_norms_agree_with_training_history(train_store, analysis):
    out, _ = analysis
    g = read_result(out, "gradient", "normal-000")
    h = read_run(train_store, "normal-000")["history"]
    final = h["grad_norm"][np.searchsorted(h["step"], g["step"][-1])]
    np.testing.assert_allclose(g["train_grad_norm"][-1], final, rtol=1e-4)
    assert g["step"][0] == 0 and np.all(g["test_grad_norm"] > 0)


def test_rerun_computes_nothing_and_new_parameters_recompute(train_store, analysis):
    out, first = analysis
    assert len(first.computed) == 4 + 2 + 4
    again = analyze(train_store, out, AnalysisConfig(measures=CHEAP))
    assert again.computed == [] and len(again.skipped) == len(first.computed)
    other_seed = analyze(train_store, out, AnalysisConfig(measures=("distance",), seed=1))
    assert len(other_seed.computed) == 4


def test_index_links_every_result_for_plain_h5py(analysis):
    out, _ = analysis
    with h5py.File(out, "r") as f:
        assert f.attrs["landscape_kind"] == "landscape.analysis"
        assert len(f.attrs["train_store_sha256"]) == 64
        ds = f["distance/normal-000/l2"]
        assert ds.attrs["long_name"] and ds.attrs["units"]
        assert ds.dims[0][0].name == "/step"
    info = analysis_info(out)
    assert {(r["measure"], r["key"]) for r in info["results"]} >= {("gradient", "normal-001")}
    assert result_file(out, "gradient", "normal-001").exists()


def test_bad_settings_are_refused(train_store, tmp_path):
    with pytest.raises(ConfigError, match="unknown measure"):
        analyze(train_store, tmp_path / "a.h5", AnalysisConfig(measures=("nope",)))
    with pytest.raises(ConfigError, match="odd number"):
        analyze(train_store, tmp_path / "a.h5", AnalysisConfig(grid=50))
