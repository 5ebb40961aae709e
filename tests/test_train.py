import numpy as np
import pytest
import torch

from landscape.core.devices import resolve_device
from landscape.data import build_training_set, load_dataset
from landscape.store.train_store import read_run
from landscape.train import trainer as trainmod
from landscape.train.experiment import train_experiment
from landscape.train.trainer import RuntimeOptions, make_schedule, train_group
from tests.helpers import tiny_config


@pytest.fixture(scope="module")
def setup():
    cfg = tiny_config(runs=3)
    ds = load_dataset(cfg.data)
    return cfg, ds, build_training_set(ds, "overfit", seed=0)


def test_batched_and_loop_give_the_same_runs(setup, device):
    cfg, ds, tset = setup
    batched = train_group(cfg, ds, tset, [0, 1, 2], device=device, batched=True, budget=2**26)
    for rec in batched:
        (loop,) = train_group(
            cfg, ds, tset, [rec.index], device=device, batched=False, budget=2**26
        )
        np.testing.assert_array_equal(rec.init_params, loop.init_params)
        np.testing.assert_allclose(rec.final_params, loop.final_params, rtol=1e-4, atol=1e-5)
        for key in ("train_loss", "test_acc", "grad_norm", "dist_init"):
            np.testing.assert_allclose(rec.history[key], loop.history[key], rtol=1e-3, atol=1e-5)
    # different seeds really are different runs
    assert not np.allclose(batched[0].final_params, batched[1].final_params)


def test_schedule_is_log_spaced_and_ends_at_the_last_step():
    cfg = tiny_config(epochs=50)
    sched = make_schedule(cfg, 300)
    assert sched.steps_per_epoch == 5 and sched.total_steps == 250
    assert sched.checkpoint_steps[-1] == 250 and sched.checkpoint_steps[0] == 1
    assert sched.log_steps[0] == 0 and sched.log_steps[-1] == 250
    full = make_schedule(tiny_config(epochs=2), 300)
    assert full.batch_size == 64
    assert (
        make_schedule(
            tiny_config().__class__(
                data=cfg.data,
                model=cfg.model,
                optim=cfg.optim.__class__(batch_size=0),
                train=cfg.train,
            ),
            300,
        ).steps_per_epoch
        == 1
    )


def test_normal_and_overfit_share_init_and_same_seed_same_numbers(tmp_path):
    cfg = tiny_config()
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    train_experiment(cfg, a)
    train_experiment(cfg, b)
    for k in range(2):
        normal, overfit = read_run(a, f"normal-{k:03d}"), read_run(a, f"overfit-{k:03d}")
        np.testing.assert_array_equal(normal["init"]["params"], overfit["init"]["params"])
        again = read_run(b, f"overfit-{k:03d}")
        np.testing.assert_array_equal(overfit["final"]["params"], again["final"]["params"])
        np.testing.assert_array_equal(
            overfit["history"]["test_loss"], again["history"]["test_loss"]
        )
    assert not np.array_equal(
        read_run(a, "normal-000")["init"]["params"], read_run(a, "normal-001")["init"]["params"]
    )


def test_a_diverging_run_is_marked_and_the_others_go_on(setup, monkeypatch, device):
    cfg, ds, tset = setup
    real = trainmod._initial_modules

    def poisoned(cfg, ds, indices):
        modules = real(cfg, ds, indices)
        with torch.no_grad():
            next(modules[1].parameters())[0, 0] = float("nan")
        return modules

    monkeypatch.setattr(trainmod, "_initial_modules", poisoned)
    recs = train_group(cfg, ds, tset, [0, 1, 2], device=device, batched=True, budget=2**26)
    assert [r.status for r in recs] == ["complete", "diverged", "complete"]
    assert recs[1].diverged_step == 0 and recs[0].diverged_step == -1
    assert recs[1].final_step == 0 and len(recs[1].checkpoint_steps) == 0
    assert recs[0].final_step == make_schedule(cfg, len(tset.x)).total_steps
    assert (
        np.isfinite(recs[0].final_params).all() and np.isfinite(recs[2].history["train_loss"]).all()
    )


def test_every_run_diverging_stops_early(setup, monkeypatch, device):
    cfg, ds, tset = setup
    real = trainmod._initial_modules

    def poisoned(cfg, ds, indices):
        modules = real(cfg, ds, indices)
        with torch.no_grad():
            for m in modules:
                next(m.parameters()).fill_(float("inf"))
        return modules

    monkeypatch.setattr(trainmod, "_initial_modules", poisoned)
    recs = train_group(cfg, ds, tset, [0, 1], device=device, batched=True, budget=2**26)
    total = make_schedule(cfg, len(tset.x)).total_steps
    assert all(r.status == "diverged" and r.diverged_step == 0 for r in recs)
    assert recs[0].history["step"][-1] < total  # stopped at the first log step, not the last


def test_batchnorm_resnet_trains_batched(device):
    cfg = tiny_config(epochs=1).__class__(
        data=tiny_config().data,
        model=tiny_config().model.__class__(name="resnet"),
        optim=tiny_config().optim,
        train=tiny_config(epochs=1, runs=2).train,
    )
    ds = load_dataset(cfg.data)
    tset = build_training_set(ds, "normal")
    recs = train_group(cfg, ds, tset, [0, 1], device=device, batched=True, budget=2**26)
    assert recs[0].final_buffers.size > 0
    assert not np.allclose(recs[0].final_buffers, recs[1].final_buffers)  # per-run statistics
    (loop,) = train_group(cfg, ds, tset, [1], device=device, batched=False, budget=2**26)
    np.testing.assert_allclose(recs[1].final_buffers, loop.final_buffers, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(recs[1].final_params, loop.final_params, rtol=1e-3, atol=1e-4)


def test_runtime_device_auto_is_cpu_here():
    assert resolve_device("auto").type in ("cpu", "cuda")
    assert RuntimeOptions().batched


def test_a_model_vmap_cannot_batch_falls_back_to_the_loop_and_says_so(tmp_path, monkeypatch):
    from landscape.train import experiment

    def unbatchable(cfg, ds):
        return "vmap: in-place operation on an unbatched tensor"

    monkeypatch.setattr(experiment, "batching_problem", unbatchable)
    events = []
    summary = experiment.train_experiment(
        tiny_config(mode="normal"), tmp_path / "s.h5", on_event=events.append
    )
    notes = [e.message for e in events if e.kind == "note"]
    assert any("cannot be batched" in n and "one at a time" in n for n in notes)
    assert len(summary.trained) == 2
    assert read_run(tmp_path / "s.h5", "normal-001")["attrs"]["batched"] == False  # noqa: E712


def test_every_shipped_model_batches():
    from landscape.train.trainer import batching_problem

    for name in ("mlp", "lenet", "resnet"):
        cfg = tiny_config()
        cfg = cfg.__class__(
            data=cfg.data, model=cfg.model.__class__(name=name), optim=cfg.optim, train=cfg.train
        )
        assert batching_problem(cfg, load_dataset(cfg.data)) is None, name
