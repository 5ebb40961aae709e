"""Seed-steps per second: the batched trainer against per-seed loops, K seeds of one config.

For each case and K, three ways do the same work (K runs, the same minibatch indices, one
optimizer step each per call) and are timed on optimizer steps only:

- batched: the library's real path, `StackedEngine` over K stacked models + `StackLoop.step`
  with the trainer's optimizer (`make_optimizer`, fused Adam where the build has it);
- library loop: `ModuleEngine` + `StackLoop.step` for each seed in turn (`batched=False`);
- naive loop: what a user would write, one `nn.Module` and `torch.optim.Adam` per seed.

Rates are seed-steps per second (K * steps / seconds), so ratios compare equal work.

    python bench/train_seeds.py                 # all cases, about 3 min on 2 CPU cores
    python bench/train_seeds.py --quick         # smoke test, a few seconds per case
    python bench/train_seeds.py --cases a,b --ks 1,8 --json /tmp/bench.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from landscape.config import ExperimentConfig, from_dict
from landscape.core.batched import ModuleEngine, StackedEngine
from landscape.core.devices import resolve_device
from landscape.core.loop import LoopData, StackLoop, make_optimizer
from landscape.core.losses import loss_name
from landscape.data import Dataset, build_training_set, load_dataset
from landscape.errors import LandscapeError
from landscape.models import build_model, init_parameters
from landscape.train.trainer import _initial_modules, _order_seed, loop_data, make_schedule

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"  # MNIST for case (d); absent on a user's machine
BUDGET = 512 * 2**20  # bytes; the trainer's default evaluation chunk budget (unused by steps)
POOL = 64  # distinct minibatches cycled through (at least one epoch)


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    config: dict  # overrides of ExperimentConfig defaults, as a nested dict


CASES = {
    "a": Case(
        "a",
        "line net: MLP 1-100x5-1 ReLU, line (100 points), batch 32, MSE, Adam 1e-3",
        {
            "data": {"name": "line"},
            "model": {"widths": [100] * 5, "activation": "relu"},
            "optim": {"lr": 1e-3, "batch_size": 32},
        },
    ),
    "b": Case(
        "b",
        "ring MLP 2-30x8-1 LeakyReLU, ring (5000 points), batch 128, MSE, Adam 1e-3",
        {
            "data": {"name": "ring", "ring_points": 5000, "ring_resolution": 256},
            "model": {"widths": [30] * 8, "activation": "leaky_relu", "init": "kaiming"},
            "optim": {"lr": 1e-3, "batch_size": 128},
        },
    ),
    "c": Case(
        "c",
        "blog ring net 2-30x30-1 LeakyReLU, ring (5000 points), batch 1024, MSE, Adam 1e-3",
        {
            "data": {"name": "ring", "ring_points": 5000, "ring_resolution": 256},
            "model": {"widths": [30] * 30, "activation": "leaky_relu", "init": "kaiming"},
            "optim": {"lr": 1e-3, "batch_size": 1024},
        },
    ),
    "d": Case(
        "d",
        "MLP 784-512-10 ReLU, MNIST (60,000), batch 128, cross-entropy, Adam 1e-3",
        {
            "data": {"name": "mnist"},
            "model": {"widths": [512], "activation": "relu", "init": "xavier_uniform"},
            "optim": {"lr": 1e-3, "batch_size": 128},
        },
    ),
}


@dataclass(frozen=True)
class Goal:
    case: str
    k: int | None  # None: every K measured
    min_ratio: float  # batched / naive seed-steps per second
    cuda_only: bool = False

    def text(self) -> str:
        where = f"K={self.k}" if self.k else "every K"
        device = " on CUDA" if self.cuda_only else ""
        return f"({self.case}) batched >= {self.min_ratio:g}x naive at {where}{device}"


GOALS = (
    Goal("a", 32, 3.0),
    Goal("b", 32, 6.0),
    Goal("c", None, 1.0),
    Goal("d", None, 1.0),
    Goal("d", 64, 20.0, cuda_only=True),
)


@dataclass
class Row:
    k: int
    batched: float  # seed-steps per second, median over repeats
    library_loop: float
    naive_loop: float
    steps: dict[str, int] = field(default_factory=dict)  # timed steps per seed, per way
    rates: dict[str, list[float]] = field(default_factory=dict)  # every repeat's rate

    @property
    def vs_naive(self) -> float:
        return self.batched / self.naive_loop

    @property
    def vs_library(self) -> float:
        return self.batched / self.library_loop


# --- one step of each way -------------------------------------------------------------------

StepFn = Callable[[int], None]  # step(i): one optimizer step on minibatch i of the pool


@dataclass
class Problem:
    """One case on one device: its config, the data on the device, and minibatch pools."""

    cfg: ExperimentConfig
    ds: Dataset
    data: LoopData
    loss: str
    pools: dict[int, list[torch.Tensor]] = field(default_factory=dict)  # K -> [(K, B)]

    def pool(self, k: int) -> list[torch.Tensor]:
        """Minibatch indices (K, B) as the trainer makes them: a randperm per run per epoch."""
        if k not in self.pools:
            n = self.data.x.shape[0]
            sched = make_schedule(self.cfg, n)
            seeds = [self.cfg.train.seed + j for j in range(k)]
            gens = [torch.Generator().manual_seed(_order_seed(s, "normal")) for s in seeds]
            batches: list[torch.Tensor] = []
            while len(batches) < max(POOL, sched.steps_per_epoch):
                perms = torch.stack([torch.randperm(n, generator=g) for g in gens])
                perms = perms.to(self.data.x.device)
                for b in range(sched.steps_per_epoch):
                    batches.append(perms[:, b * sched.batch_size : (b + 1) * sched.batch_size])
            self.pools = {k: batches}  # keep one K at a time
        return self.pools[k]

    def loop(self, engine: StackedEngine | ModuleEngine) -> StackLoop:
        sched = make_schedule(self.cfg, self.data.x.shape[0])
        classification = self.ds.task == "classification"
        return StackLoop(engine, self.data, sched, self.loss, classification, BUDGET)


VMAP_K1 = False  # set by --vmap-k1


def batched_steps(p: Problem, k: int, device: torch.device) -> list[tuple[StepFn, int]]:
    """One step function doing K seed-steps: the trainer's batched path.

    As in `landscape train`, a group of one run trains as a plain module (vmap at K = 1 only
    adds overhead); `--vmap-k1` measures the stacked engine at K = 1 instead.
    """
    if k == 1 and not VMAP_K1:
        return library_loop_steps(p, k, device)
    template = build_model(p.cfg.model, input_shape=p.ds.input_shape, n_outputs=p.ds.n_outputs)
    engine = StackedEngine(template, _initial_modules(p.cfg, p.ds, list(range(k))), device)
    loop, opt, pool = p.loop(engine), make_optimizer(p.cfg.optim, engine.parameters()), p.pool(k)

    def step(i: int) -> None:
        loop.step(i, pool[i % len(pool)], opt)

    return [(step, k)]


def library_loop_steps(p: Problem, k: int, device: torch.device) -> list[tuple[StepFn, int]]:
    """K step functions of one seed-step each: the trainer's `batched=False` path."""
    pool, fns = p.pool(k), []
    for j, module in enumerate(_initial_modules(p.cfg, p.ds, list(range(k)))):
        engine = ModuleEngine(module, device)
        loop, opt = p.loop(engine), make_optimizer(p.cfg.optim, engine.parameters())
        mine = [idx[j : j + 1] for idx in pool]  # (1, B)

        def step(
            i: int, loop: StackLoop = loop, opt: torch.optim.Optimizer = opt, mine=mine
        ) -> None:
            loop.step(i, mine[i % len(mine)], opt)

        fns.append((step, 1))
    return fns


def naive_loop_steps(p: Problem, k: int, device: torch.device) -> list[tuple[StepFn, int]]:
    """K step functions of one seed-step each: a plain PyTorch loop, default Adam."""
    pool, fns = p.pool(k), []
    x, y = p.data.x, p.data.y
    loss_fn = nn.functional.cross_entropy if p.loss == "cross_entropy" else nn.functional.mse_loss
    for j in range(k):
        model = build_model(p.cfg.model, input_shape=p.ds.input_shape, n_outputs=p.ds.n_outputs)
        seed = torch.Generator().manual_seed(p.cfg.train.seed + j)  # as the trainer's run j
        init_parameters(model, p.cfg.model, generator=seed)
        model.to(device).train()
        opt = torch.optim.Adam(model.parameters(), lr=p.cfg.optim.lr)
        mine = [idx[j] for idx in pool]  # (B,)

        def step(i: int, model: nn.Module = model, opt=opt, mine=mine) -> None:
            idx = mine[i % len(mine)]
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

        fns.append((step, 1))
    return fns


WAYS = {
    "batched": batched_steps,
    "library_loop": library_loop_steps,
    "naive_loop": naive_loop_steps,
}


# --- timing ---------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _sweep(fns: list[tuple[StepFn, int]], start: int, n: int, device: torch.device) -> float:
    """Seconds for `n` steps of every step function in turn (seed after seed)."""
    _sync(device)
    t0 = time.perf_counter()
    for fn, _ in fns:
        for i in range(start, start + n):
            fn(i)
    _sync(device)
    return time.perf_counter() - t0


def _size(fns: list[tuple[StepFn, int]], device: torch.device, seconds: float) -> int:
    """Warm up (two untimed steps per function: Adam state, allocator, vmap), then time a
    third to pick the steps per function that make a sweep last about `seconds`."""
    _sweep(fns, 0, 2, device)
    per_call = _sweep(fns, 2, 1, device) / len(fns)
    return max(2, math.ceil(seconds / (per_call * len(fns))))


def measure_row(p: Problem, k: int, device: torch.device, args: argparse.Namespace) -> Row:
    """Median seed-steps/s of each way over `args.repeats` sweeps of each.

    The ways take turns within every repeat (batched, library loop, naive loop, batched, ...),
    so a change in machine load between repeats hits all three alike.
    """
    fns = {way: build(p, k, device) for way, build in WAYS.items()}
    per_sweep = args.seconds / args.repeats
    n = {way: _size(f, device, per_sweep) for way, f in fns.items()}
    rates: dict[str, list[float]] = {way: [] for way in fns}
    for r in range(args.repeats):
        for way, f in fns.items():
            seed_steps = sum(s for _, s in f) * n[way]
            rates[way].append(seed_steps / _sweep(f, 3 + r * n[way], n[way], device))
    med = {way: statistics.median(v) for way, v in rates.items()}
    steps = {way: n[way] * args.repeats for way in fns}
    return Row(k, med["batched"], med["library_loop"], med["naive_loop"], steps, rates)


# --- cases, goals, output -------------------------------------------------------------------


def load_problem(case: Case, device: torch.device, data_dir: Path) -> Problem:
    """The case's config, dataset and training set on `device`; raises DataError if absent."""
    cfg = from_dict(case.config)
    ds = load_dataset(cfg.data, data_dir=data_dir, offline=True)
    data = loop_data(ds, build_training_set(ds, "normal"), device)
    return Problem(cfg, ds, data, loss_name(cfg, ds))


def n_params(p: Problem) -> int:
    model = build_model(p.cfg.model, input_shape=p.ds.input_shape, n_outputs=p.ds.n_outputs)
    return sum(t.numel() for t in model.parameters())


def print_header() -> None:
    head = f"{'K':>4} {'batched/s':>11} {'lib-loop/s':>11} {'naive/s':>11}"
    print(f"  {head} {'x naive':>8} {'x lib-loop':>10}  timed steps/seed (b, lib, naive)")


def print_row(r: Row) -> None:
    s = r.steps
    counts = f"{s['batched']}, {s['library_loop']}, {s['naive_loop']}"
    print(
        f"  {r.k:>4} {r.batched:>11.1f} {r.library_loop:>11.1f} {r.naive_loop:>11.1f} "
        f"{r.vs_naive:>7.2f}x {r.vs_library:>9.2f}x  {counts}",
        flush=True,
    )


def judge(goal: Goal, results: dict[str, list[Row]], device: torch.device) -> tuple[str, str]:
    """(PASS | MISS | n/a, the measured ratio(s) or why not measured)."""
    if goal.cuda_only and device.type != "cuda":
        return "n/a", "not a CUDA run"
    rows = [r for r in results.get(goal.case, []) if goal.k is None or r.k == goal.k]
    if not rows:
        return "n/a", "not measured (case skipped or K not in --ks)"
    worst = min(rows, key=lambda r: r.vs_naive)
    verdict = "PASS" if worst.vs_naive >= goal.min_ratio else "MISS"
    return verdict, f"{worst.vs_naive:.2f}x (K={worst.k})"


def environment(device: torch.device) -> dict:
    env = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cases", default="a,b,c,d", help="comma-separated subset of a,b,c,d")
    ap.add_argument("--ks", default=None, help="seeds per stack; default 1,8,32 (+64 on CUDA)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--seconds", type=float, default=4.0, help="timed seconds per way and K")
    ap.add_argument("--repeats", type=int, default=5, help="timed sweeps; the median is reported")
    ap.add_argument("--quick", action="store_true", help="smoke test: 0.2 s per measurement")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0: torch's default")
    ap.add_argument("--data-dir", type=Path, default=SHARED_DATA, help="where MNIST is looked for")
    ap.add_argument("--vmap-k1", action="store_true", help="stacked engine even at K = 1")
    args = ap.parse_args(argv)
    unknown = set(args.cases.split(",")) - set(CASES)
    if unknown:
        ap.error(f"--cases: unknown {sorted(unknown)}; allowed: {', '.join(CASES)}")
    if args.ks is not None and not all(k.isdigit() and int(k) > 0 for k in args.ks.split(",")):
        ap.error(f"--ks: expected positive integers separated by commas (1,8,32); got {args.ks}")
    if args.quick:
        args.seconds, args.repeats = 0.2, 1
    return args


def run_case(
    case: Case, ks: list[int], device: torch.device, args: argparse.Namespace
) -> list[Row] | str:
    """The case's rows, or why it was skipped."""
    try:
        p = load_problem(case, device, args.data_dir)
    except LandscapeError as e:
        return str(e)
    load = os.getloadavg()[0]
    print(f"({case.name}) {case.title}; {n_params(p):,} parameters; load {load:.2f}", flush=True)
    print_header()
    rows = []
    for k in ks:
        rows.append(measure_row(p, k, device, args))
        print_row(rows[-1])
    return rows


def main(argv: list[str] | None = None) -> int:
    global VMAP_K1
    args = parse_args(argv)
    VMAP_K1 = args.vmap_k1
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    default_ks = "1,8,32,64" if device.type == "cuda" else "1,8,32"
    ks = [int(k) for k in (args.ks or default_ks).split(",")]
    env = environment(device)
    print("train_seeds: " + ", ".join(f"{k} {v}" for k, v in env.items()))
    print(f"rates are seed-steps/s (K x steps / s), median of {args.repeats} timed sweeps")
    if env["load_avg_1min"] > (env["cpus"] or 1):
        print("warning: other processes are using the CPU; expect noisy rates and ratios")
    print()
    started = time.perf_counter()
    results: dict[str, list[Row]] = {}
    skipped: dict[str, str] = {}
    for name in args.cases.split(","):
        out = run_case(CASES[name], ks, device, args)
        if isinstance(out, str):
            skipped[name] = out
            print(f"({name}) skipped: {out}\n")
        else:
            results[name] = out
            print()
    print("goals (batched vs naive loop):")
    verdicts = []
    for goal in GOALS:
        verdict, measured = judge(goal, results, device)
        verdicts.append({"goal": goal.text(), "verdict": verdict, "measured": measured})
        print(f"  {verdict:<4}  {goal.text():<45} {measured}")
    elapsed = time.perf_counter() - started
    print(f"\ntotal {elapsed:.0f} s, load average now {os.getloadavg()[0]:.2f}")
    if args.json:
        write_json(args.json, env, results, skipped, verdicts, args)
    return 0


def write_json(path: Path, env: dict, results, skipped, verdicts, args) -> None:
    def row(r: Row) -> dict:
        return asdict(r) | {"vs_naive": r.vs_naive, "vs_library": r.vs_library}

    cases = {
        name: {"title": CASES[name].title, "config": CASES[name].config}
        | {"rows": [row(r) for r in rows]}
        for name, rows in results.items()
    }
    doc = {
        "environment": env,
        "seconds": args.seconds,
        "repeats": args.repeats,
        "units": "seed-steps per second",
        "cases": cases,
        "skipped": skipped,
        "goals": verdicts,
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
