"""A probe's arguments checked: the module, its loss (a name or the caller's callable), seeds.

`Objective` takes a stacked loss: outputs (K, B, ...) and targets (K, B, ...) of K points at
once -> (K,) mean losses. `loss_of` turns a name (`batched.cross_entropy`, `batched.mse`) or a
callable loss(outputs (B, ...), targets (B, ...)) -> scalar mean loss into one; `check_runs`
evaluates the model and the loss on a few examples before any measure starts, so a wrong
shape or dtype fails at `Probe(...)` with a message instead of deep inside Lanczos.

>>> name, stacked = loss_of(lambda out, y: ((out - y) ** 2).mean())
>>> name, stacked(torch.ones(2, 3, 1), torch.zeros(2, 3, 1)).tolist()
('<lambda>', [1.0, 1.0])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from copy import deepcopy
from typing import Any

import torch
from torch import nn

from landscape.core.batched import LossFn, loss_function
from landscape.core.flat import BN_MODES, FlatModel
from landscape.core.layout import Layout
from landscape.errors import ConfigError

NAMES = ("cross_entropy", "mse")


def loss_of(loss: Any) -> tuple[str, LossFn]:
    """(name, stacked loss) for a loss name or a callable loss(outputs, targets) -> scalar."""
    if isinstance(loss, str) and loss in NAMES:
        return loss, loss_function(loss)
    if isinstance(loss, str) or not callable(loss):
        raise ConfigError(
            f"Probe: loss={loss!r}: expected one of {', '.join(NAMES)} or a callable "
            "loss(outputs, targets) -> mean loss (a scalar tensor); e.g. loss='cross_entropy'"
        )
    return str(getattr(loss, "__name__", type(loss).__name__)), _stacked(loss)


def _stacked(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> LossFn:
    """fn applied to each of K points' outputs (K, B, ...) in turn: (K,) losses."""

    def stacked(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return torch.stack([_scalar(fn(o, t)) for o, t in zip(outputs, targets, strict=True)])

    stacked.__name__ = getattr(fn, "__name__", "custom")
    return stacked


def _scalar(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point():
        return value.reshape(())
    found = (
        f"a {value.dtype} tensor of shape {tuple(value.shape)}"
        if isinstance(value, torch.Tensor)
        else type(value).__name__
    )
    raise ConfigError(
        f"Probe loss callable: expected the batch's mean loss as a floating scalar tensor, "
        f"found {found}; reduce it, e.g. return per_example.mean() (or reduction='mean')"
    )


def check_runs(
    model: FlatModel,
    theta: torch.Tensor,
    batch: tuple[torch.Tensor, torch.Tensor],
    loss: Any,
    stacked: LossFn,
) -> bool:
    """Run the model and the loss on a few examples at theta; return whether accuracy applies
    (class labels (B,) and outputs (B, C): argmax accuracy), raising ConfigError otherwise."""
    x, y = batch
    try:
        with torch.no_grad():
            out = model.forward(theta, x)
    except Exception as e:  # the caller's module: any error it raises is theirs to see
        raise ConfigError(
            f"Probe: expected the model to run on the data's inputs {tuple(x.shape)} "
            f"({x.dtype}, {x.device}) through torch.func.functional_call, found "
            f"{type(e).__name__}: {e}; check the inputs' shape and dtype against the model"
        ) from e
    _check_shapes(loss, out, y)
    with torch.no_grad():
        stacked(out.unsqueeze(0), y.unsqueeze(0))  # a non-scalar callable raises here
    labels = not y.is_floating_point() and y.dim() == 1
    return labels and out.dim() == 2 and len(out) == len(y)


def _check_shapes(loss: Any, out: torch.Tensor, y: torch.Tensor) -> None:
    if loss == "mse" and out.shape != y.shape:
        raise ConfigError(
            f"Probe: loss 'mse': expected targets shaped like the outputs, found outputs "
            f"{tuple(out.shape)} and targets {tuple(y.shape)} (they would broadcast); reshape "
            f"y to {tuple(out.shape)}, e.g. y.reshape(len(y), -1)"
        )
    if loss == "cross_entropy" and (out.dim() != 2 or int(y.max()) >= out.shape[-1]):
        raise ConfigError(
            f"Probe: loss 'cross_entropy': expected outputs (B, C) and labels in [0, C), found "
            f"outputs {tuple(out.shape)} and labels up to {int(y.max())}; check the model's "
            "output layer, or pass a loss callable for other shapes"
        )


def checked_module(model: Any, device: torch.device | str | None) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"Probe: expected model a torch.nn.Module, found {type(model).__name__}; pass the "
            "network itself (e.g. Probe(net, ...)), not its state_dict or a function"
        )
    if next(model.parameters(), None) is None:
        raise ConfigError(
            f"Probe: expected a model with parameters, found {type(model).__name__} with none; "
            "a landscape is over parameters"
        )
    if device is None or torch.device(device) == next(model.parameters()).device:
        return model
    return deepcopy(model).to(device)  # a private copy moves; the caller's module stays put


def finite_parameters(theta: torch.Tensor, model: nn.Module) -> None:
    if bool(torch.isfinite(theta).all()):
        return
    bad = [n for n, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
    raise ConfigError(
        f"Probe: expected finite parameters, found NaN or inf in {', '.join(bad)}; the model "
        "diverged or was loaded wrongly: probe a finite checkpoint"
    )


def checked_bn(bn: str, model: nn.Module) -> str:
    if bn not in BN_MODES:
        raise ConfigError(
            f"Probe: bn={bn!r}: expected one of {', '.join(BN_MODES)}; recalibrate re-estimates "
            "BatchNorm statistics at each point (the CLI's default)"
        )
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    return bn if has_bn else "stored"


def generator_of(
    seed: int | None, generator: torch.Generator | None
) -> tuple[torch.Generator, int | None]:
    """The generator to draw from and the seed to record: seed (default 0) or the caller's."""
    if generator is not None:
        if seed is not None or not isinstance(generator, torch.Generator):
            raise ConfigError(
                f"Probe: expected either seed= or generator= (a torch.Generator), found seed="
                f"{seed!r} and generator={type(generator).__name__}; pass one of them"
            )
        return generator, None
    if isinstance(seed, bool) or not isinstance(seed, int | None) or (seed or 0) < 0:
        raise ConfigError(f"Probe: expected seed an integer >= 0, found {seed!r}; e.g. seed=0")
    seed = 0 if seed is None else seed
    return torch.Generator().manual_seed(seed), seed


def other_point(other: Any, layout: Layout, theta: torch.Tensor) -> torch.Tensor:
    """A second point (P,) from a module of the same architecture or a flat vector."""
    if isinstance(other, torch.Tensor):
        if other.shape != theta.shape or not other.is_floating_point():
            raise ConfigError(
                f"Probe: expected a flat point of shape {tuple(theta.shape)}, found "
                f"{other.dtype} {tuple(other.shape)}; pass a module of the same architecture"
            )
        point = other.detach().to(theta)
    elif isinstance(other, nn.Module):
        found = Layout.of_parameters(other)
        if found != layout:
            raise ConfigError(
                f"Probe: expected a module with the model's parameters {_names(layout)}, found "
                f"{_names(found)}; pass a module of the same architecture"
            )
        point = found.flatten(dict(other.named_parameters())).to(theta)
    else:
        raise ConfigError(
            f"Probe: expected a second point as a module or a flat tensor, found "
            f"{type(other).__name__}; pass a module of the model's architecture"
        )
    if not math.isfinite(float(point.sum(dtype=torch.float64))):
        raise ConfigError(
            "Probe: expected a finite second point, found NaN or inf in it; pass a finite one"
        )
    return point


def _names(layout: Layout) -> str:
    shown = [f"{e.name} {e.shape}" for e in layout.entries[:4]]
    more = len(layout.entries) - len(shown)
    return "[" + ", ".join(shown) + (f", ... {more} more" if more > 0 else "") + "]"
