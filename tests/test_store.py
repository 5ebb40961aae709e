import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from landscape.core.layout import Layout
from landscape.errors import StoreError
from landscape.store.train_store import read_index, read_run, run_file, runs_dir, store_info
from landscape.train.experiment import train_experiment
from tests.helpers import TINY_FLAGS, tiny_config


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "tiny.h5"
    train_experiment(tiny_config(), path)
    return path


def test_plain_h5py_sees_everything_through_the_index(tiny_store):
    with h5py.File(tiny_store, "r") as f:
        cfg = json.loads(f.attrs["config"])
        assert cfg["data"]["name"] == "digits"
        assert sorted(f["runs"]) == ["normal-000", "normal-001", "overfit-000", "overfit-001"]
        run = f["runs/overfit-001"]  # an external link, followed by h5py alone
        assert run.attrs["mode"] == "overfit" and run.attrs["seed"] == 1
        layout = {k: run["layout"][k][()] for k in run["layout"]}
        params = run["final/params"][()]
        assert params.dtype == np.float32 and params.shape == (Layout.from_arrays(layout).size,)
        assert run["checkpoints/params"].shape[1] == params.shape[0]
        np.testing.assert_array_equal(run["checkpoints/params"][-1], params)
        assert run["corrupt_targets"].shape == (100,)


def test_every_array_is_described_and_steps_are_dimension_scales(tiny_store):
    path = run_file(tiny_store, "normal-000")
    with h5py.File(path, "r") as f:
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for name in names:
            assert "long_name" in f[name].attrs and "units" in f[name].attrs, name
        assert f["history/step"].is_scale and f["checkpoints/step"].is_scale
        assert f["history/test_acc"].dims[0][0].name == "/history/step"
        for key in ("torch_version", "landscape_version", "dataset_fingerprint", "config"):
            assert f.attrs[key]


def test_history_is_consistent(tiny_store):
    run = read_run(tiny_store, "overfit-000")
    h = run["history"]
    assert h["step"][0] == 0 and h["step"][-1] == run["final_attrs"]["step"]
    assert np.all(np.diff(h["step"]) > 0)
    assert h["dist_init"][0] == 0 and np.all(h["dist_init"][1:] > 0)
    np.testing.assert_allclose(
        h["dist_init"][-1],
        np.linalg.norm(run["final"]["params"] - run["init"]["params"]),
        rtol=1e-5,
    )
    assert np.all((h["train_acc"] >= 0) & (h["train_acc"] <= 1))
    assert np.isfinite(h["corrupt_acc"]).all()
    assert np.isnan(read_run(tiny_store, "normal-000")["history"]["corrupt_acc"]).all()


def test_info_json_schema(tiny_store):
    info = store_info(tiny_store)
    assert set(info) == {"runs"}
    for r in info["runs"]:
        assert {"id", "mode", "seed", "complete", "steps", "epochs", "final"} <= set(r)
        assert set(r["final"]) == {
            "train_acc",
            "train_loss",
            "test_acc",
            "test_loss",
            "corrupt_acc",
        }
        assert 0 <= r["final"]["train_acc"] <= 1
        assert (r["final"]["corrupt_acc"] is None) == (r["mode"] == "normal")


def test_missing_and_corrupt_stores_raise(tmp_path):
    with pytest.raises(StoreError, match="no such file"):
        read_index(tmp_path / "none.h5")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(StoreError, match="not a readable HDF5"):
        read_index(bad)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(StoreError, match="expected a landscape train store"):
        read_index(other)


def _train_cmd(path, *extra):
    return [sys.executable, "-m", "cli.main", "train", "-o", str(path), *TINY_FLAGS, *extra]


def test_resume_after_sigkill_gives_the_same_runs(tmp_path):
    flags = ["--epochs", "40", "--group-size", "1", "--runs", "3"]
    killed = tmp_path / "killed.h5"
    proc = subprocess.Popen(
        _train_cmd(killed, *flags),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=os.getcwd(),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(runs_dir(killed).glob("*.h5")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = list(runs_dir(killed).glob("*.h5"))
    assert 1 <= len(done) < 6, "kill should land after the first run and before the last"
    info = store_info(killed)  # the index is readable after the kill
    assert sum(r["complete"] for r in info["runs"]) == len(done)
    subprocess.run(_train_cmd(killed, *flags), check=True, capture_output=True)
    whole = tmp_path / "whole.h5"
    subprocess.run(_train_cmd(whole, *flags), check=True, capture_output=True)
    assert not list(runs_dir(killed).glob(".*tmp*"))
    for r in store_info(whole)["runs"]:
        a, b = read_run(killed, r["id"]), read_run(whole, r["id"])
        np.testing.assert_array_equal(a["final"]["params"], b["final"]["params"])
        np.testing.assert_array_equal(a["history"]["test_loss"], b["history"]["test_loss"])
