"""A curve between two minima (Garipov et al. 2018): is an extreme-overfitting point joined to
the normal minimum by a path of low clean-training loss, where the straight line is not?

For seed k the curve runs from the normal final point a to the overfit final point b along the
quadratic Bezier phi(t) = (1 - t)^2 a + 2 t (1 - t) theta + t^2 b (`landscape.core.bezier`). Its
bend theta starts at the midpoint (a + b) / 2, so the curve starts as the straight line, and is
trained on the clean training set by the one training loop (`landscape.core.loop`, as
`landscape train` and the restarts use it), one t ~ U(0, 1) per minibatch step; the curves of
every seed train together as one stack. Then the loss and error (1 - accuracy) along the curve
and along the line, on train and test, at the same t = alpha grid over [0, 1], each with BatchNorm
statistics as the analysis's `bn` says (recalibrated at every point of the curve by default),
and for each path its loss barrier (Entezari et al. 2022) and error barrier (Frankle et al. 2020).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from landscape.config import OptimConfig
from landscape.core.bezier import CurveEngine, bezier
from landscape.core.loop import LoopData, StackLoop, make_optimizer, run_loop, short_schedule
from landscape.core.objective import Objective
from landscape.measures.common import (
    line,
    line_attrs,
    objective,
    objectives,
    seed_pairs,
    step_array,
)
from landscape.measures.slices import default_alphas
from landscape.measures.spec import (
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
    from landscape.measures.runs import Experiment, StoredRun
    from landscape.measures.settings import AnalysisConfig

GARIPOV_MOMENTUM = 0.9  # their SGD's momentum, used when the optimizer is sgd


@dataclass(frozen=True)
class CurveRecipe:
    optimizer: str = "adam"  # adam | sgd (momentum 0.9, as Garipov et al.)
    lr: float = 1e-3
    batch_size: int = 128  # 0: full batch
    epochs: int = 50


@dataclass(frozen=True)
class CurveFit:
    bend: torch.Tensor  # (P,) the trained bend theta
    steps: np.ndarray  # (m,) logged optimizer steps, 0 = before training
    mid_train_loss: np.ndarray  # (m,) full clean training loss at phi(1/2)
    mid_train_acc: np.ndarray  # (m,) its accuracy (NaN for regression)
    bend_moved: np.ndarray  # (m,) ||theta - (a + b) / 2||_2
    diverged_step: int  # first step with a non-finite minibatch loss; -1 if none


def train_curves(
    train: Objective,
    a: torch.Tensor,
    b: torch.Tensor,
    r: CurveRecipe,
    *,
    generators: list[torch.Generator],
    t_generators: list[torch.Generator],
    buffers: torch.Tensor | None = None,
    log_points: int = 10,
) -> list[CurveFit]:
    """Train K curves from a (K, P) to b (K, P) on `train`'s data, as one stack.

    Each bend starts at (a + b) / 2. Curve k draws its minibatch order from `generators[k]`
    and its t ~ U(0, 1), one per step, from `t_generators[k]`. The logged loss is the clean
    training loss at the curve's midpoint phi(1/2) (the loop's evaluation); `buffers` (K, P_b)
    are the BatchNorm statistics for bn='stored'. A curve whose minibatch loss turns
    non-finite keeps its last finite bend and reports the step.
    """
    device = train.x.device
    a, b = a.to(device).float(), b.to(device).float()
    sched = short_schedule(train.n, r.batch_size, epochs=r.epochs, log_points=log_points)
    engine = CurveEngine(train.model, a, b, (a + b) / 2, generators=t_generators, buffers=buffers)
    data = LoopData(train.x, train.y, train.x, train.y, None, {})  # logged on the train set only
    loop = StackLoop(engine, data, sched, train.loss_fn, train.classification, train.budget)
    cfg = OptimConfig(
        name=r.optimizer,
        lr=r.lr,
        batch_size=r.batch_size,
        momentum=GARIPOV_MOMENTUM if r.optimizer == "sgd" else 0.0,
    )
    run_loop(loop, sched, generators, make_optimizer(cfg, [engine.theta]))
    bad, ends = loop.first_bad.tolist(), loop.end_points()
    return [_fit(h, b, end) for h, b, end in zip(loop.histories(), bad, ends, strict=True)]


def _fit(hist: dict[str, np.ndarray], bad: int, bend: torch.Tensor) -> CurveFit:
    return CurveFit(
        bend=bend,
        steps=hist["step"].astype(np.int64),
        mid_train_loss=hist["train_loss"].astype(np.float64),
        mid_train_acc=hist["train_acc"].astype(np.float64),
        bend_moved=hist["dist_init"].astype(np.float64),
        diverged_step=bad,
    )


def curve_values(
    objs: dict[str, Objective],
    a: torch.Tensor,
    b: torch.Tensor,
    bend: torch.Tensor,
    ts: torch.Tensor,
) -> tuple[dict, dict]:
    """Loss and accuracy per split along the curve (a, bend, b) and along the line from a to b,
    at every t = alpha in ts (n,) over [0, 1] with 0 and 1 on it, and the barriers of each path
    as attributes `curve_barrier_<split>_loss`, `line_barrier_<split>_error`, ... (see
    `common.line_attrs`)."""
    values: dict = {"alpha": ts, "bend": bend}
    attrs: dict = {}
    for split, obj in objs.items():
        ev = obj.evaluate(bezier(a.to(obj.x.device), bend.to(obj.x.device), b.to(obj.x.device), ts))
        values[f"curve_{split}_loss"], values[f"curve_{split}_acc"] = ev.loss, ev.acc
        attrs |= {f"curve_{k}": v for k, v in line_attrs(ts, ev.loss, ev.acc, split).items()}
    straight: dict = {}
    line(objs, a, b, ts, "line_", values, straight)
    attrs |= {f"line_{k}": v for k, v in straight.items()}
    return values, attrs


# -- the measure -------------------------------------------------------------------------------

# Defaults for 2 CPU cores: Adam at the trainer's lr on the trainer's batch, 50 epochs (about
# 550 steps on the quick preset's 1,297 digits, a few seconds for the 64-512-10 MLP). Garipov et
# al. train 600 epochs of SGD with momentum (optimizer sgd here); Adam needs no lr schedule.
CURVE_OPTIMIZER = Setting(
    "curve_optimizer",
    "adam",
    "curve between minima: optimizer of the bend (sgd: momentum 0.9, as Garipov et al.)",
    "str",
    choices=("adam", "sgd"),
)
CURVE_LR = Setting(
    "curve_lr",
    1e-3,
    "curve between minima: learning rate of the bend",
    "float",
    "a number > 0",
    lambda v: v > 0,
    maximum=1e3,
)
CURVE_BATCH = Setting(
    "curve_batch_size",
    128,
    "curve between minima: examples per step, one t per step (0: full batch)",
    "int",
    "an integer >= 0",
    lambda v: v >= 0,
    maximum=10**8,
)
CURVE_EPOCHS = Setting(
    "curve_epochs",
    50,
    "curve between minima: passes over the clean training set",
    "int",
    "an integer >= 1",
    lambda v: v >= 1,
    maximum=10**6,
)


def curve_keys(exp: Experiment, cfg: AnalysisConfig) -> list[str]:
    """normal-overfit.<k> for every seed pair (the paths of `interpolation`)."""
    return [f"normal-overfit.{p.rsplit('-', 1)[1]}" for p in seed_pairs(exp, cfg)]


def _recipe(cfg: AnalysisConfig) -> CurveRecipe:
    return CurveRecipe(cfg.curve_optimizer, cfg.curve_lr, cfg.curve_batch_size, cfg.curve_epochs)


def _compute_batch(ctxs: list[Context], keys: list[str]) -> list[tuple[dict, dict]]:
    """The curves of every seed pair, trained together as one stack (each with its own
    result's generators: the numbers of computing each key alone)."""
    ctx, cfg = ctxs[0], ctxs[0].cfg
    pairs = [(ctx.exp.run(f"normal-{k}"), ctx.exp.run(f"overfit-{k}")) for k in _seeds(keys)]
    # t is drawn from a generator seeded from the result's own: the orders use the result's
    t_gens = [torch.Generator().manual_seed(_draw_seed(c.generator)) for c in ctxs]
    a = torch.stack([n.final for n, _ in pairs])
    b = torch.stack([o.final for _, o in pairs])
    has_bn = pairs[0][0].final_buffers.numel() > 0
    buffers = torch.stack([n.final_buffers for n, _ in pairs]) if has_bn else None
    train = objective(ctx, "train", pairs[0][0].final_buffers)
    fits = train_curves(
        train,
        a,
        b,
        _recipe(cfg),
        generators=[c.generator for c in ctxs],
        t_generators=t_gens,
        buffers=buffers,
    )
    ts = default_alphas(cfg.alpha_points, 0.0, 1.0)
    return [
        _result(ctx, normal, overfit, fit, ts)
        for (normal, overfit), fit in zip(pairs, fits, strict=True)
    ]


def _seeds(keys: list[str]) -> list[str]:
    return [key.split(".", 1)[1] for key in keys]


def _draw_seed(g: torch.Generator) -> int:
    return int(torch.randint(2**62, (1,), generator=g))


def fit_values(
    objs: dict[str, Objective],
    a: torch.Tensor,
    b: torch.Tensor,
    fit: CurveFit,
    ts: torch.Tensor,
    recipe: CurveRecipe,
) -> tuple[dict, dict]:
    """What a curve result stores: `curve_values` of the trained bend, its training history,
    the recipe and a headline. Shared by `landscape analyze` and `Probe.curve`."""
    values, attrs = curve_values(objs, a, b, fit.bend, ts)
    values |= {
        "step": fit.steps,
        "mid_train_loss": fit.mid_train_loss,
        "mid_train_acc": fit.mid_train_acc,
        "bend_moved": fit.bend_moved,
    }
    attrs |= {"recipe": str(recipe), "diverged_step": fit.diverged_step}
    attrs["headline"] = (
        f"train loss barrier: curve {attrs['curve_barrier_train_loss']:.3g}, line "
        f"{attrs['line_barrier_train_loss']:.3g}"
    )
    return values, attrs


def _result(
    ctx: Context, normal: StoredRun, overfit: StoredRun, fit: CurveFit, ts: torch.Tensor
) -> tuple[dict, dict]:
    objs = objectives(ctx, normal.final_buffers)
    values, attrs = fit_values(objs, normal.final, overfit.final, fit, ts, _recipe(ctx.cfg))
    return values, {"a": normal.run_id, "b": overfit.run_id} | attrs


def _compute(ctx: Context, key: str) -> tuple[dict, dict]:
    return _compute_batch([ctx], [key])[0]


def _path_arrays(path: str, on: str) -> tuple[Stored, ...]:
    return tuple(
        Stored(f"{path}_{split}_{q}", f"{split} {what} on {on}", unit, ("alpha",))
        for split in ("train", "test")
        for q, what, unit in (("loss", "loss", LOSS_UNITS), ("acc", "accuracy", "fraction"))
    )


def _barrier(quantity: str, label: str, units: str, attr: str) -> Scalar:
    return Scalar(quantity, label, units, attr=attr, keys="normal-", key_name="normal-overfit.<k")


ENTEZARI = "loss barrier (Entezari et al. 2022; loss above the chord)"
FRANKLE = "error barrier (Frankle et al. 2020; error above the endpoints' mean)"
CURVE = "normal ↔ overfit, trained Bezier curve (Garipov et al. 2018)"
_STEP = ("step",)
SPEC = MeasureSpec(
    name="curve",
    description="a quadratic Bezier curve from the normal to the overfit point of each seed, "
    "its bend trained on the clean training set (Garipov et al. 2018): loss and error along it "
    "and along the line, with both paths' loss and error barriers",
    needs="path (normal <-> overfit final points of a seed)",
    keys=curve_keys,
    compute=_compute,
    compute_batch=_compute_batch,
    batch_of=lambda key: "curves",  # every seed's curve trains in one stack
    settings=(ALPHA_POINTS, CURVE_OPTIMIZER, CURVE_LR, CURVE_BATCH, CURVE_EPOCHS),
    group="path",
    arrays=(
        Stored(
            "alpha", "t of phi(t) on the curve, alpha of (1 - alpha) a + alpha b", "1", ("alpha",)
        ),
        Stored(
            "bend", "the trained bend theta (flat): phi(t) = (1-t)^2 a + 2t(1-t) theta + t^2 b", "1"
        ),
        *_path_arrays("curve", "the curve phi(t)"),
        *_path_arrays("line", "the line (1 - alpha) a + alpha b"),
        step_array("optimizer steps of the bend"),
        Stored(
            "mid_train_loss",
            "clean training loss at the curve's midpoint phi(1/2)",
            LOSS_UNITS,
            _STEP,
        ),
        Stored("mid_train_acc", "clean training accuracy at phi(1/2)", "fraction", _STEP),
        Stored("bend_moved", "||theta - (a + b) / 2||_2", L2, _STEP),
    ),
    scalars=(
        _barrier(
            "curve_train_loss_barrier",
            f"{CURVE}: train {ENTEZARI}",
            "loss units",
            "curve_barrier_train_loss",
        ),
        _barrier(
            "curve_train_error_barrier",
            f"{CURVE}: train {FRANKLE}",
            "fraction",
            "curve_barrier_train_error",
        ),
        _barrier(
            "curve_test_error_barrier",
            f"{CURVE}: test {FRANKLE}",
            "fraction",
            "curve_barrier_test_error",
        ),
        _barrier(
            "curve_line_train_loss_barrier",
            f"normal ↔ overfit, straight line on the curve's grid: train {ENTEZARI}",
            "loss units",
            "line_barrier_train_loss",
        ),
        _barrier(
            "curve_line_train_error_barrier",
            f"normal ↔ overfit, straight line on the curve's grid: train {FRANKLE}",
            "fraction",
            "line_barrier_train_error",
        ),
    ),
    figures=("curve_normal_overfit",),
)
