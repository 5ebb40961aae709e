"""The stacked cross-entropy: `batched.cross_entropy` against `nn.functional.cross_entropy`.

All compute the mean cross-entropy per stack member, logits (K, B, C) and labels (K, B) ->
(K,): `reference` is the former implementation (`nn.functional.cross_entropy` on the
(K * B, C) reshape, `reduction="none"`, then the mean over B); `shifted` is
`batched.shifted_cross_entropy`, (m - z_y) + log sum exp(z - m) with no log-probabilities
written; `library` is `batched.cross_entropy`, which takes `shifted` without autograd up to
`SHIFTED_MAX_CLASSES` classes and `reference` otherwise (so its fwd+bwd rows are the
reference's code, and their ratio shows the run's noise). Shapes are those the toolkit meets: a
51-point row of the quick preset's digits plane (51, 1297, 10), a 21-point row on 2,000
MNIST images, a training step of 32 seeds (32, 128, 10), one point (1, 1297, 10), and the
grokking preset's 97 classes. Forward alone (`no_grad`, as the surfaces run) and forward +
backward (as training and gradients run) are timed in turns (the order alternates), median
of `--repeats`. Printed: the three medians, the ratios reference / shifted and reference /
library (above 1: faster than the reference), and the largest relative difference of the
library's values (without autograd) from the reference's.

    python bench/cross_entropy.py                 # about 20 s on 2 cores
    python bench/cross_entropy.py --threads 1 --repeats 51
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import torch
from torch import nn

from landscape.core.batched import cross_entropy, shifted_cross_entropy

SHAPES = ((51, 1297, 10), (21, 2000, 10), (32, 128, 10), (1, 1297, 10), (8, 512, 97), (1, 2000, 97))


def reference(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The former `batched.cross_entropy`: log_softmax through nn.functional.cross_entropy."""
    k, b, c = logits.shape
    per = nn.functional.cross_entropy(logits.reshape(k * b, c), y.reshape(k * b), reduction="none")
    return per.reshape(k, b).mean(dim=1)


def forward(fn: Callable, z: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            fn(z, y)

    return run


def backward(fn: Callable, z: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    leaf = z.clone().requires_grad_()

    def run() -> None:
        torch.autograd.grad(fn(leaf, y).sum(), leaf)

    return run


def median_seconds(fns: list[Callable[[], None]], repeats: int, inner: int) -> list[float]:
    times: list[list[float]] = [[] for _ in fns]
    for fn in fns:  # untimed warm-up
        fn()
    for r in range(repeats):
        order = list(range(len(fns)))[:: 1 if r % 2 == 0 else -1]
        for i in order:
            t0 = time.perf_counter()
            for _ in range(inner):
                fns[i]()
            times[i].append((time.perf_counter() - t0) / inner)
    return [statistics.median(t) for t in times]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--repeats", type=int, default=21, help="timed turns per way (median)")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"cross_entropy: torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"  {'K, B, C':<16} {'pass':<9} {'reference ms':>12} {'shifted ms':>11} "
        f"{'library ms':>11} {'x shifted':>10} {'x library':>10} {'max rel diff':>13}"
    )
    gen = torch.Generator().manual_seed(0)
    for k, b, c in SHAPES:
        z = 4 * torch.randn(k, b, c, generator=gen)
        y = torch.randint(0, c, (k, b), generator=gen)
        with torch.no_grad():  # where the library takes the shifted formula
            diff = ((cross_entropy(z, y) - reference(z, y)).abs() / reference(z, y).abs()).max()
        inner = max(1, 200_000 // (k * b * c) * 10)
        for name, make in (("forward", forward), ("fwd+bwd", backward)):
            fns = [make(f, z, y) for f in (reference, shifted_cross_entropy, cross_entropy)]
            ref_s, shift_s, lib_s = median_seconds(fns, args.repeats, inner)
            print(
                f"  {f'{k}, {b}, {c}':<16} {name:<9} {1e3 * ref_s:>12.3f} {1e3 * shift_s:>11.3f} "
                f"{1e3 * lib_s:>11.3f} {ref_s / shift_s:>9.2f}x {ref_s / lib_s:>9.2f}x "
                f"{float(diff):>13.1e}"
            )
    print(f"load average now {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
