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
| `max diff` | largest difference of any logged number (loss, accuracy, gradient norm, distance) |

The points are the overfit runs of the quick preset (digits, MLP 64-512-10, 4 seeds), trained
once into .bench/restart/ (about a minute), or of `--store`. Each way runs `--repeats` times
(default 3), alternating, and the table shows the median.

    python bench/restart.py                       # ~3 min on 2 quiet cores
    python bench/restart.py --recipes adam-full --repeats 1
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from landscape.config import resolve_config
from landscape.measures.restart import RECIPES, RestartResult, recipe, restart, restart_stack
from landscape.measures.runs import Experiment
from landscape.train.experiment import train_experiment

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".bench" / "restart" / "quick.h5"
LOGGED = ("train_loss", "train_acc", "test_loss", "test_acc", "grad_norm", "dist_moved")


def store(path: Path | None) -> Path:
    if path is not None:
        return path
    if not CACHE.exists():
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        train_experiment(resolve_config(preset="quick"), CACHE)
    return CACHE


def both_ways(exp: Experiment, runs: list[str], name: str) -> tuple[float, float, float]:
    """(seconds as one stack, seconds one by one, largest difference of a logged number)."""
    train, test = exp.objective("train"), exp.objective("test")
    starts = torch.stack([exp.run(r).final for r in runs])
    inits = torch.stack([exp.run(r).init for r in runs])

    def gens() -> list[torch.Generator]:
        return [torch.Generator().manual_seed(k) for k in range(len(runs))]

    t = time.perf_counter()
    stack = restart_stack(train, test, starts, inits, recipe(name), generators=gens())
    t_stack = time.perf_counter() - t
    t = time.perf_counter()
    alone = [
        restart(train, test, s, i, recipe(name), generator=g)
        for s, i, g in zip(starts, inits, gens(), strict=True)
    ]
    t_alone = time.perf_counter() - t
    return t_stack, t_alone, _max_diff(stack, alone)


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
    print(f"{'recipe':<11}{'stack/s':>9}{'alone/s':>9}{'x alone':>9}{'max diff':>11}")
    for name in args.recipes:
        rows = [both_ways(exp, runs, name) for _ in range(args.repeats)]
        t_stack = statistics.median(r[0] for r in rows)
        t_alone = statistics.median(r[1] for r in rows)
        diff = max(r[2] for r in rows)
        print(f"{name:<11}{t_stack:>9.2f}{t_alone:>9.2f}{t_alone / t_stack:>9.2f}{diff:>11.2e}")


if __name__ == "__main__":
    main()
