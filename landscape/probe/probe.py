"""`Probe`: the measures of `landscape analyze` on your own model and data, from Python.

>>> import torch
>>> from torch import nn
>>> g = torch.Generator().manual_seed(0)
>>> x, y = torch.randn(64, 3, generator=g), torch.randint(0, 2, (64,), generator=g)
>>> probe = Probe(nn.Linear(3, 2), data=(x, y), loss="cross_entropy")
>>> r = probe.hessian(k=2)
>>> r.names, r.eigenvalues.shape
(['eigenvalues', 'residuals'], (2,))

Every method calls the kernels `landscape analyze` calls (`landscape.measures`), on the same
`Objective`, and returns a `ProbeResult`. The caller's module is never modified: its
parameters are read once into a flat vector theta (P,), and the network is evaluated at theta
(and at points around it) through `torch.func.functional_call` on a private eval-mode copy.
So Dropout is off (eval mode) in every measure, and BatchNorm normalizes with the statistics
`bn` names, as the CLI's `--bn`.
"""

from __future__ import annotations

import json
import time
from typing import Any

import torch
from torch import nn

from landscape._version import __version__
from landscape.core.flat import FlatModel
from landscape.core.layout import Layout
from landscape.core.losses import loss_units
from landscape.core.objective import Objective
from landscape.errors import ConfigError
from landscape.measures.common import line
from landscape.measures.curve import (
    CURVE_BATCH,
    CURVE_EPOCHS,
    CURVE_LR,
    CURVE_OPTIMIZER,
    CurveRecipe,
    fit_values,
    train_curves,
)
from landscape.measures.directions import random_plane
from landscape.measures.epsilon_sharpness import box_sharpness
from landscape.measures.gradient import gradient_norms
from landscape.measures.hessian import top_k
from landscape.measures.registry import spec
from landscape.measures.restart import RECIPES, restart_values
from landscape.measures.runner import default_budget
from landscape.measures.slices import default_alphas, grid_coordinates, surface_2d
from landscape.measures.spec import ALPHA_POINTS, Setting
from landscape.measures.trace import hutchinson
from landscape.probe.checks import (
    check_runs,
    checked_bn,
    checked_module,
    finite_parameters,
    generator_of,
    loss_of,
    other_point,
)
from landscape.probe.data import BatchData, as_source
from landscape.probe.results import ProbeResult


class Probe:
    """Loss-landscape measures at the point of `model` on `data` (and `test`).

    model: any `nn.Module` that `torch.func.functional_call` can run; never modified.
    data, test: (x, y) tensors, or a re-iterable of (x, y) batches (a `DataLoader` with
        shuffle=False) for data that does not fit in memory: every measure then averages over
        the batches as over one full batch (each weighted by its size). `test` is optional;
        measures report train and test where both exist.
    loss: "cross_entropy" (integer labels, nats), "mse" (squared error), or a callable
        loss(outputs (B, ...), targets (B, ...)) -> the batch's mean loss (a scalar tensor).
    bn: BatchNorm statistics at every evaluated point, as `landscape analyze --bn`:
        "recalibrate" (re-estimated at the point on `bn_samples` training inputs: the default,
        since points off the model's own have no statistics of their own), "stored" (the
        model's running statistics) or "batch" (each batch of `bn_batch` examples' own).
    device: where to measure; None: where the model's parameters are. Another device moves a
        private copy (the caller's module stays where it is).
    memory_budget: bytes of activations held at once (data and points are chunked to fit);
        None: `landscape analyze`'s default (half the free GPU memory; on a CPU a tenth of the
        RAM, at most 2 GiB).
    """

    def __init__(
        self,
        model: nn.Module,
        data: Any,
        *,
        loss: Any = "cross_entropy",
        test: Any = None,
        bn: str = "recalibrate",
        bn_samples: int = 2048,
        bn_batch: int = 256,
        device: torch.device | str | None = None,
        memory_budget: int | None = None,
    ):
        module = checked_module(model, device)
        self.device = next(module.parameters()).device
        self.theta = Layout.of_parameters(module).flatten(dict(module.named_parameters()))
        finite_parameters(self.theta, module)
        self.loss_name, stacked = loss_of(loss)
        self.data = as_source(data, loss=loss).to(self.device)
        self.test = (
            None if test is None else as_source(test, loss=loss, where="test").to(self.device)
        )
        self.bn = checked_bn(bn, module)
        calibration = self.data.calibration(bn_samples) if self.bn == "recalibrate" else None
        self.model = FlatModel(module, bn=self.bn, calibration=calibration, bn_batch=bn_batch)
        self.classification = check_runs(self.model, self.theta, self.data.first(), loss, stacked)
        self._objective_args = {
            "loss": stacked,
            "classification": self.classification,
            "budget_bytes": memory_budget or default_budget(self.device),
        }
        # recorded with every result, as analyze records them ("none": no BatchNorm to choose)
        bn_record: dict[str, Any] = {"bn": self.bn if self.model.has_bn else "none"}
        if self.bn == "recalibrate":
            bn_record["bn_samples"] = bn_samples
        self.settings = bn_record | {"loss": self.loss_name}

    @property
    def size(self) -> int:
        """P, the number of parameters."""
        return self.model.size

    def objectives(self) -> dict[str, Objective]:
        """The mean loss on `data` ("train") and `test`, as functions of flat vectors (P,)."""
        objs = {"train": self.data.objective(self.model, **self._objective_args)}
        if self.test is not None:
            objs["test"] = self.test.objective(self.model, **self._objective_args)
        return objs

    # -- measures ----------------------------------------------------------------------------

    def hessian(
        self, k: int = 5, *, seed: int | None = None, generator: torch.Generator | None = None
    ) -> ProbeResult:
        """Top-k Hessian eigenvalues of the training loss (Lanczos), descending, with the
        residuals ||H v - lambda v|| / |lambda|; units loss / parameter^2. NaN (and the reason
        in attrs["failed"]) if Lanczos does not converge."""
        gen, seed_used = generator_of(seed, generator)
        started = time.perf_counter()
        hvp = self.objectives()["train"].hvp_operator(self.theta)
        values, attrs = top_k(hvp, self.size, k, generator=gen)
        return self._result("hessian", values, attrs, {"top_k": k}, seed_used, started)

    def trace(
        self,
        n_samples: int = 100,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> ProbeResult:
        """Hutchinson's estimate of tr(H) of the training loss over `n_samples` Rademacher
        vectors, with its standard error and the samples."""
        gen, seed_used = generator_of(seed, generator)
        started = time.perf_counter()
        hvp = self.objectives()["train"].hvp_operator(self.theta)
        values, attrs = hutchinson(hvp, self.size, n_samples, generator=gen)
        params = {"trace_samples": n_samples}
        return self._result("trace", values, attrs, params, seed_used, started)

    def gradient_norm(self) -> ProbeResult:
        """||dL/dtheta||_2 of the full-batch training (and test) loss at the model's point."""
        started = time.perf_counter()
        values: dict[str, Any] = {"step": [0]}
        for split, obj in self.objectives().items():
            values[f"{split}_grad_norm"] = gradient_norms(obj, self.theta.unsqueeze(0))
        attrs = {"headline": f"train grad norm {float(values['train_grad_norm'][-1]):.2e}"}
        return self._result("gradient", values, attrs, {}, None, started)

    def surface2d(
        self,
        grid: int = 51,
        span: float = 1.0,
        *,
        ignore: str = "biasbn",
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> ProbeResult:
        """Loss and accuracy on Li et al.'s plane theta + x d1 + y d2, with two random
        filter-normalized directions, x and y in [-span, span] on a grid x grid lattice
        (`grid` odd: theta is the centre). Arrays (grid, grid), [i, j] at (x[i], y[j])."""
        gen, seed_used = generator_of(seed, generator)
        started = time.perf_counter()
        d1, d2 = random_plane(self.theta, self.model.layout, generator=gen, ignore=ignore)
        coords = grid_coordinates(grid, span)
        values: dict[str, Any] = {"xcoordinates": coords, "ycoordinates": coords}
        values |= {"direction_x": d1, "direction_y": d2}
        for split, obj in self.objectives().items():
            s = surface_2d(obj, self.theta, d1, d2, coords, coords)
            values[f"{split}_loss"], values[f"{split}_acc"] = s.loss, s.acc
        centre = float(values["train_loss"][grid // 2, grid // 2])
        params = {"grid": grid, "span": span, "ignore": ignore}
        attrs = {"headline": f"centre train loss {centre:.4g}"}
        return self._result("surface2d", values, attrs, params, seed_used, started)

    def interpolate(
        self,
        other: nn.Module | torch.Tensor,
        *,
        alpha_points: int = 41,
        alpha_min: float = -0.5,
        alpha_max: float = 1.5,
    ) -> ProbeResult:
        """Loss and accuracy on (1 - alpha) theta + alpha theta_other, alpha from alpha_min to
        alpha_max (0 and 1 on the grid), and over [0, 1] each split's loss barrier (Entezari et
        al. 2022; `barrier_<split>_loss`), error barrier (Frankle et al. 2020;
        `barrier_<split>_error`, classification only) and largest loss rise (Lucas et al. 2021;
        `rise_<split>_loss`, 0 = monotone): the barriers between two minima, the rise from an
        initial point. `other`: a module of the same architecture, or a flat vector (P,)."""
        started = time.perf_counter()
        b = other_point(other, self.model.layout, self.theta)
        alphas = default_alphas(alpha_points, alpha_min, alpha_max)
        values: dict[str, Any] = {"alpha": alphas}
        attrs: dict[str, Any] = {"a": "model", "b": "other"}
        line(self.objectives(), self.theta, b, alphas, "", values, attrs)
        attrs["headline"] = (
            f"train loss barrier {attrs['barrier_train_loss']:.3g} (Entezari et al.), largest "
            f"train loss rise {attrs['rise_train_loss']:.3g}"
        )
        params = {"alpha_points": alpha_points, "alpha_min": alpha_min, "alpha_max": alpha_max}
        return self._result("interpolation", values, attrs, params, None, started, "line.model")

    def epsilon_sharpness(
        self,
        epsilon: float = 1e-3,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> ProbeResult:
        """Keskar et al.'s epsilon-sharpness of the training loss, percent: the largest rise
        100 (max L - L) / (1 + L) found by L-BFGS-B in |delta_i| <= epsilon (|theta_i| + 1)."""
        gen, seed_used = generator_of(seed, generator)
        started = time.perf_counter()
        obj = self.objectives()["train"]
        values, attrs = box_sharpness(obj, self.theta, epsilon, generator=gen)
        params = {"epsilon": epsilon}
        return self._result("epsilon_sharpness", values, attrs, params, seed_used, started)

    def restart(
        self,
        recipe: str = "adam-full",
        *,
        init: nn.Module | torch.Tensor | None = None,
        alpha_points: int = 41,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> ProbeResult:
        """Train a copy of theta on `data` with a recipe of `landscape analyze` ("sgd": SGD
        lr 0.1, batch 64, 20 epochs; "sgd-paper", the authors': SGD lr 0.5, batch 64, 20,000
        steps; "adam-full": full-batch Adam 1e-3, 300 steps), logging
        loss, accuracy, gradient norm and distance moved; then the line from theta to the end.
        `init`: a point to measure the distance from (e.g. the model at initialization).
        Needs `data` as tensors (minibatches are drawn across the whole set)."""
        if recipe not in RECIPES:
            raise ConfigError(
                f"Probe.restart: unknown recipe {recipe!r}; expected one of {', '.join(RECIPES)}"
            )
        objs = self._restart_objectives()
        gen, seed_used = generator_of(seed, generator)
        started = time.perf_counter()
        start = self.theta
        init_point = start if init is None else other_point(init, self.model.layout, start)
        alphas = default_alphas(alpha_points, -0.5, 1.5)
        values, attrs = restart_values(objs, start, init_point, recipe, alphas, generator=gen)
        drop = {"test_loss", "test_acc", "interp_test_loss", "interp_test_acc"}
        drop = (drop if self.test is None else set()) | ({"dist_init"} if init is None else set())
        values = {k: v for k, v in values.items() if k not in drop}
        if self.test is None:  # logged on the training data only: no test numbers
            attrs = {k: v for k, v in attrs.items() if "test" not in k}
            acc = values["train_acc"]
            attrs["headline"] = f"train acc {acc[0]:.3f} -> {acc[-1]:.3f}"
        params = {"recipes": [recipe], "alpha_points": alpha_points}
        key = f"{recipe}.model"
        return self._result("restart", values, attrs, params, seed_used, started, key)

    def curve(
        self,
        other: nn.Module | torch.Tensor,
        *,
        epochs: int = 50,
        lr: float = 1e-3,
        batch_size: int = 128,
        optimizer: str = "adam",
        alpha_points: int = 41,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> ProbeResult:
        """Garipov et al.'s quadratic Bezier curve from theta to `other` (a module of the same
        architecture, or a flat vector (P,)): its bend trained on `data` (one t ~ U(0, 1) per
        minibatch step, `optimizer` adam or sgd with momentum 0.9), then loss and accuracy
        along the curve and along the straight line at `alpha_points` values of t in [0, 1], with
        each path's loss barrier (Entezari et al.) and error barrier (Frankle et al.). Needs
        `data` as tensors (minibatches are drawn across the whole set)."""
        settings = {
            CURVE_EPOCHS: epochs, CURVE_LR: lr, CURVE_BATCH: batch_size,
            CURVE_OPTIMIZER: optimizer, ALPHA_POINTS: alpha_points,
        }  # fmt: skip
        params = {s.name: _checked("Probe.curve", s, v) for s, v in settings.items()}
        objs = self._restart_objectives()
        gen, seed_used = generator_of(seed, generator)
        started = time.perf_counter()
        b = other_point(other, self.model.layout, self.theta)
        t_gen = torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=gen)))
        recipe = CurveRecipe(optimizer, float(lr), int(batch_size), int(epochs))
        (fit,) = train_curves(objs["train"], self.theta.unsqueeze(0), b.unsqueeze(0), recipe,
                              generators=[gen], t_generators=[t_gen])  # fmt: skip
        if self.test is None:
            del objs["test"]
        ts = default_alphas(alpha_points, 0.0, 1.0)
        values, attrs = fit_values(objs, self.theta, b, fit, ts, recipe)
        attrs = {"a": "model", "b": "other"} | attrs
        return self._result("curve", values, attrs, params, seed_used, started, "curve.model")

    # -- helpers -----------------------------------------------------------------------------

    def _restart_objectives(self) -> dict[str, Objective]:
        if isinstance(self.data, BatchData):
            raise ConfigError(
                "Probe.restart: expected data as tensors (x, y) (a restart draws random "
                "minibatches across the whole training set), found a stream of batches; pass "
                "data=(x_train, y_train)"
            )
        objs = self.objectives()
        objs.setdefault("test", objs["train"])  # no test data: logged on train, then dropped
        return objs

    def _result(
        self,
        measure: str,
        values: dict[str, Any],
        attrs: dict[str, Any],
        params: dict[str, Any],
        seed: int | None,
        started: float,
        key: str = "model",
    ) -> ProbeResult:
        """The result as `landscape analyze` stores it, with the attributes it records."""
        m = spec(measure)
        parameters = params | (self.settings if m.evaluates else {})
        attrs = {"run": key} | attrs
        result = m.stored(values, attrs, loss_units=self._units())
        finite = all(
            bool(torch.isfinite(torch.as_tensor(a.values)).all())
            for a in result.arrays.values()
            if a.values.dtype.kind == "f"
        )
        result.attrs |= {
            "parameters": json.dumps(parameters),
            "seed": -1 if seed is None else seed,  # -1: none drawn, or the caller's generator
            "seconds": time.perf_counter() - started,
            "landscape_version": __version__,
            "torch_version": torch.__version__,
            "device": str(self.device),
            "diverged_runs": "[]",
            "diverged": False,
            "finite": finite,
        }
        return ProbeResult(measure, result, key)

    def _units(self) -> str:
        return loss_units(self.loss_name) if self.loss_name in ("cross_entropy", "mse") else "loss"


def _checked(where: str, setting: Setting, value: Any) -> Any:
    """`value` checked as `setting` is in `landscape analyze`, the message naming `where`."""
    try:
        return setting.validate(value)
    except ConfigError:
        raise ConfigError(
            f"{where}: {setting.name.removeprefix('curve_')}={value!r}: expected "
            f"{setting.expectation}"
        ) from None
