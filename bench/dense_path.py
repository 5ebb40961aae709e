"""`Objective.evaluate` on plain MLPs: the dense path against the vmap and loop paths.

The evidence behind `objective.stack_path` (from what forward size the fused forward of
`landscape.core.dense` beats one vmapped call) and `dense.DENSE_BLOCK_BYTES` /
`dense.DENSE_GROUP_WIDTH` (its row blocks and point groups). For each net, K points (a row of
a plane: theta plus random offsets) are evaluated (loss and accuracy, or MSE for regression)
with each path forced, `--repeats` times in turns; printed: milliseconds per point (median),
matmul GFLOP/s, each path's speed over vmap's, the path `auto` picks, and the largest relative
difference of the dense path's losses from the loop path's. The inputs are random (timing does
not depend on the values, except through the loss); the weights are PyTorch's default init.

    python bench/dense_path.py                               # all nets, ~1 min on 2 cores
    python bench/dense_path.py --threads 1 --clock cpu       # on a CPU shared with other jobs
    python bench/dense_path.py --nets quick,mnist --paths dense --block-bytes 524288,1048576,2097152
    python bench/dense_path.py --nets mnist --paths dense --group-width 128,512,2048

`--block-bytes` and `--group-width` (comma lists) time the dense path at each value of the
constants (their product; the other paths once); the results are in bench/SURFACE.md.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable

import torch
from torch import nn

from landscape.core import dense
from landscape.core.flat import FlatModel
from landscape.core.objective import Objective

CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def mlp(sizes: list[int], act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in itertools.pairwise(sizes[:-1]):
        layers += [nn.Linear(a, b), act()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


# name: (layer sizes, activation, examples, classification)
NETS: dict[str, tuple[list[int], type[nn.Module], int, bool]] = {
    "tiny": ([2, 16, 2], nn.ReLU, 64, True),
    "line": ([1, 100, 100, 100, 100, 100, 1], nn.ReLU, 100, False),
    "quick-100": ([64, 512, 10], nn.ReLU, 100, True),
    "quick-400": ([64, 512, 10], nn.ReLU, 400, True),
    "quick": ([64, 512, 10], nn.ReLU, 1297, True),
    "digits": ([64, 350, 10], nn.ReLU, 1297, True),
    "mnist": ([784, 32, 10], nn.ReLU, 2000, True),
    "ring": ([2, *[30] * 8, 1], nn.LeakyReLU, 5000, False),
    "wide": ([64, 2048, 10], nn.ReLU, 1297, True),
    "deep": ([64, 256, 256, 256, 10], nn.Tanh, 1297, True),
}


def problem(name: str, k: int) -> tuple[FlatModel, torch.Tensor, torch.Tensor, torch.Tensor, bool]:
    sizes, act, n, classification = NETS[name]
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = FlatModel(mlp(sizes, act))
    x = torch.randn(n, sizes[0], generator=gen)
    y = (
        torch.randint(0, sizes[-1], (n,), generator=gen)
        if classification
        else torch.randn(n, sizes[-1], generator=gen)
    )
    theta = torch.cat([p.detach().flatten() for p in model.template.parameters()])
    thetas = theta + 0.1 * theta.abs().mean() * torch.randn(k, len(theta), generator=gen)
    return model, x, y, thetas, classification


def flops(name: str) -> int:
    sizes, _, n, _ = NETS[name]
    return 2 * n * sum(a * b for a, b in itertools.pairwise(sizes))


def evaluate(objective: Objective, thetas: torch.Tensor, block: int, width: int) -> object:
    """One evaluate call, the dense path's constants set first (0: the library's)."""
    dense.DENSE_BLOCK_BYTES = block or DEFAULTS[0]
    dense.DENSE_GROUP_WIDTH = width or DEFAULTS[1]
    return objective.evaluate(thetas)


DEFAULTS = (dense.DENSE_BLOCK_BYTES, dense.DENSE_GROUP_WIDTH)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--nets", default=",".join(NETS))
    ap.add_argument("--paths", default="vmap,loop,dense")
    ap.add_argument("--points", type=int, default=51, help="K points per evaluate call")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    ap.add_argument("--clock", choices=tuple(CLOCKS), default="wall")
    ap.add_argument("--block-bytes", default=str(dense.DENSE_BLOCK_BYTES))
    ap.add_argument("--group-width", default=str(dense.DENSE_GROUP_WIDTH))
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu" and torch.get_num_threads() != 1:
        print("--clock cpu: only meaningful with --threads 1 (it sums all threads)")
        return 2
    clock = CLOCKS[args.clock]
    paths = args.paths.split(",")
    settings = [
        (int(b), int(w)) for b in args.block_bytes.split(",") for w in args.group_width.split(",")
    ]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.clock} clock, "
        f"K={args.points}, load {os.getloadavg()[0]:.2f}"
    )
    print(f"  {'net':<10} {'path':<22} {'ms/point':>9} {'GFLOP/s':>8} {'x vmap':>7}  auto")
    for name in args.nets.split(","):
        model, x, y, thetas, classification = problem(name, args.points)
        loss = "cross_entropy" if classification else "mse"
        auto = Objective(model, x, y, loss=loss, classification=classification).path
        runs: dict[str, Callable[[], object]] = {}
        for path in paths:
            for block, width in settings if path == "dense" else [(0, 0)]:
                label = path
                if path == "dense" and len(settings) > 1:
                    label = f"dense {block >> 10}K w{width}"
                runs[label] = functools.partial(
                    evaluate,
                    Objective(model, x, y, loss=loss, classification=classification, path=path),
                    thetas,
                    block,
                    width,
                )
        seconds: dict[str, list[float]] = {label: [] for label in runs}
        results = {label: fn() for label, fn in runs.items()}  # untimed warm-up
        labels = list(runs)
        for r in range(args.repeats):
            for label in labels[r % len(labels) :] + labels[: r % len(labels)]:
                t0 = clock()
                runs[label]()
                seconds[label].append(clock() - t0)
        ms = {label: statistics.median(s) / args.points * 1e3 for label, s in seconds.items()}
        for label in labels:
            x_vmap = f"{ms['vmap'] / ms[label]:.2f}x" if "vmap" in ms else "-"
            gflops = flops(name) / ms[label] / 1e6
            mark = auto if label == labels[0] else ""
            print(f"  {name:<10} {label:<22} {ms[label]:>9.3f} {gflops:>8.1f} {x_vmap:>7}  {mark}")
        if "loop" in results:
            ref = results["loop"].loss  # type: ignore[attr-defined]
            for label in labels:
                if label.startswith("dense"):
                    got = results[label].loss  # type: ignore[attr-defined]
                    rel = float(((got - ref).abs() / ref.abs()).max())
                    print(f"  {name:<10} {label} vs loop: max rel diff of loss {rel:.1e}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
