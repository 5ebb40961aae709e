"""`landscape import` end to end on networks that are not ours (tests/foreign_nets.py).

Each test trains a foreign network for a few steps on tiny data, saves it with safetensors as a
user would, imports it with the CLI, analyzes a fast subset and reports. The oracle: the
gradient norm `landscape analyze` stores equals the one plain autograd gives on the user's own
module at the same weights, so the weights, the buffers and the data all arrived intact.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli.main import main
from landscape.core.layout import Layout
from tests import foreign_nets as F
from tests.conftest import REPO


@pytest.fixture(autouse=True)
def _one_thread_in_the_repo(monkeypatch):
    # `--model tests.foreign_nets:...` resolves like `python -m`: from the current directory.
    monkeypatch.chdir(REPO)
    # These nets are tiny: one thread is several times faster than two on shared cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def grad_norm(model, x, y):
    """||d mean CE / d theta||_2 of the user's module in eval mode (running BatchNorm stats)."""
    model.eval()
    loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
    grads = torch.autograd.grad(loss, list(model.parameters()))
    return float(torch.cat([g.flatten() for g in grads]).norm())


def result(store, measure, key):
    with h5py.File(store.with_name(store.stem + ".d") / measure / f"{key}.h5") as f:
        return {k: f[k][()] for k in f}


def test_torchvision_style_resnet_with_init_and_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    data = F.images()
    model = F.make_resnet()
    init = F.save(model, tmp_path / "init.safetensors")
    ckpt = F.save(F.train_briefly(model, data, steps=4), tmp_path / "ckpt.safetensors")
    final = F.save(F.train_briefly(model, data, steps=4, seed=1), tmp_path / "final.safetensors")
    out = tmp_path / "resnet.h5"
    res = run(
        "import", "--model", "tests.foreign_nets:make_resnet", "--model-arg", "width=4",
        "--weights", final, "--init", init, "--checkpoint", f"4={ckpt}", "--step", 8,
        "--data", "tests.foreign_nets:tiny_images", "-o", out,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "imported init, checkpoint 4, final" in res.output and "normal-000" in res.output

    # the stored final point is the module's parameters, its BatchNorm statistics came along
    layout, blayout = Layout.of_parameters(model), Layout.of_buffers(model)
    with h5py.File(tmp_path / "resnet.runs" / "normal-000.h5") as f:
        np.testing.assert_array_equal(
            f["final/params"][()], layout.flatten(dict(model.named_parameters())).numpy()
        )
        np.testing.assert_array_equal(
            f["final/buffers"][()], blayout.flatten(dict(model.named_buffers())).numpy()
        )
        assert list(f["checkpoints/step"][()]) == [4, 8] and f["init/params"].shape == (2888,)

    only = ["--only", "distance,gradient,hessian", "--top-k", 1, "--bn", "stored"]
    res = run("analyze", out, *only)
    assert res.exit_code == 0, res.output
    analysis = tmp_path / "resnet.analysis.h5"
    g = result(analysis, "gradient", "normal-000")
    assert list(g["step"]) == [0, 4, 8]
    expected = grad_norm(model, data["x_train"], data["y_train"])
    assert g["train_grad_norm"][-1] == pytest.approx(expected, rel=1e-4)
    d = result(analysis, "distance", "normal-000")
    with h5py.File(tmp_path / "resnet.runs" / "normal-000.h5") as f:
        change = f["final/params"][()].astype(np.float64) - f["init/params"][()]
    assert d["l2"][-1] == pytest.approx(np.linalg.norm(change), rel=1e-6)
    assert np.isfinite(result(analysis, "hessian", "normal-000")["eigenvalues"]).all()

    res = run("report", analysis, "-o", tmp_path / "report")
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["measures"]["distance"] == "computed" and summary["skipped"] == {}
    assert summary["experiment"]["model"] == "tests.foreign_nets:make_resnet(width=4)"
    assert summary["commands"]["import"].startswith("landscape import --model tests.foreign_nets")


def test_transformer_encoder_without_init_skips_what_needs_it(tmp_path):
    torch.manual_seed(0)
    data = F.sequences()
    model = F.train_briefly(F.make_transformer(), data, steps=6)
    np.savez(tmp_path / "seq.npz", **data)
    out = tmp_path / "tr.h5"
    res = run(
        "import", "--model", "tests.foreign_nets:make_transformer",
        "--weights", F.save(model, tmp_path / "final.safetensors"),
        "--data", tmp_path / "seq.npz", "--label", "overfit", "-o", out,
    )  # fmt: skip
    assert res.exit_code == 0, res.output

    res = run("analyze", out, "--only", "distance,gradient,hessian", "--top-k", 1)
    assert res.exit_code == 0, res.output
    assert "skipped distance/overfit-000: needs the initial point" in res.output
    analysis = tmp_path / "tr.analysis.h5"
    g = result(analysis, "gradient", "overfit-000")
    expected = grad_norm(model, data["x_train"], data["y_train"])
    assert g["train_grad_norm"][-1] == pytest.approx(expected, rel=1e-4)

    res = run("report", analysis, "-o", tmp_path / "report")
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["measures"]["distance"] == "skipped"
    assert "--init" in summary["skipped"]["distance"]["overfit-000"]
    assert "distance" not in summary["not_computed"]
    page = (tmp_path / "report" / "report.html").read_text()
    assert "skipped" in page and "imported without --init" in page
    assert "Imported points (landscape import) have no training history." in page


def test_dask_workers_reimport_the_users_module(tmp_path):
    pytest.importorskip("distributed")
    torch.manual_seed(0)
    data = F.sequences()
    np.savez(tmp_path / "seq.npz", **data)
    weights = F.save(
        F.train_briefly(F.make_transformer(), data, steps=3), tmp_path / "w.safetensors"
    )
    out = tmp_path / "tr.h5"
    res = run(
        "import", "--model", "tests.foreign_nets:make_transformer", "--weights", weights,
        "--data", tmp_path / "seq.npz", "-o", out,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    only = ["--only", "gradient,hessian", "--top-k", 1]
    assert run("analyze", out, *only, "-o", tmp_path / "here.h5").exit_code == 0
    res = run(
        "analyze", out, *only, "-o", tmp_path / "dask.h5", "--executor", "dask", "--workers", 1
    )
    assert res.exit_code == 0, res.output
    for measure in ("gradient", "hessian"):
        a, b = (result(tmp_path / f"{w}.h5", measure, "normal-000") for w in ("here", "dask"))
        for name in a:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-6, err_msg=f"{measure}/{name}")


def test_a_builtin_architecture_on_a_builtin_dataset(tmp_path):
    from landscape.config import ModelConfig
    from landscape.models import build_model

    model = build_model(ModelConfig(widths=(16,)), input_shape=(1, 8, 8), n_outputs=10)
    weights = F.save(model, tmp_path / "mlp.safetensors")
    out = tmp_path / "mlp.h5"
    res = run(
        "import", "--model", "mlp", "--model-arg", "widths=[16]", "--weights", weights,
        "--dataset", "digits", "--subset", 100, "--test-subset", 50, "-o", out,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    res = run("analyze", out, "--only", "gradient")
    assert res.exit_code == 0, res.output
    g = result(tmp_path / "mlp.analysis.h5", "gradient", "normal-000")
    assert g["train_grad_norm"].shape == (1,) and np.isfinite(g["train_grad_norm"]).all()


def test_float_targets_make_a_regression_and_the_output_width_is_checked(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    data = {"x_train": x[:30], "y_train": x[:30, :1] * 2, "x_test": x[30:], "y_test": x[30:, :1]}
    np.savez(tmp_path / "reg.npz", **data)
    common = ["--data", tmp_path / "reg.npz"]
    for outputs, code in ((1, 0), (2, 1)):
        model = torch.nn.Linear(3, outputs)
        weights = F.save(model, tmp_path / f"lin{outputs}.safetensors")
        res = run(
            "import", "--model", "torch.nn:Linear", "--model-arg", "in_features=3",
            "--model-arg", f"out_features={outputs}", "--weights", weights, *common,
            "-o", tmp_path / f"lin{outputs}.h5",
        )  # fmt: skip
        assert res.exit_code == code, res.output
    assert "expected outputs (batch, 1 values) per input for the regression targets" in res.output
    res = run("analyze", tmp_path / "lin1.h5", "--only", "gradient,hessian", "--top-k", 1)
    assert res.exit_code == 0, res.output
    # a linear model under MSE: the Hessian is 2 X^T X / n over (x, 1), exactly
    xb = np.hstack([data["x_train"], np.ones((30, 1), np.float32)]).astype(np.float64)
    top = np.linalg.eigvalsh(2 * xb.T @ xb / 30)[-1]
    h = result(tmp_path / "lin1.analysis.h5", "hessian", "normal-000")
    assert h["eigenvalues"][0] == pytest.approx(top, rel=1e-4)
