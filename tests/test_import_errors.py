"""`landscape import` on bad input: one message that says where, what was expected, what was
found and the fix; exit 1 (2 for usage errors); nothing written, nothing changed."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
import safetensors.torch
import torch
from click.testing import CliRunner

from cli.main import main
from landscape.store.train_store import file_checksum
from tests import foreign_nets as F
from tests.conftest import REPO

RESNET = "tests.foreign_nets:make_resnet"


@pytest.fixture(autouse=True)
def _in_the_repo(monkeypatch):
    monkeypatch.chdir(REPO)  # module:function paths resolve from the current directory


@pytest.fixture
def files(tmp_path):
    """A saved foreign ResNet and its data, in a folder of their own."""
    src = tmp_path / "src"
    src.mkdir()
    torch.manual_seed(0)
    model = F.make_resnet()
    np.savez(src / "images.npz", **F.images())
    return {"model": model, "weights": F.save(model, src / "w.safetensors"), "dir": src}


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def snapshot(folder):
    return {p: file_checksum(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def import_(files, *extra, weights=None, out=None, data=None):
    out = out or files["dir"].parent / "out.h5"
    return run(
        "import", "--model", RESNET, "--weights", weights or files["weights"],
        "--data", data or files["dir"] / "images.npz", "-o", out, *extra,
    )  # fmt: skip


def refused(tmp_path, res, code, *fragments):
    """The command failed with `code`, said every fragment, wrote nothing beside src/."""
    assert res.exit_code == code, res.output
    assert res.output.startswith("error: ") and "Traceback" not in res.output
    for text in fragments:
        assert text in res.output, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_missing_and_unreadable_weights(tmp_path, files):
    refused(tmp_path, import_(files, weights=tmp_path / "src" / "nope.safetensors"), 1,
            "nope.safetensors: no such file")  # fmt: skip
    garbage = tmp_path / "src" / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01 not a safetensors header")
    refused(tmp_path, import_(files, weights=garbage), 1,
            "not a readable safetensors file", "save_file")  # fmt: skip


class _Boom:
    def __reduce__(self):  # runs on unpickling: it must never happen
        return (open, (str(REPO / "tests" / ".unpickled-marker"), "w"))


def test_a_pickle_is_refused_unread(tmp_path, files):
    pt = tmp_path / "src" / "model.pt"
    pt.write_bytes(pickle.dumps(_Boom()))
    refused(tmp_path, import_(files, weights=pt), 1, "is a pickle", "weights_only=True",
            "safetensors.torch.save_file")  # fmt: skip
    assert not (REPO / "tests" / ".unpickled-marker").exists()


def test_wrong_names_and_shapes_are_each_named(tmp_path, files):
    sd = {k: v.contiguous() for k, v in files["model"].state_dict().items()}
    sd["fc.weight"] = torch.zeros(5, 8)  # mis-shaped: the model has (4, 8)
    sd["head.bias"] = sd.pop("fc.bias")  # fc.bias missing, head.bias unexpected
    del sd["layer1.0.conv1.weight"]  # missing
    path = tmp_path / "src" / "bad.safetensors"
    safetensors.torch.save_file(sd, path)
    refused(
        tmp_path, import_(files, weights=path), 1,
        "missing (in the model, not in the file): 2: layer1.0.conv1.weight; fc.bias",
        "unexpected (in the file, not in the model): 1: head.bias",
        "mis-shaped: 1: fc.weight: file (5, 8), model (4, 8)",
        "fix: save the state_dict of the same architecture",
    )  # fmt: skip


def test_a_dataparallel_prefix_is_pointed_out(tmp_path, files):
    sd = {f"module.{k}": v.contiguous() for k, v in files["model"].state_dict().items()}
    path = tmp_path / "src" / "dp.safetensors"
    safetensors.torch.save_file(sd, path)
    refused(tmp_path, import_(files, weights=path), 1, "starts with 'module.': strip it")


def test_nan_in_the_weights_is_named(tmp_path, files):
    sd = {k: v.clone().contiguous() for k, v in files["model"].state_dict().items()}
    sd["layer2.1.conv2.weight"][0, 0, 0, :2] = float("nan")
    path = tmp_path / "src" / "nan.safetensors"
    safetensors.torch.save_file(sd, path)
    refused(tmp_path, import_(files, weights=path), 1,
            "layer2.1.conv2.weight (2 NaN, 0 inf of 576)", "earlier checkpoint")  # fmt: skip


@pytest.mark.parametrize(
    ("model", "code", "fragments"),
    [
        ("tests.foreign_nets:make_broken", 1,
         ["the factory raised ValueError: width 4 is not supported", "--model-arg"]),
        ("tests.foreign_nets:make_not_a_module", 1,
         ["expected the factory to return a torch.nn.Module, found int"]),
        ("nosuchpkg.nets:make", 1, ["no module named 'nosuchpkg'", "run from the folder"]),
        ("tests.foreign_nets:make_resnett", 1,
         ["has no attribute 'make_resnett'", "make_resnet", "make_transformer"]),
        ("make_resnet", 2, ["expected a built-in architecture (mlp, lenet, resnet, lenet-paper, "
                            "resnet-paper) or an import path module:factory"]),
    ],
)  # fmt: skip
def test_factories_that_do_not_give_a_module(tmp_path, files, model, code, fragments):
    res = run(
        "import", "--model", model, "--model-arg", "width=4", "--weights", files["weights"],
        "--data", files["dir"] / "images.npz", "-o", tmp_path / "out.h5",
    )  # fmt: skip
    refused(tmp_path, res, code, *fragments)


def test_data_files_with_wrong_keys_or_lengths(tmp_path, files):
    d = F.images()
    np.savez(tmp_path / "src" / "keys.npz", x=d["x_train"], y=d["y_train"])
    refused(tmp_path, import_(files, data=tmp_path / "src" / "keys.npz"), 1,
            "expected arrays x_train, y_train, x_test, y_test; missing x_train, y_train, "
            "x_test, y_test; found x, y")  # fmt: skip
    with h5py.File(tmp_path / "src" / "short.h5", "w") as f:
        for k, v in d.items():
            f[k] = v[:-1] if k == "y_train" else v
    refused(tmp_path, import_(files, data=tmp_path / "src" / "short.h5"), 1,
            "x_train (48, 3, 8, 8) and y_train (47,)")  # fmt: skip
    np.savez(tmp_path / "src" / "obj.npz", **(d | {"y_test": np.array([None] * 24)}))
    refused(tmp_path, import_(files, data=tmp_path / "src" / "obj.npz"), 1,
            "not a readable .npz file of plain numeric arrays")  # fmt: skip


def test_data_the_model_cannot_take(tmp_path, files):
    np.savez(tmp_path / "src" / "seq.npz", **F.sequences())
    refused(tmp_path, import_(files, data=tmp_path / "src" / "seq.npz"), 1,
            "its forward pass on 2 training inputs of shape (2, 6, 4) raised")  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--checkpoint", "5=c.safetensors"], "--checkpoint needs --step"),
        (["--checkpoint", "five=c.safetensors"], "expected STEP=FILE"),
        (["--step", "3", "--checkpoint", "5=c.safetensors"], "must lie in [0, --step 3)"),
        (["--model-arg", "width"], "expected KEY=VALUE"),
        (["--label", "my-run"], "--label 'my-run': expected letters, digits and _"),
        (["--dataset", "digits"], "expected exactly one of --dataset"),
    ],
)
def test_usage_errors_exit_2(tmp_path, files, extra, fragment):
    refused(tmp_path, import_(files, *extra), 2, fragment)


def test_an_existing_output_is_never_overwritten(tmp_path, files):
    out = tmp_path / "src" / "out.h5"
    assert import_(files, out=out).exit_code == 0
    before = snapshot(tmp_path)
    res = import_(files, out=out)
    assert res.exit_code == 1 and "exists; landscape import never overwrites" in res.output
    assert "--append" in res.output
    assert snapshot(tmp_path) == before


def test_append_adds_a_labelled_run_of_the_same_model_only(tmp_path, files):
    out = tmp_path / "src" / "pair.h5"
    assert import_(files, out=out).exit_code == 0
    res = import_(files, "--label", "overfit", "--append", out=out)
    assert res.exit_code == 0, res.output
    assert run("info", out).output.count("complete") == 2
    wide = F.save(F.make_resnet(width=8), tmp_path / "src" / "wide.safetensors")
    before = snapshot(tmp_path)
    res = import_(files, "--model-arg", "width=8", "--append", weights=wide, out=out)
    assert res.exit_code == 1 and "--append needs the same --model" in res.output
    assert "'kwargs': {'width': 8}" in res.output
    assert snapshot(tmp_path) == before
    res = run("train", "-o", out, "--runs", 1)
    assert res.exit_code == 1 and "imported with `landscape import`" in res.output
    assert snapshot(tmp_path) == before


def test_a_failure_while_writing_leaves_nothing(tmp_path, files, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr("landscape.store.train_store.write_index", disk_full)
    res = import_(files)
    assert isinstance(res.exception, OSError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
