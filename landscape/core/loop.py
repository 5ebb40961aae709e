"""The one training loop: K parameter sets stepped together as a stack, logged and checkpointed.

`landscape train` runs it on K seeds of a configuration (a `StackedEngine` over K modules) and
the restart measure on K stored points (a `FlatEngine` over K flat vectors): the same minibatch
orders (one `torch.randperm` per run per epoch from the run's own generator), the same
optimizer (`make_optimizer`, elementwise, so a stack behaves like K separate optimizers), the
same divergence rule (a run's first step with a non-finite minibatch loss; the others go on)
and the same history (full-dataset loss, accuracy and gradient norm at the log steps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from landscape.config import OptimConfig
from landscape.core.batched import Engine, LossFn, loss_function
from landscape.core.flat import FlatModel
from landscape.core.flat_engine import FlatEngine
from landscape.core.objective import Objective
from landscape.core.orders import EpochOrders


@dataclass(frozen=True)
class Schedule:
    steps_per_epoch: int
    total_steps: int
    batch_size: int
    checkpoint_steps: np.ndarray  # (n,) in [1, total_steps], always ends at total_steps
    log_steps: np.ndarray  # (m,) in [0, total_steps], starts at 0, ends at total_steps


def short_schedule(
    n: int, batch_size: int, *, steps: int = 0, epochs: int = 0, log_points: int
) -> Schedule:
    """A run of `steps` optimizer steps (0: `epochs` passes) over n examples in minibatches of
    `batch_size` (0: full batch), logged at step 0, at `log_points` log-spaced steps and at the
    last, with one checkpoint, at the end: a restart's or a curve's schedule."""
    batch = min(batch_size or n, n)
    per_epoch = -(-n // batch)
    total = max(1, steps or epochs * per_epoch)
    logs = np.unique(np.round(np.concatenate([[0, total], np.geomspace(1, total, log_points)])))
    return Schedule(per_epoch, total, batch, np.array([total]), logs.astype(np.int64))


def make_optimizer(cfg: OptimConfig, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    """The configured optimizer; fused kernels where the build has them (elementwise, so a
    stack of K runs behaves exactly like K separate optimizers)."""

    def build(**extra: bool) -> torch.optim.Optimizer:
        if cfg.name == "sgd":
            return torch.optim.SGD(
                params,
                lr=cfg.lr,
                momentum=cfg.momentum,
                nesterov=cfg.nesterov,
                weight_decay=cfg.weight_decay,
                **extra,
            )
        cls = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
        return cls(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, **extra)

    try:
        return build(fused=True)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device/dtype
        return build()


@dataclass(frozen=True)
class LoopData:
    """What the loop steps on (x, y) and what it logs on, on the device."""

    x: torch.Tensor  # the set the minibatches are drawn from
    y: torch.Tensor
    x_train: torch.Tensor  # logged as train_* with the gradient norm (the clean training set)
    y_train: torch.Tensor
    x_test: torch.Tensor | None  # None: no test_* and corrupt_* columns (they read NaN)
    targets_test: dict[str, torch.Tensor]  # "test" and, e.g. for overfit runs, "corrupt"


class StackLoop:
    """One stack's training loop: steps, histories at log steps, checkpoints.

    `origin` (K, P), when given, adds the history column `dist_origin`: each run's distance
    from its own reference point (a restart's run initial point); `dist_init` is always the
    distance from where this loop started.
    """

    def __init__(
        self,
        engine: Engine,
        data: LoopData,
        sched: Schedule,
        loss: str | LossFn,
        classification: bool,
        budget: int,
        origin: torch.Tensor | None = None,
    ):
        self.engine, self.data, self.sched = engine, data, sched
        self.loss_fn = loss_function(loss) if isinstance(loss, str) else loss
        self.train, self.test = _objectives(engine, data, self.loss_fn, classification, budget)
        self.theta0 = engine.flat_params()
        self.origin = None if origin is None else origin.to(self.theta0.device)
        self.init_buffers = engine.flat_buffers().cpu().numpy()
        self.history: dict[str, list[torch.Tensor]] = {}
        self.checkpoints: list[tuple[int, np.ndarray, np.ndarray]] = []
        device = data.x.device
        self.first_bad = torch.full((engine.k,), -1, dtype=torch.int64, device=device)
        self.last_finite: dict[int, torch.Tensor] = {}  # run -> its point before its first bad step
        self.obj_sum = torch.zeros(engine.k, device=device)
        self.obj_count = 0

    def record(self, step: int) -> None:
        """Evaluate every run at `step` (through `Objective`) and append to the histories."""
        e = self.engine
        e.refresh()
        points, buffers = e.eval_points().detach(), e.eval_buffers()
        tr = self.train.evaluate(points, buffers, gradient=True)
        assert tr.grad is not None  # asked for
        nan = torch.full_like(tr.loss, float("nan"))
        te = self.test.evaluate(points, buffers) if self.test else None
        corrupt = te.others.get("corrupt", (nan, nan)) if te else (nan, nan)
        objective = self.obj_sum / self.obj_count if self.obj_count else nan
        point = e.flat_params()
        row = {
            "step": torch.full_like(tr.loss, step),
            "epoch": torch.full_like(tr.loss, step / self.sched.steps_per_epoch),
            "train_loss": tr.loss,
            "train_acc": tr.acc,
            "test_loss": te.loss if te else nan,
            "test_acc": te.acc if te else nan,
            "corrupt_loss": corrupt[0],
            "corrupt_acc": corrupt[1],
            "grad_norm": tr.grad.norm(dim=1),
            "dist_init": (point - self.theta0).norm(dim=1),
            "objective_loss": objective,
        }
        if self.origin is not None:
            row["dist_origin"] = (point - self.origin).norm(dim=1)
        for key, value in row.items():
            self.history.setdefault(key, []).append(value.detach().float())
        self.obj_sum.zero_()
        self.obj_count = 0

    def step(self, step: int, idx: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        """One optimizer step of every run on its own minibatch `idx` (K, B)."""
        out = self.engine.forward(self.data.x[idx])
        loss = self.loss_fn(out, self.data.y[idx])
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()  # runs are independent: d(sum)/d(theta_k) = d(loss_k)/d(theta_k)
        detached = loss.detach()
        bad = ~torch.isfinite(detached)
        fresh = bad & (self.first_bad < 0)
        if bool(fresh.any()):  # rare: keep each newly diverged run's last finite point
            point = self.engine.flat_params()
            for k in fresh.nonzero().flatten().tolist():
                self.last_finite[k] = point[k].cpu()
        self.first_bad = torch.where(fresh, step, self.first_bad)
        opt.step()
        self.obj_sum += detached
        self.obj_count += 1

    def all_diverged(self) -> bool:
        return bool((self.first_bad >= 0).all())

    def checkpoint(self, step: int) -> None:
        params = self.engine.flat_params().cpu().numpy()
        buffers = self.engine.flat_buffers().cpu().numpy()
        self.checkpoints.append((step, params, buffers))

    def stacked_history(self) -> dict[str, np.ndarray]:
        """{column: (m, K)} of everything recorded."""
        return {k: torch.stack(v).cpu().numpy() for k, v in self.history.items()}

    def histories(self) -> list[dict[str, np.ndarray]]:
        """Each run's history {column: (m_k,)}, cut after its first bad step (if any)."""
        hist, bad = self.stacked_history(), self.first_bad.cpu().numpy()
        rows = np.ones(len(hist["step"]), dtype=bool)
        return [
            {key: v[hist["step"][:, j] <= b if b >= 0 else rows, j] for key, v in hist.items()}
            for j, b in enumerate(bad.tolist())
        ]

    def end_points(self) -> torch.Tensor:
        """(K, P) on the CPU: where each run is now, a diverged one at its last finite point."""
        ends = self.engine.flat_params().cpu()
        for j, point in self.last_finite.items():
            ends[j] = point
        return ends


def _objectives(
    engine: Engine, data: LoopData, loss: LossFn, classification: bool, budget: int
) -> tuple[Objective, Objective | None]:
    """The evaluators of the loop's logging: the clean training set, and the test set with its
    other target sets. A `FlatEngine`'s model keeps its BatchNorm mode; a module stack is
    evaluated with each run's running statistics (`eval_buffers`)."""
    model = engine.model if isinstance(engine, FlatEngine) else FlatModel(engine.template_module())
    kw = {"loss": loss, "classification": classification, "budget_bytes": budget}
    train = Objective(model, data.x_train, data.y_train, **kw)  # type: ignore[arg-type]
    if data.x_test is None:
        return train, None
    others = {k: v for k, v in data.targets_test.items() if k != "test"}
    test = Objective(
        model,
        data.x_test,
        data.targets_test["test"],
        other_targets=others,
        **kw,  # type: ignore[arg-type]
    )
    return train, test


def run_loop(
    loop: StackLoop,
    sched: Schedule,
    gens: list[torch.Generator],
    opt: torch.optim.Optimizer,
    on_steps: Callable[[int], None] = lambda s: None,
) -> int:
    """Train to `sched.total_steps` (or until every run diverged); return the last step."""
    n = loop.data.x.shape[0]
    device = loop.data.x.device
    log_set, ck_set = set(sched.log_steps.tolist()), set(sched.checkpoint_steps.tolist())
    report_every = max(1, sched.total_steps // 200)
    step = 0
    loop.record(0)
    epochs = -(-sched.total_steps // sched.steps_per_epoch)
    # on CUDA the next epoch's orders are drawn while this one trains (landscape.core.orders)
    with EpochOrders(gens, n, device, epochs) as orders:
        while step < sched.total_steps:
            perms = orders.next()
            for b in range(sched.steps_per_epoch):
                if step >= sched.total_steps:
                    break
                loop.step(step, perms[:, b * sched.batch_size : (b + 1) * sched.batch_size], opt)
                step += 1
                if step in ck_set:
                    loop.checkpoint(step)
                if step in log_set:
                    loop.record(step)
                    if loop.all_diverged():
                        return step
                if step % report_every == 0:
                    on_steps(step)
    return step
