"""Top Hessian eigenvalues: the toolkit's Lanczos against the exact spectrum and PyHessian 0.1.

Two parts, both on 2 CPU threads by default:

1. Hessian-vector products: per-product time of six ways to compute H v on the quick preset's
   MLP (64-512-10, 38,410 parameters) on the 1,297 digits training examples, interleaved
   round by round so a change in machine load hits all alike.
2. Eigenvalues: top-1 and top-5 on trained MLPs, against an exact reference.
   - small: MLP 64-48-10 (3,610 parameters) on digits; exact = `torch.linalg.eigvalsh` of
     the dense float64 Hessian.
   - 26k: MLP 784-32-10 (25,450 parameters) on 2,000 MNIST training images from
     ../shared/data (or MLP 64-350-10, 26,260 parameters, on digits when MNIST is absent).
     The dense Hessian would take 26k^2 float64 = 5.2 GB, so "exact" here is Lanczos on
     float64 products at tol 1e-10 (residuals printed).
   Each method is timed end to end (linearization or graph building included), the median of
   `--repeats` interleaved runs with a seed each: the toolkit (`top_eigenvalues` on float32
   `Objective.hvp_operator`, default tol 1e-6, and "lsc 1e-3" at tol 1e-3) and, when
   importable, PyHessian's power iteration at its defaults (maxIter 100, tol 1e-3: the
   comparison the goal is judged on) and at tol 1e-4 ("pyh 1e-4", about the goal's accuracy).
   Results and what they say: bench/HESSIAN.md.

    python bench/hessian.py                  # toolkit only; about 1 min on 2 quiet cores
    .bench/venv/bin/python bench/hessian.py  # with PyHessian (setup: see PYHESSIAN_SETUP)
    python bench/hessian.py --quick          # smoke test: 1 repeat, fewer HVP rounds
    python bench/hessian.py --parts eigen --cases small --json /tmp/hessian.json

Goal: every eigenvalue within 1e-3 (relative) of the exact one and sorted descending, in no
more time than PyHessian.
"""

from __future__ import annotations

import argparse
import copy
import functools
import importlib
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call, grad, jacrev, jvp, linearize, vjp

from landscape.config import DataConfig, ModelConfig
from landscape.core.flat import FlatModel
from landscape.core.objective import Objective
from landscape.data import load_dataset
from landscape.errors import LandscapeError
from landscape.measures.curvature import top_eigenvalues
from landscape.models import build_model, init_parameters

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"  # MNIST for the 26k case; absent on a user's machine
PYHESSIAN_SETUP = (
    "python3 -m venv --system-site-packages .bench/venv && "
    ".bench/venv/bin/pip install --no-deps pyhessian"
)
GOAL_REL_ERR = 1e-3
REFERENCE_TOL = 1e-10  # eigsh tolerance of the float64 reference where the dense H is too big
DENSE_LIMIT = 8192  # parameters up to which the reference is the dense Hessian


@dataclass(frozen=True)
class Case:
    name: str
    data: DataConfig
    widths: tuple[int, ...]
    epochs: int  # Adam (lr 1e-3, batch 128) epochs from the xavier init, seed 0


CASES = {
    "small": [Case("small", DataConfig(), (48,), 20)],
    # MNIST when the shared data are there, else a digits net of the same size.
    "26k": [
        Case("26k", DataConfig(name="mnist", subset=2000), (32,), 10),
        Case("26k", DataConfig(), (350,), 20),
    ],
}


@dataclass
class Problem:
    title: str
    model: nn.Module  # trained; its parameters are theta
    x: torch.Tensor
    y: torch.Tensor
    theta: torch.Tensor  # (P,) float32

    def objective(self, dtype: torch.dtype) -> Objective:
        template = copy.deepcopy(self.model).to(dtype)  # FlatModel freezes its template
        return Objective(
            FlatModel(template), self.x.to(dtype), self.y, loss="cross_entropy", classification=True
        )


# --- problems ---------------------------------------------------------------------------------


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int) -> None:
    """Adam 1e-3, batch 128, seeded shuffles: a realistic trained point, in place."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=order).split(128):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()


def load_problem(case: Case, data_dir: Path) -> Problem:
    ds = load_dataset(case.data, data_dir=data_dir, offline=True)
    x, y = torch.from_numpy(ds.x_train), torch.from_numpy(ds.y_train)
    cfg = ModelConfig(widths=case.widths)
    model = build_model(cfg, input_shape=ds.input_shape, n_outputs=ds.n_outputs)
    init_parameters(model, cfg, generator=torch.Generator().manual_seed(0))
    train(model, x, y, case.epochs)
    theta = torch.cat([p.detach().flatten() for p in model.parameters()])
    sizes = "-".join(str(s) for s in (x[0].numel(), *case.widths, ds.n_outputs))
    title = f"MLP {sizes} ({len(theta):,} params), {ds.title} ({len(x):,} train), "
    return Problem(title + f"Adam {case.epochs} epochs", model, x, y, theta)


def first_available(cases: list[Case], data_dir: Path) -> Problem:
    for case in cases[:-1]:
        try:
            return load_problem(case, data_dir)
        except LandscapeError as e:
            print(f"  ({case.data.name} unavailable: {e}; using the fallback)", flush=True)
    return load_problem(cases[-1], data_dir)


# --- exact reference --------------------------------------------------------------------------


def dense_hessian(p: Problem) -> torch.Tensor:
    """(P, P) float64 by vectorized reverse-over-reverse, independent of flat.py: many
    products per pass instead of P separate ones (hessian_matrix would take minutes here)."""
    model = copy.deepcopy(p.model).double()
    names = [n for n, _ in model.named_parameters()]
    shapes = [q.shape for q in model.parameters()]
    x = p.x.double()

    def loss(theta: torch.Tensor) -> torch.Tensor:
        parts = theta.split([s.numel() for s in shapes])
        params = {n: t.view(s) for n, t, s in zip(names, parts, shapes, strict=True)}
        return nn.functional.cross_entropy(functional_call(model, params, (x,)), p.y)

    h = jacrev(grad(loss), chunk_size=128)(p.theta.double())
    return (h + h.T) / 2


def reference(p: Problem, k: int) -> tuple[torch.Tensor, str]:
    """Top-k eigenvalues (k,) descending, float64, and how they were obtained."""
    t0 = time.perf_counter()
    if len(p.theta) <= DENSE_LIMIT:
        values = torch.linalg.eigvalsh(dense_hessian(p)).flip(0)[:k]
        how = "dense float64 Hessian (torch.func.jacrev of grad) + torch.linalg.eigvalsh"
        return values, f"{how}, {time.perf_counter() - t0:.1f} s"
    hvp = p.objective(torch.float64).hvp_operator(p.theta.double())
    r = top_eigenvalues(
        hvp,
        len(p.theta),
        k,
        generator=torch.Generator().manual_seed(1),
        tol=REFERENCE_TOL,
        keep_vectors=False,
    )
    how = (
        f"float64 Lanczos at tol {REFERENCE_TOL:g}: {r.n_products} HVPs, "
        f"max residual {float(r.residuals.max()):.1e}, {r.seconds:.1f} s"
    )
    return r.eigenvalues, how


# --- the methods ------------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    n_products: int
    values: list[float]  # as returned


def run_landscape(p: Problem, k: int, seed: int, tol: float | None = None) -> Run:
    """`top_eigenvalues` (tol None: its default); the linearization at theta is timed
    (PyHessian's constructor does the same work), building the objective is not (like its
    deepcopy of the model)."""
    objective = p.objective(torch.float32)
    options = {} if tol is None else {"tol": tol}
    t0 = time.perf_counter()
    hvp = objective.hvp_operator(p.theta)
    gen = torch.Generator().manual_seed(seed)
    r = top_eigenvalues(hvp, len(p.theta), k, generator=gen, **options)
    return Run(time.perf_counter() - t0, r.n_products, r.eigenvalues.tolist())


def pyhessian_module():
    """The module `pyhessian.hessian` (its package re-exports the class under that name)."""
    try:
        return importlib.import_module("pyhessian.hessian")
    except ImportError:
        return None


def run_pyhessian(p: Problem, k: int, seed: int, tol: float = 1e-3) -> Run:
    """PyHessian's power iteration with deflation; tol is its stopping rule (relative change
    of the estimate between iterations; 1e-3 is its default)."""
    module = pyhessian_module()
    counted = _CallCounter(module, "hessian_vector_product")
    model = copy.deepcopy(p.model)
    torch.manual_seed(seed)  # PyHessian draws its start vectors from the global RNG
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its backward(create_graph=True) warns about a cycle
        h = module.hessian(model, nn.CrossEntropyLoss(), data=(p.x, p.y), cuda=False)
        values, _ = h.eigenvalues(top_n=k, tol=tol)
    seconds = time.perf_counter() - t0
    module.hessian_vector_product = counted.original
    return Run(seconds, counted.calls, [float(v) for v in values])


class _CallCounter:
    """Wrap `owner.name` so calls are counted (PyHessian reports no product count)."""

    def __init__(self, owner: object, name: str):
        self.owner, self.original, self.calls = owner, getattr(owner, name), 0
        setattr(owner, name, self)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.original(*args, **kwargs)


METHODS: dict[str, Callable[[Problem, int, int], Run]] = {
    "landscape": run_landscape,  # defaults (tol 1e-6)
    # tol bounds the Ritz residual ||H v - lambda v|| / |lambda|; the eigenvalue error goes as
    # its square over the gap, so 1e-3 still gives eigenvalues to ~1e-6 with fewer products.
    "lsc 1e-3": functools.partial(run_landscape, tol=1e-3),
    "pyhessian": run_pyhessian,  # its defaults: the comparison the goal is judged on
    # The loosest PyHessian tolerance that brings these cases to about the goal's 1e-3.
    "pyh 1e-4": functools.partial(run_pyhessian, tol=1e-4),
}


# --- eigenvalue part --------------------------------------------------------------------------


@dataclass
class Row:
    case: str
    method: str
    k: int
    seconds: float  # median over repeats
    n_products: float  # median over repeats (PyHessian's count depends on the seed)
    values: list[float]  # of the first repeat
    rel_err: float  # worst over repeats of max_i |value_i - exact_i| / |exact_i|, sorted first
    rel_err_as_returned: float  # the same in the order returned
    is_sorted: bool  # descending in every repeat


def max_rel_err(values: torch.Tensor, exact: torch.Tensor) -> float:
    """max_i |values_i - exact_i| / |exact_i| over the first len(values) exact values."""
    head = exact[: len(values)]
    return float(((values - head).abs() / head.abs()).max())


def score(method: str, case: str, k: int, runs: list[Run], exact: torch.Tensor) -> Row:
    """Median time and product count over the repeats (each repeat has its own seed); the
    worst error and sortedness over all of them; the first repeat's values for display."""
    got = [torch.tensor(r.values, dtype=torch.float64) for r in runs]
    return Row(
        case,
        method,
        k,
        statistics.median(r.seconds for r in runs),
        statistics.median(r.n_products for r in runs),
        runs[0].values,
        max(max_rel_err(g.sort(descending=True).values, exact) for g in got),
        max(max_rel_err(g, exact) for g in got),
        all(bool(torch.all(g[:-1] >= g[1:])) for g in got),
    )


def eigen_case(p: Problem, case: str, ks: list[int], methods: list[str], repeats: int) -> list[Row]:
    exact, how = reference(p, max(ks))
    print(f"\n{case}: {p.title}\n  exact: {how}")
    print(f"  exact top-{len(exact)}: " + " ".join(f"{v:.6g}" for v in exact.tolist()))
    print(
        f"  {'method':<10} {'k':>2} {'seconds':>8} {'HVPs':>5} {'max rel err':>12} "
        f"{'as returned':>12} {'sorted':>6}  eigenvalues"
    )
    rows = []
    for k in ks:
        runs: dict[str, list[Run]] = {m: [] for m in methods}
        for r in range(repeats):
            # Methods take turns, and who goes first rotates: a run is faster right after one
            # of its own kind (allocator and caches), which would favour a fixed order.
            for m in methods[r % len(methods) :] + methods[: r % len(methods)]:
                runs[m].append(METHODS[m](p, k, r))
        for m in methods:
            rows.append(score(m, case, k, runs[m], exact))
            print_row(rows[-1])
    return rows


def print_row(r: Row) -> None:
    vals = " ".join(f"{v:.6g}" for v in r.values)
    print(
        f"  {r.method:<10} {r.k:>2} {r.seconds:>8.3f} {r.n_products:>5g} {r.rel_err:>12.1e} "
        f"{r.rel_err_as_returned:>12.1e} {'yes' if r.is_sorted else 'NO':>6}  {vals}",
        flush=True,
    )


def goals(rows: list[Row]) -> list[str]:
    lines = []
    for mine in ("landscape", "lsc 1e-3"):
        own = [r for r in rows if r.method == mine]
        if not own:
            continue
        worst = max(r.rel_err for r in own)
        ok = all(r.rel_err <= GOAL_REL_ERR and r.is_sorted for r in own)
        lines.append(
            f"{'PASS' if ok else 'MISS':<5} {mine}: every eigenvalue within {GOAL_REL_ERR:g} "
            f"(relative) of the exact one, sorted: worst {worst:.1e}"
        )
        for peer, judged in (("pyhessian", True), ("pyh 1e-4", False)):
            theirs = [r for r in rows if r.method == peer]
            lines.append(time_line(mine, own, theirs, peer, judged))
    return lines


def time_line(name: str, mine: list[Row], theirs: list[Row], peer: str, judged: bool) -> str:
    """Time ratios mine / peer per (case, k); PASS when none exceeds 1 (if judged)."""
    if not theirs:
        return f"n/a   {name}: no more time than {peer}: {peer} not run"
    by_key = {(r.case, r.k): r for r in theirs}
    ratios = {(r.case, r.k): r.seconds / by_key[r.case, r.k].seconds for r in mine}
    listed = ", ".join(f"{c} k={k} {x:.2f}x" for (c, k), x in ratios.items())
    verdict = ("PASS" if max(ratios.values()) <= 1 else "MISS") if judged else "info"
    return f"{verdict:<5} {name}: no more time than {peer}: time ratios {listed}"


# --- HVP part ---------------------------------------------------------------------------------


def hvp_variants(obj: Objective, theta: torch.Tensor) -> dict[str, tuple[Callable, Callable]]:
    """name -> (setup() -> state, product(state, v) -> H v), the same loss for all."""
    x, y = obj.x, obj.y

    def loss(t: torch.Tensor) -> torch.Tensor:
        return obj._chunk_loss(t, x, y)

    def graph_once():
        t = theta.clone().requires_grad_()
        (g,) = torch.autograd.grad(loss(t), t, create_graph=True)
        return t, g

    def double_backward(_, v):
        t, g = graph_once()
        return torch.autograd.grad(g, t, v)[0]

    return {
        "flat.py: vjp(grad) linearized once (library)": (
            lambda: obj.hvp_operator(theta),
            lambda op, v: op(v),
        ),
        "double backward, graph kept (PyHessian's)": (
            graph_once,
            lambda s, v: torch.autograd.grad(s[1], s[0], v, retain_graph=True)[0],
        ),
        "double backward, rebuilt per product": (lambda: None, double_backward),
        "forward-over-reverse: jvp(grad) per product": (
            lambda: None,
            lambda _, v: jvp(grad(loss), (theta,), (v,))[1],
        ),
        "forward-over-reverse: linearize(grad) once": (
            lambda: linearize(grad(loss), theta)[1],
            lambda f, v: f(v),
        ),
        "vjp(grad) without chunk loop": (lambda: vjp(grad(loss), theta)[1], lambda f, v: f(v)[0]),
    }


def hvp_part(rounds: int) -> list[dict]:
    cfg = ModelConfig()  # the quick preset's MLP: one hidden layer of 512
    ds = load_dataset(DataConfig())
    model = build_model(cfg, input_shape=ds.input_shape, n_outputs=ds.n_outputs)
    init_parameters(model, cfg, generator=torch.Generator().manual_seed(0))
    theta = torch.cat([p.detach().flatten() for p in model.parameters()])
    obj = Objective(
        FlatModel(model),
        torch.from_numpy(ds.x_train),
        torch.from_numpy(ds.y_train),
        loss="cross_entropy",
        classification=True,
    )
    v = torch.randn(len(theta), generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # linearize's constant folding warns (torch.fx)
        return _time_variants(hvp_variants(obj, theta), v, rounds, len(theta), obj.n)


def _time_variants(variants: dict, v: torch.Tensor, rounds: int, size: int, n: int) -> list[dict]:
    states, setup, per = {}, {}, {name: [] for name in variants}
    for name, (make, _) in variants.items():
        make()  # untimed: the first torch.func call in a process pays a one-time cost
        t0 = time.perf_counter()
        states[name] = make()
        setup[name] = time.perf_counter() - t0
    ref = variants[next(iter(variants))][1](states[next(iter(variants))], v)
    diffs = {
        name: float((prod(states[name], v) - ref).abs().max() / ref.abs().max())
        for name, (_, prod) in variants.items()
    }  # also the warm-up call
    for _ in range(rounds):  # every variant once per round: load changes hit all alike
        for name, (_, prod) in variants.items():
            t0 = time.perf_counter()
            prod(states[name], v)
            per[name].append(time.perf_counter() - t0)
    print(
        f"\nHessian-vector products: MLP 64-512-10 ({size:,} params), digits ({n:,} examples), "
        f"median of {rounds} interleaved rounds"
    )
    print(
        f"  {'variant':<46} {'setup ms':>9} {'ms/product':>11} {'min ms':>7} {'x library':>9}  "
        "max rel diff"
    )
    base = statistics.median(per[next(iter(variants))])
    out = []
    for name in variants:
        med = statistics.median(per[name])
        print(
            f"  {name:<46} {1e3 * setup[name]:>9.1f} {1e3 * med:>11.2f} "
            f"{1e3 * min(per[name]):>7.2f} {med / base:>8.2f}x  {diffs[name]:.1e}",
            flush=True,
        )
        out.append(
            {
                "variant": name,
                "setup_s": setup[name],
                "median_s": med,
                "min_s": min(per[name]),
                "max_rel_diff": diffs[name],
            }
        )
    return out


# --- driver -----------------------------------------------------------------------------------


def environment() -> dict:
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "pyhessian": pyhessian_module() is not None,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", default="hvp,eigen", help="comma list of: hvp, eigen")
    ap.add_argument("--cases", default="small,26k", help="comma list of: small, 26k")
    ap.add_argument("--ks", default="1,5", help="numbers of top eigenvalues")
    ap.add_argument("--repeats", type=int, default=7, help="timed runs per method (median)")
    ap.add_argument("--rounds", type=int, default=20, help="timed products per HVP variant")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--data-dir", type=Path, default=SHARED_DATA, help="where MNIST is looked for")
    ap.add_argument("--quick", action="store_true", help="1 repeat, 5 rounds: a smoke test")
    ap.add_argument("--json", type=Path, help="also write the results here")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    repeats, rounds = (1, 5) if args.quick else (args.repeats, args.rounds)
    env = environment()
    print("environment:", json.dumps(env))
    methods = ["landscape", "lsc 1e-3"] + (["pyhessian", "pyh 1e-4"] if env["pyhessian"] else [])
    if not env["pyhessian"]:
        print(
            f"pyhessian: skipped, not importable; to include it: {PYHESSIAN_SETUP}, then run "
            "this script with .bench/venv/bin/python"
        )
    result: dict = {"environment": env, "hvp": [], "eigen": []}
    parts = args.parts.split(",")
    if "hvp" in parts:
        result["hvp"] = hvp_part(rounds)
    if "eigen" in parts:
        ks = [int(k) for k in args.ks.split(",")]
        for name in args.cases.split(","):
            p = first_available(CASES[name], args.data_dir)
            result["eigen"] += [vars(r) for r in eigen_case(p, name, ks, methods, repeats)]
        result["goals"] = goals([Row(**r) for r in result["eigen"]])
        print("\n" + "\n".join(result["goals"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
