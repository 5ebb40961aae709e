"""The trainer's minibatch orders: prefetched on a thread, they are the ones drawn in turn."""

import pytest
import torch

from landscape.core.orders import EpochOrders, draw


def gens(k=3, seed=0):
    return [torch.Generator().manual_seed(seed + j) for j in range(k)]


def sequential(k, n, epochs):
    g = gens(k)
    return [draw(g, n) for _ in range(epochs)]


@pytest.mark.parametrize("prefetch", [None, True, False])
def test_orders_are_the_sequential_draws_on_any_path(device, prefetch):
    expected = sequential(3, 1000, 4)
    with EpochOrders(gens(3), 1000, device, 4, prefetch=prefetch) as orders:
        got = [orders.next() for _ in range(4)]
        with pytest.raises(RuntimeError, match="all 4 epochs"):
            orders.next()
    for e, g in zip(expected, got, strict=True):
        assert g.device.type == device.type and g.shape == (3, 1000)
        assert torch.equal(g.cpu(), e)


def test_prefetch_draws_no_more_than_the_epochs_and_stops_early():
    g = gens(2)
    with EpochOrders(g, 50, torch.device("cpu"), 2, prefetch=True) as orders:
        orders.next()
    # the thread drew epochs 1 and 2 only: the generators' next draw is epoch 3's
    assert torch.equal(draw(g, 50), sequential(2, 50, 3)[2])
