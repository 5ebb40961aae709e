"""The registered measures of `landscape analyze`: keys, computation, and what is stored.

Each `compute` is a thin adapter: it picks the stored points, calls the pure measure functions
in `landscape.measures`, and names the arrays (Li et al.'s names for surfaces).
"""

from __future__ import annotations

import numpy as np
import torch

from landscape.analysis_store import Result
from landscape.analyze import (
    AnalysisConfig,
    Context,
    Measure,
    all_runs,
    as_array,
    pair_runs,
    register,
    seed_pairs,
    selected_runs,
)
from landscape.data.synthetic import LINE_X_MAX, ring_coordinates, ring_image
from landscape.flat import BN_MODES, HessianVectorProduct, Objective
from landscape.measures.curvature import CurvatureError, hessian_trace, top_eigenvalues
from landscape.measures.directions import pca_directions, random_direction, random_plane
from landscape.measures.distance import distance_from_init, pair_distance
from landscape.measures.gradient import gradient_norms
from landscape.measures.prediction import line_scores, ring_scores
from landscape.measures.restart import recipe, restart
from landscape.measures.sharpness import epsilon_sharpness, perturbation_sharpness
from landscape.measures.slices import (
    barrier_height,
    default_alphas,
    grid_coordinates,
    interpolate,
    surface_1d,
    surface_2d_rows,
)
from landscape.runs import Experiment
from landscape.train import loss_name, loss_units

L2 = "L2 norm in parameter space"


def _loss_units(ctx: Context) -> str:
    return loss_units(loss_name(ctx.exp.cfg, ctx.exp.dataset))


def _points(ctx: Context, run_id: str) -> tuple[np.ndarray, torch.Tensor, torch.Tensor | None]:
    """Steps (n+1,), points (n+1, P) and BatchNorm buffers (or None): init, then checkpoints."""
    run = ctx.exp.run(run_id)
    steps = np.concatenate([[0], run.checkpoint_steps])
    points = torch.cat([run.init.unsqueeze(0), run.checkpoints])
    buffers = None
    if run.init_buffers.numel():
        buffers = torch.cat([run.init_buffers.unsqueeze(0), run.checkpoint_buffers])
    return steps, points, buffers


def _distance(ctx: Context, run_id: str) -> Result:
    run = ctx.exp.run(run_id)
    steps, points, _ = _points(ctx, run_id)
    d = distance_from_init(run.init, points, ctx.exp.layout)
    return Result(
        arrays={
            "step": as_array(steps, "optimizer steps taken", "steps", ("step",)),
            "l2": as_array(d.l2, "||theta - theta0||_2 over all parameters", L2, ("step",)),
            "frobenius_sum": as_array(
                d.frobenius_sum, "sum over tensors of ||theta_t - theta0_t||_F", L2, ("step",)
            ),
            "weight_norm_sum": as_array(
                d.weight_norm_sum,
                "sum over tensors of ||theta_t||_F (Merkulov & Oseledets' figures; not a distance)",
                L2,
                ("step",),
            ),
        },
        attrs={"run": run_id, "mode": run.mode, "headline": f"l2 {float(d.l2[-1]):.3f}"},
    )


def _pair_distance(ctx: Context, key: str) -> Result:
    normal, overfit = pair_runs(ctx.exp, key)
    l2, frob = pair_distance(normal.final, overfit.final, ctx.exp.layout)
    init_l2, _ = pair_distance(normal.init, overfit.init, ctx.exp.layout)
    return Result(
        arrays={
            "l2": as_array(l2, "||theta_normal - theta_overfit||_2 at the final points", L2),
            "frobenius_sum": as_array(frob, "sum over tensors of the Frobenius distance", L2),
            "init_l2": as_array(init_l2, "distance between the two initial points (0: shared)", L2),
        },
        attrs={"normal": normal.run_id, "overfit": overfit.run_id, "headline": f"l2 {l2:.3f}"},
    )


def _gradient(ctx: Context, run_id: str) -> Result:
    steps, points, buffers = _points(ctx, run_id)
    norms = {}
    for split in ("train", "test"):
        values = []
        for i, theta in enumerate(points):
            b = buffers[i] if buffers is not None else None
            obj = _objective(ctx, split, b)
            values.append(gradient_norms(obj, theta.unsqueeze(0)))
        norms[split] = torch.cat(values)
    return Result(
        arrays={
            "step": as_array(steps, "optimizer steps taken", "steps", ("step",)),
            "train_grad_norm": as_array(
                norms["train"],
                "||grad of the full-batch clean training loss||_2",
                "L2 norm",
                ("step",),
            ),
            "test_grad_norm": as_array(
                norms["test"], "||grad of the test loss||_2", "L2 norm", ("step",)
            ),
        },
        attrs={"run": run_id, "headline": f"train grad norm {float(norms['train'][-1]):.2e}"},
    )


register(
    Measure(
        "distance", "distances of the initial point and checkpoints from init", all_runs, _distance
    )
)
register(
    Measure(
        "pair_distance",
        "distance between the normal and overfit final points of each seed",
        seed_pairs,
        _pair_distance,
    )
)
register(
    Measure(
        "gradient",
        "full-batch gradient norms on clean train and test, per checkpoint",
        all_runs,
        _gradient,
    )
)


# -- slices -------------------------------------------------------------------------------

SPLITS = ("train", "test")


def _objective(ctx: Context, split: str, buffers: torch.Tensor | None) -> Objective:
    """The loss on `split` with the BatchNorm statistics `ctx.cfg.bn` says (stored: `buffers`)."""
    b = buffers if buffers is not None and buffers.numel() else None
    bn = ctx.cfg.bn if ctx.cfg.bn in BN_MODES else "stored"
    return ctx.exp.objective(
        split, buffers=b, budget_bytes=ctx.budget, bn=bn, bn_samples=ctx.cfg.bn_samples
    )


def _objectives(ctx: Context, buffers: torch.Tensor | None) -> dict:
    return {s: _objective(ctx, s, buffers) for s in SPLITS}


def interpolation_keys(exp, cfg) -> list[str]:
    """init-final.<run> for every run, normal-overfit.<k> for every seed pair."""
    keys = [f"init-final.{r}" for r in all_runs(exp, cfg)]
    return keys + [f"normal-overfit.{p.rsplit('-', 1)[1]}" for p in seed_pairs(exp, cfg)]


def _endpoints(ctx: Context, key: str) -> tuple[torch.Tensor, torch.Tensor, str, str, torch.Tensor]:
    kind, rest = key.split(".", 1)
    if kind == "init-final":
        run = ctx.exp.run(rest)
        return run.init, run.final, f"{rest} init", f"{rest} final", run.final_buffers
    normal, overfit = ctx.exp.run(f"normal-{rest}"), ctx.exp.run(f"overfit-{rest}")
    return normal.final, overfit.final, normal.run_id, overfit.run_id, normal.final_buffers


def _line(
    objs: dict,
    a: torch.Tensor,
    b: torch.Tensor,
    alphas: torch.Tensor,
    units: str,
    prefix: str,
    arrays: dict,
    attrs: dict,
) -> None:
    """Loss and accuracy on (1 - alpha) a + alpha b per split, and each split's barrier."""
    for split, obj in objs.items():
        s = interpolate(obj, a, b, alphas)
        arrays[f"{prefix}{split}_loss"] = as_array(
            s.loss, f"{split} loss on (1 - alpha) a + alpha b", units, ("alpha",)
        )
        arrays[f"{prefix}{split}_acc"] = as_array(
            s.acc, f"{split} accuracy on (1 - alpha) a + alpha b", "fraction", ("alpha",)
        )
        attrs[f"barrier_{split}_loss"] = barrier_height(alphas, s.loss)


def _interpolation(ctx: Context, key: str) -> Result:
    a, b, name_a, name_b, buffers = _endpoints(ctx, key)
    alphas = default_alphas(ctx.cfg.alpha_points, ctx.cfg.alpha_min, ctx.cfg.alpha_max)
    units = _loss_units(ctx)
    arrays = {"alpha": as_array(alphas, "theta(alpha) = (1 - alpha) a + alpha b", "1", ("alpha",))}
    attrs: dict = {"a": name_a, "b": name_b}
    _line(_objectives(ctx, buffers), a, b, alphas, units, "", arrays, attrs)
    attrs["headline"] = f"train barrier {attrs['barrier_train_loss']:.3g}"
    return Result(arrays, attrs)


def _surface1d(ctx: Context, run_id: str) -> Result:
    run = ctx.exp.run(run_id)
    coords = grid_coordinates(ctx.cfg.line_points, ctx.cfg.span)
    objs = _objectives(ctx, run.final_buffers)
    curves: dict[str, list[torch.Tensor]] = {
        f"{s}_{q}": [] for s in SPLITS for q in ("loss", "acc")
    }
    for _ in range(ctx.cfg.directions):
        d = random_direction(
            run.final, ctx.exp.layout, generator=ctx.generator, ignore=ctx.cfg.ignore
        )
        for split, obj in objs.items():
            s = surface_1d(obj, run.final, d, coords)
            curves[f"{split}_loss"].append(s.loss)
            curves[f"{split}_acc"].append(s.acc)
    units = _loss_units(ctx)
    arrays = {
        "xcoordinates": as_array(
            coords,
            "step along a filter-normalized random direction",
            "filter-normalized units",
            ("xcoordinates",),
        )
    }
    for name, values in curves.items():
        stack = torch.stack(values)  # (directions, n)
        unit = units if name.endswith("loss") else "fraction"
        arrays[name] = as_array(stack, f"{name}, one row per direction draw", unit)
        arrays[f"{name}_mean"] = as_array(
            stack.mean(0), f"{name}, mean over draws", unit, ("xcoordinates",)
        )
        arrays[f"{name}_std"] = as_array(
            stack.std(0) if len(stack) > 1 else stack[0] * 0,
            f"{name}, standard deviation over draws",
            unit,
            ("xcoordinates",),
        )
    return Result(
        arrays,
        {
            "run": run_id,
            "directions": ctx.cfg.directions,
            "headline": f"{ctx.cfg.directions} directions",
        },
    )


def _surface2d(ctx: Context, run_id: str) -> Result:
    run = ctx.exp.run(run_id)
    d1, d2 = random_plane(run.final, ctx.exp.layout, generator=ctx.generator, ignore=ctx.cfg.ignore)
    return _plane(ctx, run_id, d1, d2, "filter-normalized random direction", {})


def _surface_pca(ctx: Context, run_id: str) -> Result:
    """Li et al. section 7: the plane of the two top principal components of the trajectory."""
    run = ctx.exp.run(run_id)
    trajectory = torch.cat([run.init.unsqueeze(0), run.checkpoints])
    pca = pca_directions(trajectory, run.final, 2)
    extent = float(pca.coordinates.abs().max()) * 1.2  # the whole path fits on the plane
    extra = {
        "explained_variance_ratio": as_array(
            pca.explained_variance_ratio, "fraction of the trajectory's variance per direction", "1"
        ),
        "trajectory_x": as_array(pca.coordinates[:, 0], "init, checkpoints on direction_x", L2),
        "trajectory_y": as_array(pca.coordinates[:, 1], "init, checkpoints on direction_y", L2),
    }
    what = "unit principal direction of the trajectory"
    return _plane(ctx, run_id, pca.directions[0], pca.directions[1], what, extra, span=extent)


def _plane(
    ctx: Context,
    run_id: str,
    d1: torch.Tensor,
    d2: torch.Tensor,
    what: str,
    extra: dict,
    span: float | None = None,
) -> Result:
    """Loss and accuracy on theta + x d1 + y d2, row by row (each row kept when done)."""
    run = ctx.exp.run(run_id)
    n = ctx.cfg.grid
    coords = grid_coordinates(n, span or ctx.cfg.span)
    objs = _objectives(ctx, run.final_buffers)
    done = ctx.load_parts()  # rows kept by an interrupted run
    for i in [i for i in range(n) if f"row{i:05d}" not in done]:
        row = {}
        for split, obj in objs.items():
            ((_, loss, acc),) = surface_2d_rows(obj, run.final, d1, d2, coords, coords, [i])
            row[f"{split}_loss"], row[f"{split}_acc"] = loss.cpu().numpy(), acc.cpu().numpy()
        ctx.save_part(f"row{i:05d}", **row)
        done[f"row{i:05d}"] = row
    units = _loss_units(ctx)
    arrays = {
        "xcoordinates": as_array(
            coords, "coefficient of direction_x", "units of direction_x", ("xcoordinates",)
        ),
        "ycoordinates": as_array(
            coords, "coefficient of direction_y", "units of direction_y", ("ycoordinates",)
        ),
        "direction_x": as_array(d1, f"first {what} (flat, see layout)", "1"),
        "direction_y": as_array(d2, f"second {what}", "1"),
        **extra,
    }
    for split in SPLITS:
        for q, unit in (("loss", units), ("acc", "fraction")):
            grid = np.stack([done[f"row{i:05d}"][f"{split}_{q}"] for i in range(n)])
            arrays[f"{split}_{q}"] = as_array(
                grid,
                f"{split} {q} at theta + x d_x + y d_y",
                unit,
                ("xcoordinates", "ycoordinates"),
            )
    centre = float(arrays["train_loss"].values[n // 2, n // 2])
    return Result(arrays, {"run": run_id, "headline": f"centre train loss {centre:.4g}"})


register(
    Measure(
        "interpolation",
        "loss and accuracy on the line between two points (init -> "
        "final, normal <-> overfit), with the barrier height",
        interpolation_keys,
        _interpolation,
    )
)
register(
    Measure(
        "surface1d",
        "1D slices along filter-normalized random directions (several draws)",
        selected_runs,
        _surface1d,
    )
)
register(
    Measure(
        "surface2d",
        "2D loss surface on a filter-normalized random plane (Li et al.)",
        selected_runs,
        _surface2d,
    )
)
register(
    Measure(
        "surface_pca",
        "2D loss surface on the plane of the trajectory's top two principal components, with "
        "the projected trajectory (Li et al. section 7)",
        selected_runs,
        _surface_pca,
    )
)


# -- curvature ----------------------------------------------------------------------------

CURV = "loss / parameter^2"


def _hvp(ctx: Context, run_id: str) -> tuple[HessianVectorProduct, int]:
    run = ctx.exp.run(run_id)
    obj = _objectives(ctx, run.final_buffers)["train"]
    return obj.hvp_operator(run.final), obj.model.size


def _hessian(ctx: Context, run_id: str) -> Result:
    hvp, size = _hvp(ctx, run_id)
    k = ctx.cfg.top_k
    try:
        r = top_eigenvalues(hvp, size, k, generator=ctx.generator, keep_vectors=False)
        values, residuals, products, failed = r.eigenvalues, r.residuals, r.n_products, ""
    except CurvatureError as e:  # stored as NaN with the reason, never hidden
        values = residuals = torch.full((k,), float("nan"))
        products, failed = hvp.calls, str(e)
    arrays = {
        "eigenvalues": as_array(
            values, "top Hessian eigenvalues of the clean training loss, descending (Lanczos)", CURV
        ),
        "residuals": as_array(residuals, "||H v - lambda v|| / |lambda| per eigenpair", "1"),
    }
    return Result(
        arrays,
        {
            "run": run_id,
            "n_products": products,
            "failed": failed,
            "headline": f"top eigenvalue {float(values[0]):.4g}",
        },
    )


def _trace(ctx: Context, run_id: str) -> Result:
    hvp, size = _hvp(ctx, run_id)
    r = hessian_trace(hvp, size, generator=ctx.generator, n_samples=ctx.cfg.trace_samples)
    arrays = {
        "trace": as_array(r.trace, "Hutchinson estimate of tr(H), clean training loss", CURV),
        "std_error": as_array(r.std_error, "standard error of the trace estimate", CURV),
        "samples": as_array(r.samples, "v^T H v for each Rademacher vector v", CURV),
    }
    return Result(
        arrays,
        {
            "run": run_id,
            "n_products": r.n_products,
            "headline": f"trace {r.trace:.4g} +- {r.std_error:.2g}",
        },
    )


register(
    Measure(
        "hessian",
        "top-k Hessian eigenvalues of the clean training loss at the final "
        "point (Lanczos), with residuals",
        all_runs,
        _hessian,
    )
)
register(
    Measure(
        "trace",
        "Hessian trace at the final point (Hutchinson) with its standard error",
        all_runs,
        _trace,
    )
)


# -- restarts and curvature over training ------------------------------------------------


def restart_keys(exp: Experiment, cfg: AnalysisConfig) -> list[str]:
    """<recipe>.<overfit run> for every recipe and complete overfit run."""
    overfit = [r for r in all_runs(exp, cfg) if exp.run(r).mode == "overfit"]
    return [f"{name}.{r}" for name in cfg.recipes for r in overfit]


def _restart(ctx: Context, key: str) -> Result:
    name, run_id = key.split(".", 1)
    run = ctx.exp.run(run_id)
    objs = _objectives(ctx, run.final_buffers)
    r = restart(
        objs["train"], objs["test"], run.final, run.init, recipe(name), generator=ctx.generator
    )
    units, dims = _loss_units(ctx), ("step",)
    arrays = {
        "step": as_array(r.steps, "optimizer steps since the restart", "steps", dims),
        "train_loss": as_array(r.train_loss, "clean training loss", units, dims),
        "train_acc": as_array(r.train_acc, "clean training accuracy", "fraction", dims),
        "test_loss": as_array(r.test_loss, "test loss", units, dims),
        "test_acc": as_array(r.test_acc, "test accuracy", "fraction", dims),
        "grad_norm": as_array(
            r.grad_norm, "||grad of the clean training loss||_2", "L2 norm", dims
        ),
        "dist_moved": as_array(r.dist_moved, "distance from the overfit point", L2, dims),
        "dist_init": as_array(r.dist_init, "distance from the run's initial point", L2, dims),
        "end_params": as_array(r.end, "parameters at the end of the restart (flat)", "1"),
    }
    alphas = default_alphas(ctx.cfg.alpha_points, ctx.cfg.alpha_min, ctx.cfg.alpha_max)
    arrays["alpha"] = as_array(alphas, "overfit point (0) -> restart end (1)", "1", ("alpha",))
    attrs = {
        "run": run_id,
        "recipe": name,
        "recipe_settings": str(recipe(name)),
        "diverged_step": r.diverged_step,
    }
    _line(objs, run.final, r.end, alphas, units, "interp_", arrays, attrs)
    attrs["headline"] = f"test acc {r.test_acc[0]:.3f} -> {r.test_acc[-1]:.3f}"
    return Result(arrays, attrs)


def _curvature_trajectory(ctx: Context, run_id: str) -> Result:
    steps, points, buffers = _points(ctx, run_id)
    k = ctx.cfg.trajectory_k
    values = torch.full((len(points), k), float("nan"), dtype=torch.float64)
    for i, theta in enumerate(points):
        b = buffers[i] if buffers is not None else None
        obj = _objective(ctx, "train", b)
        try:
            # a curve needs ~4 digits, not the 1e-6 of the final point's spectrum
            r = top_eigenvalues(
                obj.hvp_operator(theta),
                obj.model.size,
                k,
                tol=1e-4,
                generator=ctx.generator,
                keep_vectors=False,
            )
            values[i] = r.eigenvalues
        except CurvatureError:  # stays NaN, never hidden; rare (non-finite point)
            continue
    arrays = {
        "step": as_array(steps, "optimizer steps taken", "steps", ("step",)),
        "eigenvalues": as_array(
            values,
            "top Hessian eigenvalues of the clean training loss at each checkpoint",
            CURV,
            ("step",),
        ),
    }
    return Result(arrays, {"run": run_id, "headline": f"final top {float(values[-1, 0]):.4g}"})


register(
    Measure(
        "restart",
        "train on the clean data from each overfit point (recipes sgd, "
        "adam-full): accuracy, distance moved, end point",
        restart_keys,
        _restart,
    )
)
register(
    Measure(
        "curvature_trajectory",
        "top Hessian eigenvalue at every checkpoint (curvature over training)",
        selected_runs,
        _curvature_trajectory,
    )
)


# -- sharpness ----------------------------------------------------------------------------


def _epsilon_sharpness(ctx: Context, run_id: str) -> Result:
    run = ctx.exp.run(run_id)
    obj = _objectives(ctx, run.final_buffers)["train"]
    r = epsilon_sharpness(obj, run.final, epsilon=ctx.cfg.epsilon, generator=ctx.generator)
    arrays = {
        "sharpness": as_array(
            r.sharpness,
            "Keskar et al.'s epsilon-sharpness: 100 (max L - L) / "
            "(1 + L) over the box, clean training loss",
            "percent",
        ),
        "base_loss": as_array(r.base_loss, "clean training loss at the point", _loss_units(ctx)),
        "max_loss": as_array(r.max_loss, "largest loss found in the box", _loss_units(ctx)),
        "delta_norm": as_array(r.delta_norm, "||delta||_2 of the maximizer", L2),
    }
    return Result(
        arrays,
        {
            "run": run_id,
            "method": r.method,
            "epsilon": r.epsilon,
            "n_evaluations": r.n_evaluations,
            "finite": r.finite,
            "headline": f"{r.sharpness:.3g} %",
        },
    )


def _perturbation(ctx: Context, run_id: str) -> Result:
    run = ctx.exp.run(run_id)
    obj = _objectives(ctx, run.final_buffers)["train"]
    r = perturbation_sharpness(
        obj,
        run.final,
        ctx.exp.layout,
        radius=ctx.cfg.radii,
        n_directions=ctx.cfg.directions,
        generator=ctx.generator,
        ignore=ctx.cfg.ignore,
    )
    units, dims = _loss_units(ctx), ("radius",)
    arrays = {
        "radius": as_array(
            r.radii,
            "radius along filter-normalized random directions",
            "filter-normalized units",
            dims,
        ),
        "increase": as_array(
            r.increases, "L(theta + r d) - L(theta), one row per direction", units
        ),
        "increase_mean": as_array(r.mean, "mean loss increase over directions", units, dims),
        "increase_std": as_array(r.std, "standard deviation over directions", units, dims),
        "acc_drop_mean": as_array(
            r.acc_drop_mean, "mean clean-train accuracy drop", "fraction", dims
        ),
    }
    return Result(
        arrays,
        {
            "run": run_id,
            "base_loss": r.base_loss,
            "finite": r.finite,
            "headline": f"increase at r={r.radii[-1]:.3g}: {float(r.mean[-1]):.3g}",
        },
    )


register(
    Measure(
        "epsilon_sharpness",
        "Keskar et al.'s epsilon-sharpness of the clean training "
        "loss at the final point (L-BFGS-B in the box)",
        all_runs,
        _epsilon_sharpness,
    )
)
register(
    Measure(
        "perturbation",
        "expected loss increase under random filter-normalized perturbations of given radii",
        all_runs,
        _perturbation,
    )
)


def prediction_keys(exp: Experiment, cfg: AnalysisConfig) -> list[str]:
    """Every run, for the datasets whose input range can be drawn (ring, line)."""
    return all_runs(exp, cfg) if exp.cfg.data.name in ("ring", "line") else []


def _outputs(ctx: Context, points: torch.Tensor, buffers: torch.Tensor | None, x: np.ndarray):
    """Network outputs (n_points, n_inputs) at each point, one point at a time."""
    inputs = torch.as_tensor(x).to(ctx.exp.device)
    out = []
    with torch.no_grad():
        for i, theta in enumerate(points):
            model = ctx.exp.model(None if buffers is None else buffers[i])
            out.append(model.forward(theta.to(ctx.exp.device), inputs)[:, 0].cpu())
    return torch.stack(out).double().numpy()


def _prediction(ctx: Context, run_id: str) -> Result:
    steps, points, buffers = _points(ctx, run_id)
    ds, dims = ctx.exp.dataset, ("step",)
    arrays = {"step": as_array(steps, "optimizer steps taken", "steps", dims)}
    attrs: dict = {"run": run_id, "dataset": ds.name, "train_size": len(ds.x_train)}
    if ds.name == "ring":
        g = ctx.cfg.prediction_resolution
        images = _outputs(ctx, points, buffers, ring_coordinates(g)).reshape(-1, g, g)
        target = ring_image(g)
        scores = ring_scores(images, target)
        axis = np.arange(g) / g
        arrays |= {
            "x": as_array(axis, "input x = column / resolution", "1", ("x",)),
            "y": as_array(axis, "input y = row / resolution (downwards)", "1", ("y",)),
            "output": as_array(images, "predicted gray level (0 black, 1 white)", "1"),
            "target": as_array(target, "the true ring image", "1"),
        }
        long = {
            "iou": "IoU of predicted black (< 0.5) with the ring",
            "image_mse": "mean squared error over the whole image",
            "components": "connected components of the predicted black region",
            "black_fraction": "fraction of pixels predicted black",
        }
        for name, values in scores.items():
            arrays[name] = as_array(values, long[name], "1", dims)
        attrs["black_train_points"] = int((ds.y_train[:, 0] < 0.5).sum())
        attrs["headline"] = f"IoU {scores['iou'][-1]:.3f}, {scores['components'][-1]} blobs"
    else:
        grid = np.linspace(0.0, LINE_X_MAX, 201, dtype=np.float32)
        curves = _outputs(ctx, points, buffers, grid[:, None])
        s = line_scores(curves, grid, ds.x_train[:, 0], ds.y_train[:, 0])
        fitted = _outputs(ctx, points, buffers, ds.x_train)
        train_mse = ((fitted - ds.y_train[:, 0].astype(np.float64)[None]) ** 2).mean(axis=1)
        arrays |= {
            "x": as_array(grid, "input x", "1", ("x",)),
            "output": as_array(curves, "network output y(x) at each checkpoint", "1"),
            "ols": as_array(s["ols"], "ordinary least squares line on the training data", "1"),
            "train_x": as_array(ds.x_train[:, 0], "training inputs", "1"),
            "train_y": as_array(ds.y_train[:, 0], "training targets", "1"),
            "max_abs_vs_ols": as_array(s["max_abs_vs_ols"], "max over x of |NN - OLS|", "1", dims),
            "mean_abs_vs_ols": as_array(
                s["mean_abs_vs_ols"], "mean over x of |NN - OLS|", "1", dims
            ),
        }
        arrays["train_mse"] = as_array(train_mse, "network MSE on the training points", "1", dims)
        attrs["ols_train_mse"] = float(s["ols_train_mse"])
        attrs["ols_intercept"], attrs["ols_slope"] = map(float, s["ols_coefficients"])
        attrs["headline"] = f"max |NN - OLS| {s['max_abs_vs_ols'][-1]:.3f}"
    return Result(arrays, attrs)


register(
    Measure(
        "prediction",
        "the network's output over the whole input range (ring image, line curve) at every "
        "checkpoint, with IoU/components (ring) or the gap to least squares (line)",
        prediction_keys,
        _prediction,
    )
)
