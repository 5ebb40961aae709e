"""Restarts from K overfit points: trained together as one stack against one after another.

`landscape analyze` restarts every overfit run of a store with each recipe (SGD on the clean
training set, full-batch Adam); since the one-training-loop change the K restarts of a recipe
are one stack (`restart.restart_stack`, the trainer's loop over a `FlatEngine`) instead of K
small loops. This times both ways on the same K stored points with the same recipe and
generators, and checks they give the same numbers:

| column | what runs |
|---|---|
| `stack/s` | `restart_stack` of the K points at once (what `landscape analyze` runs) |
| `alone/s` | `restart` of each point in turn (a stack of one each: the pre-change way) |
| `x alone` | `alone/s` / `stack/s`: above 1, the stack wins (the issue's target: >= 3 at K = 4) |
| `log/s` | seconds spent logging, stack / alone (`StackLoop.record`) |
| `x steps` | the ratio of the training steps alone (seconds less logging) |
| `% peak` | the stack's steps against a float32 matmul timed in the same run (below) |

Logging is the full-dataset loss, accuracy and gradient at the log steps. `% peak` counts
6 x (weights) x examples FLOPs per point-step (the forward and backward matmuls of an MLP)
against a 2048 x 2048 float32 matmul.
| `max diff` | largest difference of any logged number (loss, accuracy, gradient norm, distance) |

The points are the overfit runs of the quick preset (digits, MLP 64-512-10, 4 seeds), trained
once into .bench/restart/ (about a minute), or of `--store`. Each way runs `--repeats` times
(default 3), alternating, and the table shows the median.

    python bench/restart.py                       # ~3 min on 2 quiet cores
    python bench/restart.py --recipes adam-full --repeats 1
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from landscape.config import resolve_config
from landscape.core.loop import StackLoop
from landscape.measures.restart import RECIPES, RestartResult, recipe, restart, restart_stack
from landscape.measures.runs import Experiment
from landscape.train.experiment import train_experiment

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = (9, 9, 9, 14, 9, 8, 11)
CACHE = ROOT / ".bench" / "restart" / "quick.h5"
LOGGED = ("train_loss", "train_acc", "test_loss", "test_acc", "grad_norm", "dist_moved")


def store(path: Path | None) -> Path:
    if path is not None:
        return path
    if not CACHE.exists():
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        train_experiment(resolve_config(preset="quick"), CACHE)
    return CACHE


class LogClock:
    """Seconds spent in `StackLoop.record` (the loop's logging) while installed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._record = StackLoop.record

    def __enter__(self) -> LogClock:
        original, clock = self._record, self

        def timed(loop: StackLoop, step: int) -> None:
            t = time.perf_counter()
            original(loop, step)
            clock.seconds += time.perf_counter() - t

        StackLoop.record = timed  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        StackLoop.record = self._record  # type: ignore[method-assign]


def both_ways(exp: Experiment, runs: list[str], name: str) -> tuple[float, ...]:
    """Seconds as one stack and its logging, seconds one by one and its logging, and the
    largest difference of a logged number."""
    train, test = exp.objective("train"), exp.objective("test")
    starts = torch.stack([exp.run(r).final for r in runs])
    inits = torch.stack([exp.run(r).init for r in runs])

    def gens() -> list[torch.Generator]:
        return [torch.Generator().manual_seed(k) for k in range(len(runs))]

    with LogClock() as log_stack:
        t = time.perf_counter()
        stack = restart_stack(train, test, starts, inits, recipe(name), generators=gens())
        t_stack = time.perf_counter() - t
    with LogClock() as log_alone:
        t = time.perf_counter()
        alone = [
            restart(train, test, s, i, recipe(name), generator=g)
            for s, i, g in zip(starts, inits, gens(), strict=True)
        ]
        t_alone = time.perf_counter() - t
    diff = _max_diff(stack, alone)
    return t_stack, log_stack.seconds, t_alone, log_alone.seconds, diff


def matmul_rate(size: int = 2048, tries: int = 3) -> float:
    """FLOP/s of a float32 (size x size) @ (size x size) matmul, median of `tries`."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(size, size, generator=gen), torch.randn(size, size, generator=gen)
    (a @ b).sum().item()
    times = []
    for _ in range(tries):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * size**3 / statistics.median(times)


def step_flops(exp: Experiment, name: str, k: int) -> float:
    """Matmul FLOPs of the recipe's training steps for k points: 6 x weights x examples."""
    weights = sum(e.numel for e in exp.layout.entries if len(e.shape) >= 2)
    r = recipe(name)
    n = len(exp.dataset.x_train)
    batch = min(r.batch_size or n, n)
    steps = r.steps or r.epochs * -(-n // batch)
    return 6.0 * weights * batch * steps * k


def _max_diff(a: list[RestartResult], b: list[RestartResult]) -> float:
    return max(
        float(np.abs(getattr(x, f) - getattr(y, f)).max())
        for x, y in zip(a, b, strict=True)
        for f in LOGGED
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--store", type=Path, help="a train store (default: the quick preset's)")
    ap.add_argument("--recipes", nargs="+", default=["sgd", "adam-full"], choices=list(RECIPES))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    exp = Experiment(store(args.store))
    runs = [r for r in exp.run_ids if exp.run(r).mode == "overfit"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}")
    print(f"{exp.path}: K = {len(runs)} overfit runs, {exp.layout.size:,} parameters")
    peak = matmul_rate()
    print(f"matmul peak {peak / 1e9:.1f} GFLOP/s; load {os.getloadavg()[0]:.2f}")
    head = ("recipe", "stack/s", "alone/s", "x alone", "log/s", "x steps", "% peak", "max diff")
    print(f"{head[0]:<11}" + "".join(f"{h:>{w}}" for h, w in zip(head[1:], WIDTHS, strict=True)))
    for name in args.recipes:
        rows = [both_ways(exp, runs, name) for _ in range(args.repeats)]
        ts, ls, ta, la = (statistics.median(r[i] for r in rows) for i in range(4))
        diff = max(r[4] for r in rows)
        frac = step_flops(exp, name, len(runs)) / (ts - ls) / peak
        cells = (f"{ts:.2f}", f"{ta:.2f}", f"{ta / ts:.2f}", f"{ls:.2f} / {la:.2f}",
                 f"{(ta - la) / (ts - ls):.2f}", f"{100 * frac:.0f}%", f"{diff:.2e}")  # fmt: skip
        print(f"{name:<11}" + "".join(f"{c:>{w}}" for c, w in zip(cells, WIDTHS, strict=True)))


if __name__ == "__main__":
    main()
