"""weight_norm against a module's own parameters (the oracle)."""

from __future__ import annotations

import torch
from torch import nn

from landscape.core.layout import Layout
from landscape.measures.weight_norm import weight_norm


def test_weight_norm_is_the_norm_of_all_parameters_of_a_module():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    theta = Layout.of_parameters(net).flatten(dict(net.named_parameters()))
    expected = torch.cat([p.detach().reshape(-1) for p in net.parameters()]).double().norm()
    got = weight_norm(torch.stack([theta, 2 * theta]))
    assert torch.allclose(got, torch.stack([expected, 2 * expected]), rtol=1e-12)
    assert got.dtype == torch.float64
