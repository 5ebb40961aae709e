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

from landscape.config import OptimConfig
from landscape.core.flat_engine import FlatEngine
from landscape.core.loop import (
    LoopData,
    Schedule,
    StackLoop,
    make_optimizer,
    run_loop,
    short_schedule,
)
from landscape.core.objective import Objective
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


def _schedule(r: Recipe, n: int, log_points: int) -> Schedule:
    """The recipe's steps over n examples, logged at log-spaced steps (the loop's Schedule)."""
    return short_schedule(n, r.batch_size, steps=r.steps, epochs=r.epochs, log_points=log_points)


def _optimizer(r: Recipe, theta: torch.Tensor) -> torch.optim.Optimizer:
    """The trainer's optimizer for the recipe (elementwise: a stack steps like K alone)."""
    cfg = OptimConfig(name=r.optimizer, lr=r.lr, batch_size=r.batch_size, momentum=r.momentum)
    return make_optimizer(cfg, [theta])


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
    the distance from init. One restart is a stack of one: see `restart_stack`.
    """
    stack = restart_stack(
        train, test, start.unsqueeze(0), init.unsqueeze(0), r, generators=[generator],
        log_points=log_points,
    )  # fmt: skip
    return stack[0]


def restart_stack(
    train: Objective,
    test: Objective,
    starts: torch.Tensor,
    inits: torch.Tensor,
    r: Recipe,
    *,
    generators: list[torch.Generator],
    buffers: torch.Tensor | None = None,
    log_points: int = 30,
) -> list[RestartResult]:
    """K restarts at once: from each row of `starts` (K, P), trained together as one stack by
    the training loop of `landscape train` (`landscape.core.loop`), with the numbers of K
    restarts one at a time.

    Restart k draws its minibatch order from `generators[k]` and measures its distance from
    `inits[k]`; `buffers` (K, P_b) are each point's BatchNorm statistics for evaluations under
    bn='stored' (None: the objective's own). A restart whose minibatch loss turns non-finite
    stops there (the others go on): its history ends at that step and its end point is the
    last finite one.
    """
    sched = _schedule(r, train.n, log_points)
    engine = FlatEngine(train.model, starts.to(train.x.device), buffers)
    data = LoopData(train.x, train.y, train.x, train.y, test.x, {"test": test.y})
    loop = StackLoop(
        engine, data, sched, train.loss_fn, train.classification, train.budget,
        origin=inits.to(train.x.device).float(),
    )  # fmt: skip
    opt = _optimizer(r, engine.theta)
    run_loop(loop, sched, generators, opt)
    bad, ends = loop.first_bad.tolist(), loop.end_points()
    return [_result(h, b, end) for h, b, end in zip(loop.histories(), bad, ends, strict=True)]


def _result(hist: dict[str, np.ndarray], bad: int, end: torch.Tensor) -> RestartResult:
    """One restart of a stack from its history (cut at its first bad step) and end point."""

    def column(name: str) -> np.ndarray:
        return hist[name].astype(np.float64)

    return RestartResult(
        steps=hist["step"].astype(np.int64),
        train_loss=column("train_loss"),
        train_acc=column("train_acc"),
        test_loss=column("test_loss"),
        test_acc=column("test_acc"),
        grad_norm=column("grad_norm"),
        dist_moved=column("dist_init"),  # the loop's distance from where it started
        dist_init=column("dist_origin"),
        end=end,
        diverged_step=bad,
    )


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
    return _values(objs, start, r, name, alphas)


def _values(
    objs: dict[str, Objective],
    start: torch.Tensor,
    r: RestartResult,
    name: str,
    alphas: torch.Tensor,
) -> tuple[dict, dict]:
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


def _compute_batch(ctxs: list[Context], keys: list[str]) -> list[tuple[dict, dict]]:
    """The restarts of one recipe from several overfit runs, trained together as one stack
    (each with its own result's generator: the numbers of computing each key alone)."""
    name = keys[0].split(".", 1)[0]
    runs = [ctxs[0].exp.run(key.split(".", 1)[1]) for key in keys]
    ctx, cfg = ctxs[0], ctxs[0].cfg
    alphas = default_alphas(cfg.alpha_points, cfg.alpha_min, cfg.alpha_max)
    objs = objectives(ctx, runs[0].final_buffers)
    starts = torch.stack([run.final for run in runs])
    # an import may lack init: measured from the start, then dropped below
    inits = torch.stack([run.init if run.has_init else run.final for run in runs])
    has_bn = runs[0].final_buffers.numel() > 0
    buffers = torch.stack([run.final_buffers for run in runs]) if has_bn else None
    gens = [c.generator for c in ctxs]
    stack = restart_stack(
        objs["train"], objs["test"], starts, inits, recipe(name), generators=gens, buffers=buffers
    )
    out = []
    for run, r in zip(runs, stack, strict=True):
        values, attrs = _values(objectives(ctx, run.final_buffers), run.final, r, name, alphas)
        if not run.has_init:
            del values["dist_init"]
        out.append((values, {"run": run.run_id} | attrs))
    return out


def _compute(ctx: Context, key: str) -> tuple[dict, dict]:
    return _compute_batch([ctx], [key])[0]


_DIMS = ("step",)
SPEC = MeasureSpec(
    name="restart",
    description="train on the clean data from each overfit point (recipes sgd, sgd-paper, "
    "adam-full): accuracy, distance moved, end point",
    needs="overfit run x recipe",
    keys=restart_keys,
    compute=_compute,
    compute_batch=_compute_batch,
    batch_of=lambda key: key.split(".", 1)[0],  # the recipe: its overfit runs train as one stack
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
