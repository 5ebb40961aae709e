"""Loss and accuracy on the straight line between two stored points, with named barriers.

Keys: `init-final.<run>` (Goodfellow et al.'s path from the initial point to the final one) and
`normal-overfit.<k>` (between the two final points of seed k). Every result stores, per split,
the loss barrier (Entezari et al. 2022), the error barrier (Frankle et al. 2020) and the largest
loss rise (Lucas et al. 2021); see `common.line_attrs`. The summary reads the barriers on the
normal <-> overfit paths, between two minima, and only the largest rise on init -> final: a
path that falls from init to a minimum is no barrier, even where it lies above its chord. The
pure functions are `slices.interpolate`, `barrier_height`, `error_barrier` and `largest_rise`.
"""

from __future__ import annotations

import torch

from landscape.measures.common import (
    all_runs,
    line,
    line_arrays,
    needs_init,
    objectives,
    seed_pairs,
)
from landscape.measures.slices import default_alphas
from landscape.measures.spec import (
    ALPHA_MAX,
    ALPHA_MIN,
    ALPHA_POINTS,
    Context,
    MeasureSpec,
    Stored,
)
from landscape.store.summary import Scalar


def interpolation_keys(exp, cfg) -> list[str]:  # type: ignore[no-untyped-def]
    """init-final.<run> for every run, normal-overfit.<k> for every seed pair."""
    keys = [f"init-final.{r}" for r in all_runs(exp, cfg)]
    return keys + [f"normal-overfit.{p.rsplit('-', 1)[1]}" for p in seed_pairs(exp, cfg)]


def _skip_reason(exp, key: str) -> str:  # type: ignore[no-untyped-def]
    """init-final paths need the run's initial point (an import may lack it)."""
    return needs_init(exp, key) if key.startswith("init-final.") else ""


def _endpoints(ctx: Context, key: str) -> tuple[torch.Tensor, torch.Tensor, str, str, torch.Tensor]:
    kind, rest = key.split(".", 1)
    if kind == "init-final":
        run = ctx.exp.run(rest)
        return run.init, run.final, f"{rest} init", f"{rest} final", run.final_buffers
    normal, overfit = ctx.exp.run(f"normal-{rest}"), ctx.exp.run(f"overfit-{rest}")
    return normal.final, overfit.final, normal.run_id, overfit.run_id, normal.final_buffers


def _compute(ctx: Context, key: str) -> tuple[dict, dict]:
    a, b, name_a, name_b, buffers = _endpoints(ctx, key)
    cfg = ctx.cfg
    alphas = default_alphas(cfg.alpha_points, cfg.alpha_min, cfg.alpha_max)
    values: dict = {"alpha": alphas}
    attrs: dict = {"a": name_a, "b": name_b}
    line(objectives(ctx, buffers), a, b, alphas, "", values, attrs)
    attrs["headline"] = _headline(key, attrs)
    return values, attrs


def _headline(key: str, attrs: dict) -> str:
    if key.startswith("init-final."):
        return f"largest train loss rise {attrs['rise_train_loss']:.3g}"
    error = attrs.get("barrier_train_error")
    text = f"train loss barrier {attrs['barrier_train_loss']:.3g}"
    return text + (f", error barrier {error:.3g}" if error is not None else "")


SPEC = MeasureSpec(
    name="interpolation",
    description="loss and accuracy on the line between two points (init -> final, normal <-> "
    "overfit), with the loss barrier, error barrier and largest loss rise",
    needs="path (init -> final of a run; normal <-> overfit final points of a seed)",
    keys=interpolation_keys,
    skip_reason=_skip_reason,
    compute=_compute,
    settings=(ALPHA_POINTS, ALPHA_MIN, ALPHA_MAX),
    group="path",
    arrays=(
        Stored("alpha", "theta(alpha) = (1 - alpha) a + alpha b", "1", ("alpha",)),
        *line_arrays(),
    ),
    scalars=(
        Scalar(
            "init_final_loss_rise",
            "init → final: largest train loss rise (Lucas et al. 2021; 0 = monotone)",
            "loss units",
            attr="rise_train_loss",
            keys="init-final",
            headline="present",
            key_name="init-final.<run",
        ),
        Scalar(
            "normal_overfit_loss_barrier",
            "normal ↔ overfit: train loss barrier (Entezari et al. 2022; loss above the chord)",
            "loss units",
            attr="barrier_train_loss",
            keys="normal-",
            key_name="normal-overfit.<k",
        ),
        *(
            Scalar(
                f"normal_overfit_{split}_error_barrier",
                f"normal ↔ overfit: {split} error barrier (Frankle et al. 2020; error above the "
                "endpoints' mean)",
                "fraction",
                attr=f"barrier_{split}_error",
                keys="normal-",
                key_name="normal-overfit.<k",
            )
            for split in ("train", "test")
        ),
    ),
    figures=("interpolation_init_final", "interpolation_normal_overfit"),
)
