"""`landscape analyze` end to end on a tiny train store."""

import h5py
import numpy as np
import pytest

from landscape.errors import ConfigError
from landscape.measures.runner import AnalysisConfig, analyze
from landscape.measures.runs import file_checksum
from landscape.store.analysis_store import analysis_info, read_result, result_file
from landscape.store.train_store import read_run
from landscape.train.experiment import train_experiment
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


def test_a_tuple_setting_is_up_to_date_on_rerun(train_store, tmp_path):
    # perturbation's radii are a tuple, stored as a JSON list: the two must compare equal
    cfg = AnalysisConfig(measures=("perturbation",), radii=(0.1, 0.2), directions=1)
    out = tmp_path / "tiny.analysis.h5"
    first = analyze(train_store, out, cfg)
    again = analyze(train_store, out, cfg)
    assert first.computed and again.computed == [] and again.skipped == first.computed


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


SLICES = AnalysisConfig(
    measures=("interpolation", "surface1d", "surface2d"),
    grid=7,
    line_points=9,
    directions=2,
    alpha_points=9,
)


@pytest.fixture(scope="module")
def slices(train_store):
    out = train_store.with_name("slices.analysis.h5")
    analyze(train_store, out, SLICES)
    return out


def test_interpolation_endpoints_are_the_stored_points(train_store, slices):
    r = read_result(slices, "interpolation", "init-final.normal-001")
    h = read_run(train_store, "normal-001")["history"]
    alpha = list(r["alpha"])
    np.testing.assert_allclose(r["train_loss"][alpha.index(0.0)], h["train_loss"][0], rtol=1e-5)
    np.testing.assert_allclose(r["train_loss"][alpha.index(1.0)], h["train_loss"][-1], rtol=1e-5)
    np.testing.assert_allclose(r["test_acc"][alpha.index(1.0)], h["test_acc"][-1])
    assert r["attrs"]["barrier_train_loss"] >= 0
    assert read_result(slices, "interpolation", "normal-overfit.000")["attrs"]["b"] == "overfit-000"


def test_interpolation_stores_each_barrier_under_its_name(slices):
    """The stored attrs are the pure functions of the stored arrays; the summary gives the
    barriers of normal <-> overfit and only the largest rise of init -> final."""
    import torch

    from landscape.measures.slices import barrier_height, error_barrier, largest_rise
    from landscape.store.summary import recorded_measures

    for key in ("init-final.overfit-000", "normal-overfit.001"):
        r = read_result(slices, "interpolation", key)
        alphas = torch.as_tensor(r["alpha"])
        for split in ("train", "test"):
            loss, acc = torch.as_tensor(r[f"{split}_loss"]), torch.as_tensor(r[f"{split}_acc"])
            attrs = r["attrs"]
            assert attrs[f"barrier_{split}_loss"] == barrier_height(alphas, loss)
            assert attrs[f"barrier_{split}_error"] == error_barrier(alphas, acc)
            assert attrs[f"rise_{split}_loss"] == largest_rise(alphas, loss)
    summary = analysis_info(slices)["summary"]
    assert set(summary["init_final_loss_rise"]) >= {"normal", "overfit"}
    assert summary["normal_overfit_loss_barrier"]["pairs"]["n"] == 2
    assert summary["normal_overfit_train_error_barrier"]["pairs"]["n"] == 2
    assert summary["normal_overfit_test_error_barrier"]["pairs"]["n"] == 2
    assert not [q for q in summary if q.startswith("init_final") and "barrier" in q]
    labels = {
        s["quantity"]: s["label"] for s in recorded_measures(slices)["interpolation"]["scalars"]
    }
    assert "Lucas et al. 2021" in labels["init_final_loss_rise"]
    assert "barrier" not in labels["init_final_loss_rise"]
    assert "Entezari et al. 2022" in labels["normal_overfit_loss_barrier"]
    assert "Frankle et al. 2020" in labels["normal_overfit_train_error_barrier"]


def test_surfaces_are_centred_on_the_trained_point(train_store, slices):
    s = read_result(slices, "surface2d", "overfit-000")
    h = read_run(train_store, "overfit-000")["history"]
    assert s["train_loss"].shape == (7, 7)
    np.testing.assert_array_equal(s["xcoordinates"], -s["xcoordinates"][::-1])
    np.testing.assert_allclose(s["train_loss"][3, 3], h["train_loss"][-1], rtol=1e-5)
    np.testing.assert_allclose(s["test_acc"][3, 3], h["test_acc"][-1])
    one = read_result(slices, "surface1d", "normal-000")
    assert one["train_loss"].shape == (2, 9)
    np.testing.assert_allclose(
        one["train_loss"][:, 4], h["train_loss"][-1] * 0 + one["train_loss"][0, 4]
    )
    assert not np.allclose(one["train_loss"][0], one["train_loss"][1])  # independent draws
    with h5py.File(slices, "r") as f:  # Li et al.'s names and dimension scales
        g = f["surface2d/normal-000"]
        assert {
            "xcoordinates",
            "ycoordinates",
            "train_loss",
            "train_acc",
            "test_loss",
            "test_acc",
        } <= set(g)
        assert g["train_loss"].dims[1][0].name.endswith("ycoordinates")


def test_interrupted_surface_resumes_rows_and_equals_the_whole(train_store, tmp_path, monkeypatch):
    from landscape.measures import surface2d as am

    cfg = AnalysisConfig(measures=("surface2d",), grid=9)
    whole = tmp_path / "whole.h5"
    analyze(train_store, whole, cfg)
    real, calls = am.surface_2d_rows, []

    def crashing(*args, **kwargs):
        calls.append(args[-1])
        if len(calls) > 6:  # 3 rows of train + test, then "kill"
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(am, "surface_2d_rows", crashing)
    cut = tmp_path / "cut.h5"
    with pytest.raises(KeyboardInterrupt):
        analyze(train_store, cut, cfg)
    monkeypatch.setattr(am, "surface_2d_rows", real)
    calls.clear()
    monkeypatch.setattr(am, "surface_2d_rows", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    analyze(train_store, cut, cfg)
    assert len(calls) == 2 * (2 * 9 - 3)  # only the rows in flight were lost
    for key in ("normal-000", "overfit-000"):
        a, b = read_result(whole, "surface2d", key), read_result(cut, "surface2d", key)
        for name in ("train_loss", "test_acc", "direction_x"):
            np.testing.assert_array_equal(a[name], b[name])


def _interrupt_surface(train_store, out, cfg, monkeypatch, rows=3):
    """Run `cfg` until `rows` rows of the first surface are kept, then "kill" it."""
    from landscape.measures import surface2d as am

    real, calls = am.surface_2d_rows, []

    def crashing(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2 * rows:  # train + test per row
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(am, "surface_2d_rows", crashing)
    with pytest.raises(KeyboardInterrupt):
        analyze(train_store, out, cfg)
    monkeypatch.setattr(am, "surface_2d_rows", real)


@pytest.mark.parametrize(
    "first, second",
    [
        ({"span": 1.0}, {"span": 0.5}),
        ({"seed": 0}, {"seed": 1}),
        ({"grid": 9}, {"grid": 7}),  # used to fail with a ValueError until the parts were deleted
    ],
)
def test_a_resumed_surface_never_reuses_rows_computed_for_other_settings(
    train_store, tmp_path, monkeypatch, first, second
):
    base = {"measures": ("surface2d",), "grid": 9, "runs": "first"}
    clean = tmp_path / "clean.h5"
    analyze(train_store, clean, AnalysisConfig(**(base | second)))
    cut = tmp_path / "cut.h5"
    _interrupt_surface(train_store, cut, AnalysisConfig(**(base | first)), monkeypatch)
    notes = []
    analyze(train_store, cut, AnalysisConfig(**(base | second)), on_event=notes.append)
    for key in ("normal-000", "overfit-000"):
        a, b = read_result(clean, "surface2d", key), read_result(cut, "surface2d", key)
        for name in ("train_loss", "test_acc", "direction_x", "xcoordinates"):
            np.testing.assert_array_equal(a[name], b[name])
    discarded = [e.message for e in notes if e.kind == "note" and "discarded" in e.message]
    assert len(discarded) == 1 and next(iter(second)) in discarded[0]


def test_parts_of_another_train_store_are_discarded(tmp_path):
    from landscape.store.analysis_store import Parts

    out = tmp_path / "a.analysis.h5"
    old = Parts(out, "surface2d", "normal-000", {"measure": "surface2d", "sha": "aaa"})
    old.save("row00000", train_loss=np.zeros(3))
    new = Parts(out, "surface2d", "normal-000", {"measure": "surface2d", "sha": "bbb"})
    assert "sha: kept 'aaa', now 'bbb'" in new.reconcile()
    assert new.load() == {} and not new.folder.exists()
    new.save("row00000", train_loss=np.ones(3))
    assert new.reconcile() is None
    np.testing.assert_array_equal(new.load()["row00000"]["train_loss"], np.ones(3))


def test_summary_aggregates_over_seeds(analysis):
    from landscape.store.summary import describe

    out, _ = analysis
    summary = analysis_info(out)["summary"]
    d = summary["distance_l2"]
    assert d["normal"]["n"] == 2 and d["overfit"]["n"] == 2
    values = [read_result(out, "distance", f"overfit-{k:03d}")["l2"][-1] for k in range(2)]
    assert d["overfit"]["mean"] == pytest.approx(np.mean(values))
    assert d["overfit"]["std"] == pytest.approx(np.std(values, ddof=1))
    assert d["ratio_overfit_over_normal"] == pytest.approx(
        d["overfit"]["mean"] / d["normal"]["mean"]
    )
    assert summary["normal_overfit_distance"]["pairs"]["n"] == 2
    assert describe([1.0, float("nan"), 3.0]) == {
        "mean": 2.0,
        "std": 2**0.5,
        "min": 1.0,
        "max": 3.0,
        "n": 2,
    }


def test_diverged_runs_are_measured_flagged_and_counted_not_averaged(tmp_path):
    from landscape.config import resolve_config

    cfg = resolve_config(
        preset="quick",
        overrides={
            "data": {"name": "line"},
            "model": {"widths": [16]},
            "optim": {"name": "sgd", "lr": 10.0, "batch_size": 32},
            "train": {"mode": "normal", "runs": 2, "epochs": 20, "checkpoints": 4},
        },
    )
    path = tmp_path / "d.h5"
    train_experiment(cfg, path)
    out = tmp_path / "d.analysis.h5"
    analyze(path, out, AnalysisConfig(measures=("distance", "gradient", "hessian"), top_k=1))
    for key in ("normal-000", "normal-001"):
        for measure in ("distance", "gradient", "hessian"):
            attrs = read_result(out, measure, key)["attrs"]
            assert attrs["diverged"] and attrs["diverged_runs"] == f'["{key}"]'
    summary = analysis_info(out)["summary"]
    assert summary["distance_l2"]["normal"]["n"] == 0
    assert summary["distance_l2"]["normal"]["diverged"] == 2


def test_equal_steps_compares_overfit_at_the_normal_runs_step_count(analysis):
    out, _ = analysis
    equal = analysis_info(out)["summary"]["distance_l2_equal_steps"]
    at = []
    for k in ("000", "001"):
        n, o = (
            read_result(out, "distance", f"normal-{k}"),
            read_result(out, "distance", f"overfit-{k}"),
        )
        assert o["step"][-1] > n["step"][-1]  # the overfit set is larger: more steps per epoch
        at.append(np.interp(n["step"][-1], o["step"], o["l2"]))
    assert equal["overfit"]["mean"] == pytest.approx(np.mean(at))
    assert equal["normal"]["n"] == equal["overfit"]["n"] == 2
    assert equal["ratio_overfit_over_normal"] == pytest.approx(
        equal["overfit"]["mean"] / equal["normal"]["mean"]
    )


def test_a_result_is_recomputed_when_its_run_file_changes(tmp_path):
    """A cached result is keyed by the checksums of the run files it was computed from: a run
    written anew (here its checkpoints moved by 1 in every coordinate) recomputes the results
    that read it, and only those."""
    path = tmp_path / "tiny.h5"
    train_experiment(tiny_config(), path)
    out = tmp_path / "tiny.analysis.h5"
    analyze(path, out, AnalysisConfig(measures=("distance", "pair_distance")))
    before = read_result(out, "distance", "normal-001")["l2"][-1]
    run_path = path.parent / "tiny.runs" / "normal-001.h5"
    with h5py.File(run_path, "r+") as f:
        f["checkpoints/params"][...] = f["checkpoints/params"][...] + 1.0
    again = analyze(path, out, AnalysisConfig(measures=("distance", "pair_distance")))
    assert sorted(again.computed) == ["distance/normal-001", "pair_distance/pair-001"]
    run = read_run(path, "normal-001")
    after = read_result(out, "distance", "normal-001")["l2"][-1]
    expected = np.linalg.norm(run["checkpoints"]["params"][-1] - run["init"]["params"])
    np.testing.assert_allclose(after, expected, rtol=1e-6)
    assert after > before + 10
