"""Oracle tests of per-layer curvature: block-diagonal quadratics with known block spectra."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from landscape.core.flat import FlatModel
from landscape.core.layout import Layout
from landscape.core.objective import Objective
from landscape.errors import ConfigError
from landscape.measures.curvature import hessian_matrix
from landscape.measures.layer_curvature import (
    BlockProduct,
    blocks_of,
    layer_curvature,
    module_blocks,
    prefix_blocks,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rotated(eigenvalues: list[float], seed: int) -> torch.Tensor:
    n = len(eigenvalues)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen(seed), dtype=torch.float64))
    return q @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ q.T


@pytest.fixture(scope="module")
def layout() -> Layout:
    """Linear(8, 6) then Linear(6, 3): blocks '0' (54 parameters) and '2' (21)."""
    return Layout.of_parameters(nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3)))


@pytest.fixture(scope="module")
def spectra() -> dict[str, list[float]]:
    return {
        "0": [9.0, 4.0, -1.0] + [0.5] * 51,
        "2": [30.0, 2.0] + [0.1 * i for i in range(19)],
    }


@pytest.fixture(scope="module")
def block_diagonal(layout, spectra) -> torch.Tensor:
    """H of a loss that separates across the two layers: block-diagonal, known blocks."""
    h = torch.zeros(layout.size, layout.size, dtype=torch.float64)
    for block, seed in zip(module_blocks(layout), (1, 2), strict=True):
        i = block.index
        h[i[:, None], i] = rotated(spectra[block.name], seed)
    return h


def test_module_blocks_group_a_layers_weight_and_bias(layout):
    blocks = module_blocks(layout)
    assert [b.name for b in blocks] == ["0", "2"]
    assert blocks[0].index.tolist() == list(range(54)) and len(blocks[1].index) == 21
    assert blocks_of(layout, ("modules",))[1].name == "2"


def test_block_eigenvalues_and_traces_are_the_known_ones(block_diagonal, spectra, layout):
    r = layer_curvature(
        lambda v: block_diagonal @ v,
        module_blocks(layout),
        layout.size,
        generator=gen(),
        trace_samples=12,
    )
    assert r.names == ["0", "2"] and r.sizes.tolist() == [54, 21]
    for i, name in enumerate(r.names):
        assert float(r.top_eigenvalue[i]) == pytest.approx(max(spectra[name]), rel=1e-6)
        exact = sum(spectra[name])
        assert abs(float(r.trace[i]) - exact) < 3 * float(r.trace_std_error[i])
    assert r.residual.max() < 1e-3 and r.n_products > 24


def test_small_blocks_are_exact(block_diagonal, spectra, layout):
    r = layer_curvature(
        lambda v: block_diagonal @ v,
        module_blocks(layout),
        layout.size,
        generator=gen(),
        trace_samples=60,
    )
    assert r.trace.tolist() == pytest.approx([sum(spectra["0"]), sum(spectra["2"])], rel=1e-12)
    assert r.trace_std_error.tolist() == [0.0, 0.0] and r.n_products == 54 + 21


def test_a_block_is_the_hessians_rows_and_columns_not_its_eigenvectors(layout):
    """With coupling between the layers, H_bb is H's diagonal block (not a spectral piece)."""
    h = rotated([float(i) for i in range(layout.size)], seed=3)
    blocks = prefix_blocks(layout, ("2", "0.weight"))
    r = layer_curvature(lambda v: h @ v, blocks, layout.size, generator=gen(), trace_samples=200)
    for i, b in enumerate(blocks):
        sub = torch.linalg.eigvalsh(h[b.index[:, None], b.index])
        assert float(r.top_eigenvalue[i]) == pytest.approx(float(sub[-1]), rel=1e-10)
        assert float(r.trace[i]) == pytest.approx(float(sub.sum()), rel=1e-10)


def test_mlp_block_traces_sum_to_the_dense_trace():
    """MLP 5-4-3 (39 parameters) on 30 random points: small enough for exact blocks."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    flat = FlatModel(model)
    theta = flat.layout.flatten(dict(model.named_parameters())).clone()
    x = torch.randn(30, 5, generator=gen(4), dtype=torch.float64)
    y = torch.randint(0, 3, (30,), generator=gen(5))
    hvp = Objective(flat, x, y, loss="cross_entropy", classification=True).hvp_operator(theta)
    blocks = module_blocks(flat.layout)
    r = layer_curvature(hvp, blocks, theta.numel(), generator=gen(), trace_samples=200)
    dense = hessian_matrix(hvp, theta.numel())
    assert float(r.trace.sum()) == pytest.approx(float(dense.trace()), rel=1e-9)
    for i, b in enumerate(blocks):
        sub = torch.linalg.eigvalsh(dense[b.index[:, None], b.index])
        assert float(r.top_eigenvalue[i]) == pytest.approx(float(sub[-1]), rel=1e-9)


def test_block_products_keep_the_dtype_and_the_rest_of_the_vector_zero(layout):
    seen = []

    def hvp(v: torch.Tensor) -> torch.Tensor:
        seen.append(v.clone())
        return v * 2

    block = module_blocks(layout)[1]
    out = BlockProduct(hvp, block.index, layout.size)(torch.ones(21, dtype=torch.float32))
    assert out.dtype == torch.float32 and out.tolist() == [2.0] * 21
    assert seen[0][:54].abs().sum() == 0 and seen[0][54:].tolist() == [1.0] * 21


@pytest.mark.parametrize(
    ("prefixes", "message"),
    [(("1",), "matches no parameter"), (("0", "0.bias"), "overlaps"), (("0.w",), "matches no")],
)
def test_bad_prefixes_say_which_modules_exist(layout, prefixes, message):
    with pytest.raises(ConfigError, match=message) as e:
        prefix_blocks(layout, prefixes)
    assert "modules: 0, 2" in str(e.value)
