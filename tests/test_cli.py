"""The command line as a user meets it: exit codes, messages, and the quick preset's targets."""

import json

import h5py
import pytest
from click.testing import CliRunner

from cli.main import main
from landscape.store.train_store import runs_dir
from tests.helpers import TINY_FLAGS


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_presets_lists_names_and_descriptions():
    res = run("presets")
    assert res.exit_code == 0
    assert "quick" in res.output and "merkulov-mnist-mlp" in res.output and "digits" in res.output


def test_help_teaches():
    res = run("train", "--help")
    assert res.exit_code == 0
    for text in ("--preset", "--mode", "[optim.lr]", "--batched / --no-batched", "LANDSCAPE_DATA"):
        assert text in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "nope"], "unknown preset 'nope'; available:"),
        (["--set", "optim.learning_rate=1"], "known keys in [optim]"),
        (["--set", "optim.name=rmsprop"], "allowed: adam, adamw, sgd"),
        (["--lr", "-1"], "Invalid value for '--lr'"),
        (["--mode", "sideways"], "'sideways' is not one of"),
        (["--widths", "5,x"], "expected integers separated by commas"),
        (["-c", "/nonexistent/c.toml"], "config file /nonexistent/c.toml: not found"),
        (["--device", "cuda"], "CUDA is not available"),
        (["--model", "lenet", "--dataset", "line"], "needs image data"),
    ],
)
def test_bad_input_exits_2_with_a_message(tmp_path, args, message):
    if args[:2] == ["--device", "cuda"]:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    res = run("train", "-o", tmp_path / "s.h5", *args)
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert not (tmp_path / "s.h5").exists()


def test_missing_dataset_offline_exits_1(tmp_path):
    res = run(
        "train",
        "-o",
        tmp_path / "s.h5",
        "--dataset",
        "mnist",
        "--offline",
        "--data-dir",
        tmp_path / "empty",
    )
    assert res.exit_code == 1
    assert "error:" in res.output and "mnist" in res.output.lower()


def test_info_on_missing_and_corrupt_stores_exits_1(tmp_path):
    res = run("info", tmp_path / "none.h5")
    assert res.exit_code == 1 and "no such file" in res.output
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n garbage")
    res = run("info", bad)
    assert res.exit_code == 1 and "not a readable HDF5 file" in res.output


def test_a_different_config_on_an_existing_store_is_refused_and_loses_nothing(tmp_path):
    path = tmp_path / "s.h5"
    assert run("train", "-o", path, *TINY_FLAGS, "--runs", "1").exit_code == 0
    before = {p.name: p.read_bytes() for p in runs_dir(path).iterdir()}
    index = path.read_bytes()
    res = run("train", "-o", path, *TINY_FLAGS, "--runs", "1", "--lr", "0.01")
    assert res.exit_code == 2
    assert "optim.lr: stored 0.001, requested 0.01" in res.output
    assert {p.name: p.read_bytes() for p in runs_dir(path).iterdir()} == before
    assert path.read_bytes() == index


def test_more_runs_extend_a_store(tmp_path):
    path = tmp_path / "s.h5"
    run("train", "-o", path, *TINY_FLAGS, "--runs", "1", "--mode", "normal")
    res = run("train", "-o", path, *TINY_FLAGS, "--runs", "2", "--mode", "normal")
    assert res.exit_code == 0 and "trained 1 runs" in res.output and "1 were already" in res.output


def test_divergence_exits_1_and_is_stored(tmp_path):
    path = tmp_path / "d.h5"
    res = run(
        "train",
        "-o",
        path,
        "--dataset",
        "line",
        "--optimizer",
        "sgd",
        "--lr",
        "10",
        "--epochs",
        "50",
        "--runs",
        "2",
        "--mode",
        "normal",
    )
    assert res.exit_code == 1
    assert "diverged" in res.output
    info = json.loads(run("info", path, "--json").output)
    for r in info["runs"]:
        assert r["status"] == "diverged" and r["complete"]
        assert r["diverged_step"] > r["steps"]  # final is the last finite checkpoint
    with h5py.File(path) as f:
        assert f["runs/normal-000"].attrs["status"] == "diverged"


def test_dry_run_prints_the_resolved_config(tmp_path):
    res = run("train", "-o", tmp_path / "s.h5", "--dry-run", "--lr", "0.02")
    assert res.exit_code == 0
    assert '"lr": 0.02' in res.output and "overfit-003" in res.output
    assert not (tmp_path / "s.h5").exists()


@pytest.fixture(scope="module")
def quick_store(tmp_path_factory):
    """The README's demo store: the quick preset exactly as a user runs it (~40 s)."""
    path = tmp_path_factory.mktemp("quick") / "quick.h5"
    res = run("train", "--preset", "quick", "-o", path)
    assert res.exit_code == 0, res.output
    return path


def test_quick_preset_reaches_the_issue_targets(quick_store):
    info = json.loads(run("info", quick_store, "--json").output)
    runs = info["runs"]
    assert len(runs) == 8 and all(r["complete"] and r["status"] == "complete" for r in runs)
    for r in runs:
        f = r["final"]
        if r["mode"] == "overfit":
            assert f["train_acc"] >= 0.99 and f["test_acc"] <= 0.05, r
            assert f["corrupt_acc"] >= 0.99, r
        else:
            assert f["test_acc"] >= 0.9, r


def test_quick_again_has_nothing_to_do(quick_store):
    stamps = {p: p.stat().st_mtime_ns for p in runs_dir(quick_store).iterdir()}
    res = run("train", "--preset", "quick", "-o", quick_store)
    assert res.exit_code == 0
    assert "nothing to do: all 8 runs" in res.output
    assert {p: p.stat().st_mtime_ns for p in runs_dir(quick_store).iterdir()} == stamps


def test_info_table(quick_store):
    res = run("info", quick_store)
    lines = res.output.strip().splitlines()
    assert lines[0].split()[:4] == ["run", "mode", "seed", "status"]
    assert len(lines) == 9 and lines[5].startswith("overfit-000")


def test_run_quick_is_the_readme_demo_and_checks_its_claims(quick_store, tmp_path):
    """`landscape run quick` (train: nothing left; analyze; report), then `landscape report`
    alone finds the claims the train store recorded before training."""
    out = tmp_path / "report"
    res = run("run", "quick", "--store", quick_store, "-o", out)
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    status = {c["id"]: c["status"] for c in summary["claims"]}
    assert len(status) == 6 and set(status.values()) <= {"pass", "fail"}
    for claim in ("a-overfit-train", "a-overfit-test", "c-farther-equal-epochs"):
        assert status[claim] == "pass", summary["claims"]
    assert (out / "report.html").stat().st_size > 100_000  # figures inlined
    with h5py.File(quick_store) as f:
        assert json.loads(f.attrs["claims"])[0]["id"] == "a-overfit-train"
    again = tmp_path / "again"
    analysis = quick_store.with_name("quick.analysis.h5")
    res = run("report", analysis, "-o", again)
    assert res.exit_code == 0, res.output
    assert json.loads((again / "summary.json").read_text())["claims"] == summary["claims"]
    for name in summary["figures"]:
        assert (again / "figures" / name).read_bytes() == (out / "figures" / name).read_bytes()


def test_report_of_a_missing_store_exits_1(tmp_path):
    res = run("report", tmp_path / "nope.analysis.h5", "-o", tmp_path / "r")
    assert res.exit_code == 1
    assert "nope.analysis.h5" in res.output
