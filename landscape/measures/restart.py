"""What an optimizer does when restarted from a stored point on the clean training set.

Merkulov & Oseledets restart from an extreme-overfitting point with SGD (and, in their code,
full-batch Adam) on the clean data only and ask whether it walks to a point that generalizes.
The restart here trains one flat parameter vector through the objective's model, so the stored
point is never modified.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from landscape.core.flat import Objective
from landscape.errors import ConfigError
from landscape.measures.common import all_runs, line, line_arrays, objectives, step_array
from landscape.measures.slices import default_alphas
from landscape.measures.spec import (
    ALPHA_MAX,
    ALPHA_MIN,
    ALPHA_POINTS,
    L2,
    LOSS_UNITS,
    Context,
    MeasureSpec,
    Setting,
    Stored,
)
from landscape.store.summary import Scalar

if TYPE_CHECKING:
    from landscape.measures.runs import Experiment
    from landscape.measures.settings import AnalysisConfig


@dataclass(frozen=True)
class Recipe:
    optimizer: str  # sgd | adam
    lr: float
    batch_size: int  # 0: full batch
    steps: int = 0  # optimizer steps; 0: use epochs
    epochs: int = 0
    momentum: float = 0.0


RECIPES: dict[str, Recipe] = {
    # ours, not the authors': minibatch SGD lr 0.1 for 20 epochs, sized for the CPU presets
    # (640 steps on merkulov-mnist-lenet's 2,000 images, against the authors' 20,000)
    "sgd": Recipe(optimizer="sgd", lr=0.1, batch_size=64, epochs=20),
    # the authors' code's SGD restart: plain SGD, lr 0.5, batch 64, 20,000 iterations
    "sgd-paper": Recipe(optimizer="sgd", lr=0.5, batch_size=64, steps=20_000),
    # full-batch Adam 1e-3 for 300 steps, as in the paper's code
    "adam-full": Recipe(optimizer="adam", lr=1e-3, batch_size=0, steps=300),
}


@dataclass(frozen=True)
class RestartResult:
    steps: np.ndarray  # (m,) logged optimizer steps, 0 = the starting point
    train_loss: np.ndarray  # (m,) full-batch clean training loss
    train_acc: np.ndarray  # (m,)
    test_loss: np.ndarray  # (m,)
    test_acc: np.ndarray  # (m,)
    grad_norm: np.ndarray  # (m,) ||grad of the clean training loss||_2
    dist_moved: np.ndarray  # (m,) ||theta_t - theta_start||_2
    dist_init: np.ndarray  # (m,) ||theta_t - theta_init||_2
    end: torch.Tensor  # (P,) the point the restart ends at
    diverged_step: int  # first step with a non-finite loss; -1 if none


def recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ConfigError(f"restart recipe {name!r}: unknown; known: {', '.join(RECIPES)}")
    return RECIPES[name]


def _schedule(r: Recipe, n: int, log_points: int) -> tuple[int, int, np.ndarray]:
    batch = min(r.batch_size or n, n)
    per_epoch = -(-n // batch)
    total = r.steps or r.epochs * per_epoch
    logs = np.unique(np.round(np.concatenate([[0, total], np.geomspace(1, total, log_points)])))
    return batch, total, logs.astype(np.int64)


def _optimizer(r: Recipe, theta: torch.Tensor) -> torch.optim.Optimizer:
    if r.optimizer == "sgd":
        return torch.optim.SGD([theta], lr=r.lr, momentum=r.momentum)
    return torch.optim.Adam([theta], lr=r.lr)


def restart(
    train: Objective,
    test: Objective,
    start: torch.Tensor,
    init: torch.Tensor,
    r: Recipe,
    *,
    generator: torch.Generator,
    log_points: int = 30,
) -> RestartResult:
    """Train from `start` (P,) on `train`'s data with recipe `r`; log at log-spaced steps.

    The minibatch order is drawn from `generator`. `init` (P,) is the run's initial point, for
    the distance from init.
    """
    batch, total, logs = _schedule(r, train.n, log_points)
    theta = start.detach().clone().to(train.x.device).requires_grad_()
    opt = _optimizer(r, theta)
    rows: list[list[float]] = []
    bad, step = -1, 0
    rows.append(_log(train, test, theta, start, init))
    while step < total and bad < 0:
        perm = torch.randperm(train.n, generator=generator).to(train.x.device)
        for b in range(0, train.n, batch):
            if step >= total:
                break
            idx = perm[b : b + batch]
            loss = train.step_loss(theta, train.x[idx], train.y[idx])
            if not torch.isfinite(loss):
                bad = step
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step in logs:
                rows.append(_log(train, test, theta, start, init))
    cols = np.array(rows, dtype=np.float64).T
    logged = logs[logs <= step][: cols.shape[1]]
    train_loss, train_acc, test_loss, test_acc, grad_norm, dist_moved, dist_init = cols
    return RestartResult(
        steps=logged,
        train_loss=train_loss,
        train_acc=train_acc,
        test_loss=test_loss,
        test_acc=test_acc,
        grad_norm=grad_norm,
        dist_moved=dist_moved,
        dist_init=dist_init,
        end=theta.detach().cpu(),
        diverged_step=bad,
    )


def _log(
    train: Objective, test: Objective, theta: torch.Tensor, start: torch.Tensor, init: torch.Tensor
) -> list[float]:
    point = theta.detach()
    tr = train.evaluate(point.unsqueeze(0))
    te = test.evaluate(point.unsqueeze(0))
    g = train.gradient(point).norm()
    cpu = point.cpu()
    return [
        float(tr.loss[0]),
        float(tr.acc[0]),
        float(te.loss[0]),
        float(te.acc[0]),
        float(g),
        float((cpu - start.cpu()).norm()),
        float((cpu - init.cpu()).norm()),
    ]


# -- the measure -------------------------------------------------------------------------------

RECIPE_NAMES = Setting(
    "recipes",
    ("sgd", "adam-full"),
    "restarts from every overfit point: the recipes to run",
    "strs",
    choices=tuple(RECIPES),
)


def restart_keys(exp: Experiment, cfg: AnalysisConfig) -> list[str]:
    """<recipe>.<overfit run> for every recipe and complete overfit run."""
    overfit = [r for r in all_runs(exp, cfg) if exp.run(r).mode == "overfit"]
    return [f"{name}.{r}" for name in cfg.recipes for r in overfit]


def restart_values(
    objs: dict[str, Objective],
    start: torch.Tensor,
    init: torch.Tensor,
    name: str,
    alphas: torch.Tensor,
    *,
    generator: torch.Generator,
) -> tuple[dict, dict]:
    """What a restart result stores: `restart` from start (P,) with recipe `name` on
    objs["train"], logged on objs["test"] too, then the line from start to the end point.
    Shared by `landscape analyze` and `Probe.restart`."""
    r = restart(objs["train"], objs["test"], start, init, recipe(name), generator=generator)
    values: dict = {
        "step": r.steps,
        "train_loss": r.train_loss,
        "train_acc": r.train_acc,
        "test_loss": r.test_loss,
        "test_acc": r.test_acc,
        "grad_norm": r.grad_norm,
        "dist_moved": r.dist_moved,
        "dist_init": r.dist_init,
        "end_params": r.end,
        "alpha": alphas,
    }
    attrs = {
        "recipe": name,
        "recipe_settings": str(recipe(name)),
        "diverged_step": r.diverged_step,
    }
    line(objs, start, r.end, alphas, "interp_", values, attrs)
    attrs["headline"] = f"test acc {r.test_acc[0]:.3f} -> {r.test_acc[-1]:.3f}"
    return values, attrs


def _compute(ctx: Context, key: str) -> tuple[dict, dict]:
    name, run_id = key.split(".", 1)
    run, cfg = ctx.exp.run(run_id), ctx.cfg
    objs = objectives(ctx, run.final_buffers)
    alphas = default_alphas(cfg.alpha_points, cfg.alpha_min, cfg.alpha_max)
    init = run.init if run.has_init else run.final  # an import may lack init: dropped below
    values, attrs = restart_values(objs, run.final, init, name, alphas, generator=ctx.generator)
    if not run.has_init:
        del values["dist_init"]
    return values, {"run": run_id} | attrs


_DIMS = ("step",)
SPEC = MeasureSpec(
    name="restart",
    description="train on the clean data from each overfit point (recipes sgd, sgd-paper, "
    "adam-full): accuracy, distance moved, end point",
    needs="overfit run x recipe",
    keys=restart_keys,
    compute=_compute,
    settings=(ALPHA_POINTS, ALPHA_MIN, ALPHA_MAX),
    key_settings=(RECIPE_NAMES,),
    group="recipe",
    arrays=(
        step_array("optimizer steps since the restart"),
        Stored("train_loss", "clean training loss", LOSS_UNITS, _DIMS),
        Stored("train_acc", "clean training accuracy", "fraction", _DIMS),
        Stored("test_loss", "test loss", LOSS_UNITS, _DIMS),
        Stored("test_acc", "test accuracy", "fraction", _DIMS),
        Stored("grad_norm", "||grad of the clean training loss||_2", "L2 norm", _DIMS),
        Stored("dist_moved", "distance from the overfit point", L2, _DIMS),
        Stored("dist_init", "distance from the run's initial point", L2, _DIMS),
        Stored("end_params", "parameters at the end of the restart (flat)", "1"),
        Stored("alpha", "overfit point (0) -> restart end (1)", "1", ("alpha",)),
        *line_arrays("interp_"),
    ),
    scalars=(
        Scalar(
            "restart_test_acc",
            "test accuracy after restart",
            "fraction",
            "test_acc",
            at="last",
            key_name="recipe>.<run",
        ),
        Scalar(
            "restart_distance_moved",
            "distance moved by the restart",
            "L2 norm",
            "dist_moved",
            at="last",
            key_name="recipe>.<run",
        ),
    ),
    figures=("restart",),
)
