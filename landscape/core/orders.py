"""The minibatch orders of the trainer: one permutation per run per epoch, on the device.

Each run draws its epoch's order with `torch.randperm` from its own CPU generator, so a seed
gives the same orders on any device. For 200 runs of an overfit MNIST epoch (130,000 examples)
that is 200 permutations and a 200 MB host-to-device copy per epoch: done between two epochs it
leaves the GPU idle meanwhile (tens of milliseconds per permutation on a busy CPU). On CUDA
the next epoch's orders are therefore drawn on a background thread while the GPU trains
(`torch.randperm` releases the GIL), in pinned memory, and copied without blocking. Each
generator still draws the same permutations in the same order, so the orders, and the stored
numbers, are those of drawing them in turn; on a CPU they are drawn in turn, as before.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import torch


def draw(gens: list[torch.Generator], n: int, *, pin: bool = False) -> torch.Tensor:
    """(K, n) int64 on the CPU: one permutation of range(n) from each generator, in turn."""
    perms = torch.stack([torch.randperm(n, generator=g) for g in gens])
    return perms.pin_memory() if pin else perms


class EpochOrders:
    """`next()` returns the (K, n) orders of the next epoch on `device`, `epochs` times.

    `prefetch` (default: on CUDA only) draws epoch e + 1 on a background thread as soon as
    epoch e is handed out; never more than `epochs` epochs are drawn. Use as a context
    manager (the thread is joined on exit, e.g. when training stops early).
    """

    def __init__(
        self,
        gens: list[torch.Generator],
        n: int,
        device: torch.device,
        epochs: int,
        *,
        prefetch: bool | None = None,
    ):
        self.gens, self.n, self.device = gens, n, device
        self.epochs = self.left = epochs
        self.prefetch = device.type == "cuda" if prefetch is None else prefetch
        self.pool = ThreadPoolExecutor(max_workers=1) if self.prefetch else None
        self.pending: Future[torch.Tensor] | None = None
        self._submit()

    def _submit(self) -> None:
        if self.pool is not None and self.left > 0:
            pin = self.device.type == "cuda"
            self.pending = self.pool.submit(draw, self.gens, self.n, pin=pin)

    def next(self) -> torch.Tensor:
        if self.left <= 0:
            raise RuntimeError(f"EpochOrders: all {self.epochs} epochs were handed out already")
        self.left -= 1
        if self.pending is None:  # drawn in turn, here and now
            return draw(self.gens, self.n).to(self.device)
        perms = self.pending.result()
        self._submit()  # the generators are the thread's alone until it is done
        # pinned source: the copy runs on the current stream, after the queued steps
        return perms.to(self.device, non_blocking=True)

    def __enter__(self) -> EpochOrders:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)  # at most the one epoch in flight
