"""Damaged stores (issue 15, defect 2): a clean StoreError or a *damaged* status, never a
traceback, a hang or a huge allocation; `train` does not overwrite a damaged run silently."""

import json
import os
import shutil
import signal

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main
from landscape.errors import StoreError
from landscape.measures.runner import AnalysisConfig, analyze
from landscape.report.data import load
from landscape.report.page import runs_table
from landscape.store.train_read import read_index, read_run, store_info
from landscape.store.train_store import run_file
from landscape.train.experiment import train_experiment
from tests.helpers import TINY_FLAGS, tiny_config


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    path = tmp_path_factory.mktemp("damaged") / "tiny.h5"
    train_experiment(tiny_config(), path)
    return path


@pytest.fixture
def store(pristine, tmp_path):
    """A fresh copy of the tiny store for one test to damage."""
    shutil.copy(pristine, tmp_path / "tiny.h5")
    shutil.copytree(pristine.with_name("tiny.runs"), tmp_path / "tiny.runs")
    return tmp_path / "tiny.h5"


def invoke(*args, limit_s=20):
    """The CLI in process; a hang past `limit_s` fails the test instead of blocking it."""

    def on_alarm(signum, frame):
        raise TimeoutError(f"`landscape {args[0]}` hung for {limit_s} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit_s)
    try:
        result = CliRunner().invoke(main, [str(a) for a in args])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def _rows(store_path):
    return {r["id"]: r for r in json.loads(invoke("info", store_path, "--json").output)["runs"]}


def test_a_fifo_in_place_of_a_run_file_is_damaged_and_never_blocks(store):
    path = run_file(store, "normal-001")
    path.unlink()
    os.mkfifo(path)  # opening it for reading would block every command forever
    row = _rows(store)["normal-001"]
    assert row["status"] == "damaged" and not row["complete"]
    assert "FIFO" in row["problem"] and str(path) in row["problem"]
    table = invoke("info", store).output
    assert "damaged" in table and "missing" not in table


def test_a_run_file_without_final_params_is_left_out_of_analyze_with_a_note(store):
    with h5py.File(run_file(store, "normal-001"), "r+") as f:
        del f["final/params"]
    row = _rows(store)["normal-001"]
    assert row["status"] == "damaged" and "/final/params" in row["problem"]
    out = store.with_name("tiny.analysis.h5")
    res = invoke("analyze", store, "-o", out, "--only", "distance")
    assert res.exit_code == 0, res.output
    assert "run normal-001 is damaged and left out of this analysis" in res.output
    assert sorted(p.stem for p in out.with_name("tiny.analysis.d").glob("distance/*.h5")) == [
        "normal-000",
        "overfit-000",
        "overfit-001",
    ]


def test_garbled_attributes_name_the_file_the_object_and_what_was_expected(store):
    with h5py.File(store, "r+") as f:
        config = f.attrs["config"]
        f.attrs["config"] = "garbage{"
    res = invoke("info", store)
    assert res.exit_code == 1
    assert f"error: store {store}, attribute 'config'" in res.output
    assert "expected a config this landscape version reads" in res.output
    with h5py.File(store, "r+") as f:
        f.attrs["config"] = config
        f.attrs["planned_runs"] = json.dumps(["normal-000", "../../../etc/passwd-0"])
    with pytest.raises(StoreError, match=r"expected a run id like 'normal-000'.*etc/passwd"):
        read_index(store)


def test_a_huge_declared_shape_is_refused_before_any_allocation(store):
    path = run_file(store, "overfit-000")
    with h5py.File(path, "r+") as f:
        del f["final/params"]
        f.create_dataset("final/params", shape=(2**40,), dtype="f4", chunks=(1024,))
    with pytest.raises(StoreError) as e:
        read_run(store, "overfit-000")  # 4 TiB if it were read
    assert f"{path}, final/params: expected " in str(e.value)
    assert "1099511627776" in str(e.value) or "(2410,)" in str(e.value)


def test_a_link_out_of_the_store_is_refused(store, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "run.h5"
    shutil.copy(run_file(store, "normal-000"), outside)
    run_file(store, "normal-000").unlink()
    run_file(store, "normal-000").symlink_to(outside)
    rows = {r["id"]: r for r in store_info(store)["runs"]}
    assert rows["normal-000"]["status"] == "damaged"
    assert "symbolic link" in rows["normal-000"]["problem"]
    with h5py.File(run_file(store, "normal-001"), "r+") as f:  # an HDF5 link out, to a FIFO
        del f["init/params"]
        os.mkfifo(outside.with_name("fifo"))
        f["init/params"] = h5py.ExternalLink(str(outside.with_name("fifo")), "/")
    rows = {r["id"]: r for r in store_info(store)["runs"]}
    assert "an external link to" in rows["normal-001"]["problem"]


def test_non_finite_parameters_are_damage(store):
    with h5py.File(run_file(store, "overfit-001"), "r+") as f:
        f["checkpoints/params"][1, 5] = np.nan
    expected = r"checkpoints/params: expected finite values, found 1 NaN"
    with pytest.raises(StoreError, match=expected):
        read_run(store, "overfit-001")


def test_the_report_lists_a_damaged_run(store):
    with open(run_file(store, "overfit-001"), "r+b") as f:
        f.truncate(3000)
    data = load(store)
    row = next(r for r in data.runs if r["id"] == "overfit-001")
    assert row["status"] == "damaged"
    assert any(w.startswith("run overfit-001 is damaged") for w in data.warnings)
    assert "<td>damaged</td>" in runs_table(data.runs)


def test_train_refuses_to_overwrite_a_damaged_run_unless_told(store):
    path = run_file(store, "normal-001")
    with open(path, "r+b") as f:
        f.truncate(5000)
    damaged = path.read_bytes()
    res = invoke("train", "-o", store, *TINY_FLAGS)
    assert res.exit_code == 1
    assert "normal-001" in res.output and "--replace-damaged" in res.output
    assert path.read_bytes() == damaged  # untouched
    res = invoke("train", "-o", store, *TINY_FLAGS, "--replace-damaged", limit_s=120)
    assert res.exit_code == 0, res.output
    assert "replacing damaged run file(s): normal-001" in res.output
    assert {r["status"] for r in store_info(store)["runs"]} == {"complete"}


def test_a_damaged_result_is_computed_afresh_with_a_note(store):
    out = store.with_name("tiny.analysis.h5")
    analyze(store, out, AnalysisConfig(measures=("distance",)))
    result = out.with_name("tiny.analysis.d") / "distance" / "normal-000.h5"
    with h5py.File(result, "r+") as f:
        f.attrs["parameters"] = "{broken"
    res = invoke("info", out, "--json")
    row = next(r for r in json.loads(res.output)["results"] if r["key"] == "normal-000")
    assert row["status"] == "damaged" and "'parameters'" in row["problem"]
    res = invoke("analyze", store, "-o", out, "--only", "distance")
    assert res.exit_code == 0 and "distance normal-000: damaged, computing it afresh" in res.output
    assert "1 results to compute" in res.output


@pytest.mark.parametrize(
    "scalar",
    [
        {"quantity": "distance_l2", "label": "L2", "array": "l2"},  # no units
        {"quantity": "distance_l2", "label": "L2", "units": "L2", "array": "l2", "at": "middle"},
        {"quantity": "distance_l2", "label": "L2", "units": "L2"},  # reads nothing
        {"quantity": "distance_l2", "label": 7, "units": "L2", "array": "l2"},
    ],
)
def test_a_recorded_scalar_spec_the_summary_cannot_use_is_damage(store, tmp_path, scalar):
    """A garbled measure spec in the analysis index (here a summary scalar) is a StoreError
    naming the entry, found when the index is read, not a TypeError in the summary."""
    out = tmp_path / "tiny.analysis.h5"
    analyze(store, out, AnalysisConfig(measures=("distance",)))
    with h5py.File(out, "r+") as f:
        measures = json.loads(f.attrs["measures"])
        measures["distance"]["scalars"] = [scalar]
        f.attrs["measures"] = json.dumps(measures)
    res = invoke("analyze", store, "-o", out, "--only", "distance")
    assert res.exit_code == 1 and "entry 'distance': expected a measure spec" in res.output
    res = invoke("report", out, "-o", tmp_path / "report")
    assert res.exit_code == 1 and "entry 'distance'" in res.output
